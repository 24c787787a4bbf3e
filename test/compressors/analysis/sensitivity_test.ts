/**
 * FloE's sensitivity study: quantizing one expert projection at a time changes perplexity by what a
 * direct measurement says, the weights come back exact, and with documents every row carries its
 * bootstrap intervals and per-document scores.
 */
import assert from "node:assert/strict";
import { expertProjectionSensitivity } from "../../../src/compressors/analysis/sensitivity.ts";
import { createDevice } from "../../../src/device/create_device.ts";
import { loadModel } from "../../../src/models/load.ts";
import { perplexity } from "../../../src/models/perplexity.ts";

const FIXTURE = "test/fixtures/models/mixtral-top2-f32";
const SETTING = { method: "rtn", bits: 2, groupSize: 8, axis: 1 } as const;

Deno.test("sensitivity study: rows, restored weights, and document intervals that bracket the estimates", async () => {
  const device = await createDevice({ backend: "cpu" });
  using model = await loadModel(FIXTURE, { device });
  const docs = Array.from(
    { length: 6 },
    (_, d) => Int32Array.from({ length: 14 + d }, (_, i) => (i * 7 + d * 13) % 50),
  );
  const before = await model.forward(docs[0]).logits.toArray();
  const scores = new Map<string, { nll: number; tokens: number }[]>();
  const log = await expertProjectionSensitivity(model, docs, [SETTING], {
    blockSize: 12,
    onDocuments: (projection, documents) => scores.set(projection, documents),
  });
  assert.deepEqual(await model.forward(docs[0]).logits.toArray(), before, "weights restored");
  const t = log.table();
  assert.equal(t.numRows, 4);
  const col = (name: string) => [...t.getChild(name)!.toArray() as Float64Array];
  const [ppl, lo, hi] = [col("perplexity"), col("perplexity_lo"), col("perplexity_hi")];
  const [inc, incLo, incHi] = [col("increase_pct"), col("increase_lo_pct"), col("increase_hi_pct")];
  assert.deepEqual([inc[0], incLo[0], incHi[0]], [0, 0, 0]); // the baseline against itself
  for (let r = 0; r < 4; r++) {
    assert.ok(lo[r] <= ppl[r] && ppl[r] <= hi[r], `row ${r}: ${lo[r]} ≤ ${ppl[r]} ≤ ${hi[r]}`);
    assert.ok(incLo[r] <= inc[r] + 1e-9 && inc[r] <= incHi[r] + 1e-9, `row ${r}: increase interval`);
  }
  // The baseline perplexity is the pooled per-document one.
  let nll = 0, tokens = 0;
  for (const d of docs) {
    const r = await perplexity(model, d, { blockSize: 12 });
    nll += r.loss * r.tokens;
    tokens += r.tokens;
  }
  assert.ok(Math.abs(ppl[0] - Math.exp(nll / tokens)) < 1e-9);
  assert.ok(inc.slice(1).some((x) => x !== 0), "2-bit RTN changes the perplexity");
  // Each row's per-document scores, in row order, pool to the row's perplexity.
  assert.deepEqual([...scores.keys()], ["none", "w1 (gate)", "w3 (up)", "w2 (down)"]);
  [...scores.values()].forEach((d, r) => {
    assert.equal(d.length, docs.length);
    const pooled = Math.exp(d.reduce((a, x) => a + x.nll, 0) / d.reduce((a, x) => a + x.tokens, 0));
    assert.ok(Math.abs(pooled - ppl[r]) < 1e-9 * ppl[r], `row ${r}: ${pooled} vs ${ppl[r]}`);
  });
});
