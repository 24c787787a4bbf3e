/** The compression table's bytes and ratios by hand on the test MoE, and the A.7 formula. */
import assert from "node:assert/strict";
import { compressionTable, floeFormulaRatio } from "../../src/floe/compression_table.ts";
import { loadModel } from "../../src/models/load.ts";
import { testOnDevices } from "../_helpers.ts";

Deno.test("A.7: 48 / (b + 32(1 − s)) is 9.23× at s = 0.9, b = 2 and 8.42× with g64 f16 scale and zero", () => {
  assert.equal(floeFormulaRatio(2, 0.9).toFixed(2), "9.23");
  assert.equal(floeFormulaRatio(2 + 32 / 64, 0.9).toFixed(2), "8.42");
});

testOnDevices(
  "compressionTable: per-expert bytes, ratios and ledger-resident bytes on mixtral-top2 (F 48, C 32)",
  async (dev) => {
    const log = await compressionTable(
      () => loadModel("test/fixtures/models/mixtral-top2-f32", { device: dev }),
      {
        sparsity: 0.9,
        upBits: 2,
        groupSize: 16,
      },
    );
    const rows = Object.fromEntries(log.toJSON().map((r) => [r.config, r]));
    const [F, C] = [48, 32];
    const codes = F * 2 * 4; // 48 rows of 32 two-bit codes: 2 u32 words each
    const meta = ((F * C) / 16) * 4; // one packed f16 (scale, zero) per group of 16
    const streamed = 2 * 4 * C * 2; // ⌊0.1·48⌋ = 4 channels of gate and down, f16
    const full = 3 * F * C * 2;
    const floe = rows["floe"];
    assert.deepEqual(
      [floe.resident_bytes, floe.resident_code_bytes, floe.streamed_bytes_per_token],
      [codes + meta, codes, streamed],
    );
    assert.equal(floe.cr_with_meta, full / (codes + meta + streamed));
    assert.equal(floe.cr_no_meta, full / (codes + streamed));
    assert.equal(rows["dense f16"].cr_with_meta, 1);
    assert.equal(rows["up int2"].streamed_bytes_per_token, 2 * F * C * 2);
    // Layer 1's up codes replace its f32 experts in the resident bytes; layer 0 stays dense.
    const dense = Number(rows["dense f16"].ledger_resident_bytes);
    assert.equal(dense - Number(floe.ledger_resident_bytes), 4 * 3 * F * C * 4 - 4 * (codes + meta));
    assert.ok(Number(floe.memory_reduction) > 1);
  },
);

Deno.test("qualityTable on documents: every row carries its interval and the paired change against dense", async () => {
  const { qualityTable } = await import("../../src/floe/quality_table.ts");
  const { createDevice } = await import("../../src/device/create_device.ts");
  const { loadModel } = await import("../../src/models/load.ts");
  const device = await createDevice({ backend: "cpu" });
  const docs = Array.from(
    { length: 5 },
    (_, d) => Int32Array.from({ length: 18 + d }, (_, i) => (i * 7 + d * 11) % 96),
  );
  const log = await qualityTable(() => loadModel("test/fixtures/models/mixtral-top2-f32", { device }), {
    calibration: [docs[0].subarray(0, 12)],
    evaluation: docs,
    blockSize: 12,
    sparsities: [0.5],
    upBits: [16],
    groupSize: 16,
  });
  const rows = log.toJSON();
  assert.deepEqual(rows.map((r) => r.mode), ["dense", "threshold", "topk"]);
  assert.deepEqual([rows[0].delta_lo_pct, rows[0].delta_hi_pct], [0, 0]);
  for (const r of rows) {
    const [p, lo, hi] = [Number(r.perplexity), Number(r.perplexity_lo), Number(r.perplexity_hi)];
    assert.ok(lo <= p && p <= hi, `${r.mode}: ${lo} ≤ ${p} ≤ ${hi}`);
    const [d, dlo, dhi] = [Number(r.delta_pct), Number(r.delta_lo_pct), Number(r.delta_hi_pct)];
    assert.ok(dlo <= d + 1e-9 && d <= dhi + 1e-9, `${r.mode}: change ${dlo} ≤ ${d} ≤ ${dhi}`);
  }
});
