/**
 * `domainPerplexity` on documents and `pairedRatio` on the tiny golden Llama: per-document scores
 * that add up to the pooled perplexity, a ratio that matches the hand computation from those scores,
 * a degenerate interval at 1 for identical models, and no "better" for a model against a slightly
 * perturbed copy of itself.
 */
import assert from "node:assert/strict";
import { createDevice } from "../../src/device/create_device.ts";
import { domainPerplexity, formatDomainPpl, pairedRatio } from "../../src/loram/eval.ts";
import { loadModel } from "../../src/models/load.ts";
import { perplexity } from "../../src/models/perplexity.ts";
import { rng } from "../_helpers.ts";

const FIXTURE = "test/fixtures/models/llama-gqa-tied-f32"; // V 128
const device = await createDevice({ backend: "cpu" });

/** `n` documents of odd lengths: ids that mostly count up, so the model's scores differ per document. */
function documents(n: number, seed: number): Int32Array[] {
  const u = rng(seed);
  return Array.from({ length: n }, (_, d) => {
    const doc = new Int32Array(9 + 5 * d); // 9, 14, 19, ... ids
    doc[0] = Math.floor(u() * 128);
    for (let i = 1; i < doc.length; i++) doc[i] = u() < 0.7 ? (doc[i - 1] + 1) % 128 : Math.floor(u() * 128);
    return doc;
  });
}
const DATA = { evalIn: documents(7, 1), evalOut: documents(5, 2), evalSotu: documents(3, 3) };
const OPTIONS = { evalTokens: 16, evalBlock: 8 };

Deno.test("domainPerplexity: each document scored from its own start (first evalTokens ids); pooled = exp(Σnll / Σtokens)", async () => {
  using model = await loadModel(FIXTURE, { device });
  const p = await domainPerplexity(model, DATA, OPTIONS);
  const docs = p.documents!.in_domain!;
  assert.equal(docs.scores.length, 7);
  for (const [i, doc] of DATA.evalIn.entries()) {
    const r = await perplexity(model, doc.subarray(0, 16), { blockSize: 8 });
    assert.equal(docs.scores[i].tokens, r.tokens); // disjoint windows: each window's first id is context
    assert.ok(Math.abs(docs.scores[i].nll - r.loss * r.tokens) < 1e-9 * r.tokens);
  }
  const nll = docs.scores.reduce((s, d) => s + d.nll, 0);
  const tokens = docs.scores.reduce((s, d) => s + d.tokens, 0);
  assert.ok(Math.abs(p.in_domain - Math.exp(nll / tokens)) < 1e-9 * p.in_domain);
  assert.ok(docs.lo < p.in_domain && p.in_domain < docs.hi, `${docs.lo} ${p.in_domain} ${docs.hi}`);
  assert.equal(p.documents!.out_of_domain_sotu!.scores.length, 3);
  assert.match(
    formatDomainPpl(p),
    /^in-domain ppl \d+\.\d\d \[\d+\.\d\d, \d+\.\d\d\], out-of-domain .*, SOTU /,
  );
  // A stream is one text: no documents, no interval, and nothing to pair.
  const s = await domainPerplexity(model, { evalIn: DATA.evalIn[6], evalOut: DATA.evalOut[0] }, OPTIONS);
  assert.equal(s.documents, undefined);
  assert.equal(
    s.in_domain,
    (await perplexity(model, DATA.evalIn[6].subarray(0, 16), { blockSize: 8 })).perplexity,
  );
  assert.equal(pairedRatio(s, s, "in_domain"), null);
  assert.equal(pairedRatio(p, s, "in_domain"), null);
});

Deno.test("pairedRatio: identical models give ratio 1 with a degenerate interval; a perturbed copy matches the hand ratio and is not better beyond the interval", async () => {
  using a = await loadModel(FIXTURE, { device });
  using b = await loadModel(FIXTURE, { device });
  const pa = await domainPerplexity(a, DATA, OPTIONS);
  const pb = await domainPerplexity(b, DATA, OPTIONS);
  for (const domain of ["in_domain", "out_of_domain", "out_of_domain_sotu"] as const) {
    const r = pairedRatio(pa, pb, domain)!;
    assert.deepEqual([r.value, r.lo, r.hi], [1, 1, 1], domain);
  }
  // b + small noise on every projection: per-document changes of both signs.
  const u = rng(7);
  for (const [k, t] of b.parameters()) {
    if (!k.endsWith("_proj.weight")) continue;
    const w = await t.toArray() as Float32Array;
    t.device.upload(t.storage, w.map((v) => v + 0.02 * (u() - 0.5)));
  }
  const noisy = await domainPerplexity(b, DATA, OPTIONS);
  const r = pairedRatio(noisy, pa, "in_domain")!;
  // By hand: exp(Σnll_noisy / Σtokens) / exp(Σnll_a / Σtokens) over the same documents.
  const sum = (xs: { nll: number }[]) => xs.reduce((s, d) => s + d.nll, 0);
  const x = noisy.documents!.in_domain!.scores;
  const y = pa.documents!.in_domain!.scores;
  const tokens = y.reduce((s, d) => s + d.tokens, 0);
  assert.ok(
    x.some((d, i) => d.nll < y[i].nll) && x.some((d, i) => d.nll > y[i].nll),
    "changes of both signs",
  );
  const hand = Math.exp((sum(x) - sum(y)) / tokens);
  assert.ok(Math.abs(r.value - hand) < 1e-12, `${r.value} vs ${hand}`);
  assert.ok(r.value !== 1 && r.lo < 1 && r.hi > 1, `[${r.lo}, ${r.hi}] should hold 1`);
  assert.equal(r.documents, 7);
  assert.equal(r.tokens, tokens);
  // The same seed and scores: the same interval.
  assert.deepEqual(pairedRatio(noisy, pa, "in_domain"), r);
  // Scores on other documents are refused.
  const other = await domainPerplexity(a, { ...DATA, evalIn: documents(6, 9) }, OPTIONS);
  assert.throws(() => pairedRatio(other, pa, "in_domain"), /scored on the same documents/);
});
