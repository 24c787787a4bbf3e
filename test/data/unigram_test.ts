import assert from "node:assert/strict";
import { ConfigError } from "../../src/errors.ts";
import { fitUnigram, unigramPerplexity } from "../../src/data/unigram.ts";

const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-12, `${a} ≠ ${b}`);

Deno.test("unigramPerplexity() matches a hand-computed add-one example", () => {
  // V = 4, train 0 0 0 1 2 (N = 5): p = (3+1)/9, (1+1)/9, (1+1)/9, (0+1)/9.
  // Eval 0 1 3: NLL = −ln(4/9) − ln(2/9) − ln(1/9) = ln(729/8); ppl = (729/8)^(1/3) = 9/2.
  close(unigramPerplexity([0, 0, 0, 1, 2], [0, 1, 3], 4), 4.5);
});

Deno.test("fitUnigram() scores pool over sets and accept typed arrays", () => {
  const model = fitUnigram(new Int32Array([0, 0, 0, 1, 2]), 4);
  close(Math.exp(model.logProbs[3]), 1 / 9);
  close(model.logProbs.reduce((s, lp) => s + Math.exp(lp), 0), 1);
  const a = model.score(new Uint16Array([0, 1])), b = model.score([3]);
  close(Math.exp((a.totalNll + b.totalNll) / (a.nTokens + b.nTokens)), 4.5);
  assert.equal(a.nTokens, 2);
  close(a.perplexity, Math.exp(a.nllPerToken));
  assert.equal(model.nTrain, 5);
});

Deno.test("fitUnigram() with alpha: uniform without training data, MLE-like with small alpha", () => {
  close(unigramPerplexity([], [0, 5, 7], 8), 8); // no data: uniform over V
  close(unigramPerplexity([0, 1], [0, 1], 2, { alpha: 1e-9 }), 2);
});

Deno.test("fitUnigram() rejects bad ids, sizes and options with clear errors", () => {
  assert.throws(() => fitUnigram([0, 4], 4), /training id 4 at index 1: ids must be integers in \[0, 4\)/);
  assert.throws(() => fitUnigram([0.5], 4), RangeError);
  assert.throws(() => fitUnigram([], 0), /vocabSize must be a positive integer, received 0/);
  assert.throws(() => fitUnigram([0], 2).score([-1]), /evaluation id -1 at index 0/);
  assert.throws(() => fitUnigram([0], 2).score([]), /empty sequence/);
  assert.throws(() => fitUnigram([0], 2, { alpha: 0 }), ConfigError);
  assert.throws(() => fitUnigram([0], 2, { alpa: 1 } as never), /did you mean "alpha"/);
});
