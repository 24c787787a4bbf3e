/** Bootstrap intervals over documents: against exact enumeration, coverage on simulated corpora, pairing. */
import assert from "node:assert/strict";
import { bootstrapPerplexity, type DocumentScore, pairedBootstrap } from "../../src/metrics/bootstrap.ts";
import { rng } from "../_helpers.ts";

const ppl = (docs: readonly DocumentScore[]) =>
  Math.exp(docs.reduce((s, d) => s + d.nll, 0) / docs.reduce((s, d) => s + d.tokens, 0));

Deno.test("bootstrapPerplexity's interval matches the exact resampling distribution of 3 documents", () => {
  const docs = [{ nll: 300, tokens: 100 }, { nll: 90, tokens: 40 }, { nll: 700, tokens: 160 }];
  // All 27 equally likely draws of 3 documents with replacement.
  const exact: number[] = [];
  for (let i = 0; i < 3; i++) {
    for (let j = 0; j < 3; j++) for (let k = 0; k < 3; k++) exact.push(ppl([docs[i], docs[j], docs[k]]));
  }
  exact.sort((a, b) => a - b);
  const cdf = (x: number) => exact.filter((e) => e <= x + 1e-12).length / 27;
  const ci = bootstrapPerplexity(docs, { resamples: 20_000, level: 0.8, seed: 3 });
  assert.ok(Math.abs(ci.perplexity - ppl(docs)) < 1e-12);
  // The 10% and 90% percentiles fall where the exact distribution puts 10% and 90% of its mass.
  assert.ok(cdf(ci.lo) >= 0.1 - 0.02 && cdf(ci.lo) - 1 / 27 <= 0.1 + 0.02, `lo ${ci.lo} cdf ${cdf(ci.lo)}`);
  assert.ok(cdf(ci.hi) >= 0.9 - 0.02, `hi ${ci.hi} cdf ${cdf(ci.hi)}`);
  assert.deepEqual(
    bootstrapPerplexity(docs, { resamples: 500, seed: 9 }),
    bootstrapPerplexity(docs, { resamples: 500, seed: 9 }),
  );
});

Deno.test("95% intervals cover the true perplexity of simulated corpora about 95% of the time", () => {
  const rand = rng(5);
  const trueLoss = 3; // nats per token; documents vary in difficulty around it
  let covered = 0;
  const trials = 200;
  for (let t = 0; t < trials; t++) {
    const docs: DocumentScore[] = Array.from({ length: 40 }, () => {
      const tokens = 50 + Math.floor(rand() * 200);
      const difficulty = trueLoss + (rand() - 0.5) * 1.2; // uniform ±0.6 around the true loss
      return { nll: difficulty * tokens, tokens };
    });
    const ci = bootstrapPerplexity(docs, { resamples: 400, seed: t });
    if (ci.lo <= Math.exp(trueLoss) && Math.exp(trueLoss) <= ci.hi) covered++;
  }
  assert.ok(covered / trials > 0.88 && covered / trials <= 1, `coverage ${covered / trials}`);
});

Deno.test("pairedBootstrap: one method against itself gives 1; a uniformly better one lies below 1", () => {
  const rand = rng(8);
  const base: DocumentScore[] = Array.from({ length: 30 }, () => {
    const tokens = 20 + Math.floor(rand() * 100);
    return { nll: (2 + 2 * rand()) * tokens, tokens };
  });
  const same = pairedBootstrap(base, base, { seed: 1 });
  assert.deepEqual([same.value, same.lo, same.hi], [1, 1, 1]);
  const better = base.map((d) => ({ nll: d.nll - 0.02 * d.tokens, tokens: d.tokens })); // 2% fewer nats/token
  const r = pairedBootstrap(better, base, { seed: 1 });
  assert.ok(r.hi < 1 && Math.abs(r.value - ppl(better) / ppl(base)) < 1e-12, JSON.stringify(r));
  // Unpaired, the two corpora's own intervals overlap: the pairing is what resolves a small effect.
  const [a, b] = [bootstrapPerplexity(better, { seed: 1 }), bootstrapPerplexity(base, { seed: 1 })];
  assert.ok(a.hi > b.lo, "the unpaired intervals overlap");
});

Deno.test("bootstrap refuses what it cannot resample", () => {
  assert.throws(() => bootstrapPerplexity([]), /no documents/);
  assert.throws(() => bootstrapPerplexity([{ nll: 0, tokens: 0 }]), /no scored tokens/);
  assert.throws(() => bootstrapPerplexity([{ nll: NaN, tokens: 3 }]), /document 0 has nll NaN/);
  assert.throws(
    () => bootstrapPerplexity([{ nll: 1, tokens: 3 }], { level: 1 }),
    /level must lie in \(0, 1\)/,
  );
  assert.throws(() => bootstrapPerplexity([{ nll: 1, tokens: 3 }], { resamples: 5 }), /resamples must be/);
  assert.throws(
    () => pairedBootstrap([{ nll: 1, tokens: 3 }], [{ nll: 1, tokens: 4 }]),
    /scored on the same documents/,
  );
});

Deno.test("documentPerplexity scores each document on its own and pools them", async () => {
  const { documentPerplexity, perplexity } = await import("../../src/models/perplexity.ts");
  const { createDevice } = await import("../../src/device/create_device.ts");
  const { loadModel } = await import("../../src/models/load.ts");
  const device = await createDevice({ backend: "cpu" });
  using model = await loadModel("test/fixtures/models/llama-gqa-tied-f32", { device });
  const docs = [
    Int32Array.of(3, 17, 5, 40, 11),
    Int32Array.of(9),
    Int32Array.of(8, 1, 30, 2, 2, 7, 4, 60, 12),
  ];
  const r = await documentPerplexity(model, docs, { blockSize: 4, stride: 2, resamples: 200 });
  assert.deepEqual(r.documents.map((d) => d.tokens), [4, 0, 8]);
  for (const i of [0, 2]) {
    const own = await perplexity(model, docs[i], { blockSize: 4, stride: 2 });
    assert.ok(Math.abs(r.documents[i].nll - own.loss * own.tokens) < 1e-9);
  }
  assert.ok(Math.abs(r.interval.perplexity - ppl(r.documents)) < 1e-12);
  assert.ok(r.interval.lo <= r.interval.perplexity && r.interval.perplexity <= r.interval.hi);
  await assert.rejects(
    () => documentPerplexity(model, [Int32Array.of(1)], { blockSize: 4 }),
    /no document has 2 tokens/,
  );
});
