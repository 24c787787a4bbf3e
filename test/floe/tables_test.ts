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
