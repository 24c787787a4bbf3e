/**
 * NF4: codes, absmax and double quantisation against bitsandbytes' definitions re-implemented in
 * torch (test/fixtures/make_quant_golden.py), the nearest-code property on odd shapes, the double
 * quantisation error bound, and the degenerate blocks.
 */
import assert from "node:assert/strict";
import { nf4DoubleQuantRef, nf4Ref } from "../../src/compressors/quant/nf4.ts";
import { quantize, quantizedToHost } from "../../src/compressors/quant/quantize.ts";
import { SafetensorsFile } from "../../src/io/safetensors.ts";
import { dequantizeRef } from "../../src/ops/dequantize_ref.ts";
import { DYNAMIC8, NF4 } from "../../src/tensor/codebooks.ts";
import { unpackCodes } from "../../src/tensor/quantized_tensor.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";
import { studentT } from "./_quant_cases.ts";

using file = await SafetensorsFile.open(new URL("../fixtures/quant/nf4_golden.safetensors", import.meta.url));
const bytes = async (name: string) => (await file.read(name)).data;
async function golden(name: string) {
  return {
    shape: (await file.read(`${name}.w`)).shape as [number, number],
    w: await file.readF32(`${name}.w`),
    block: new Int32Array((await bytes(`${name}.block`)).buffer)[0],
    codes: await bytes(`${name}.codes`),
    absmax: await file.readF32(`${name}.absmax`),
    dqCodes: await bytes(`${name}.dq_codes`),
    absmax2: await file.readF32(`${name}.dq_absmax2`),
    offset: (await file.readF32(`${name}.dq_offset`))[0],
  };
}
const GOLDEN = await Promise.all(["nf4_small", "nf4_dq"].map(golden));
const TORCH_DYNAMIC8 = await file.readF32("dynamic8");

/** The 8-bit codes of double-quantised metadata, four per word. */
function metaBytes(words: Uint32Array, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, g) => (words[g >> 2] >>> ((g & 3) * 8)) & 255);
}

/** Asserts that `codes[i]` indexes an entry of `table` nearest to `x[i]` (ties either way). */
function assertNearest(
  x: ArrayLike<number>,
  codes: ArrayLike<number>,
  table: Float32Array,
  what: string,
): void {
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i] - table[codes[i]]);
    for (let k = 0; k < table.length; k++) {
      if (Math.abs(x[i] - table[k]) < d) {
        assert.fail(`${what}: value ${i} (${x[i]}) got code ${codes[i]}, ${k} is nearer`);
      }
    }
  }
}

Deno.test("DYNAMIC8 equals bitsandbytes' create_dynamic_map (torch) exactly, and its definition to 2 ulps", () => {
  assert.deepEqual(Array.from(DYNAMIC8), Array.from(TORCH_DYNAMIC8));
  // The definition: for i in 0..6, the midpoints of linspace(0.1, 1, 2^i + 1) times ±10^(i−6), plus 0
  // and 1. torch's vectorised linspace rounds 44 entries one or two f32 ulps (<= 1.9e-7) off it.
  const f = Math.fround;
  const def: number[] = [0, 1];
  for (let i = 0; i < 7; i++) {
    const n = 2 ** i + 1;
    for (let k = 0; k + 1 < n; k++) {
      const mid = (0.1 + (0.9 * k) / (n - 1) + 0.1 + (0.9 * (k + 1)) / (n - 1)) / 2;
      def.push(f(10 ** (i - 6) * mid), f(-(10 ** (i - 6)) * mid));
    }
  }
  assertClose(DYNAMIC8, def.sort((a, b) => a - b), {
    rtol: 2 ** -22,
    atol: 0,
    what: "DYNAMIC8 vs definition",
  });
});

testOnDevices("NF4 codes, absmax and double quantisation equal the bitsandbytes golden", async (dev) => {
  for (const g of GOLDEN) {
    using t = Tensor.fromArray(dev, g.w, g.shape);
    const what = `nf4 [${g.shape}] block ${g.block}`;
    const plain = await quantize(t, { method: "nf4", groupSize: g.block });
    const h = await quantizedToHost(plain);
    assert.deepEqual(unpackCodes(h.codes, ...g.shape, 4), g.codes, `${what}: codes`);
    assert.deepEqual(h.scale, g.absmax, `${what}: absmax`);
    const dq = await quantize(t, { method: "nf4", groupSize: g.block, doubleQuant: true });
    const hd = await quantizedToHost(dq);
    assert.deepEqual(
      unpackCodes(hd.codes, ...g.shape, 4),
      g.codes,
      `${what}: codes against the original absmax`,
    );
    assert.deepEqual(
      metaBytes(await dq.meta.toArray() as Uint32Array, g.absmax.length),
      g.dqCodes,
      `${what}: dq codes`,
    );
    // torch's f32 mean sums pairwise, ours in float64 rounded once: a few f32 ulp apart (2^-21).
    assert.ok(Math.abs(dq.metaOffset! - g.offset) <= 2 ** -21 * g.offset, `${what}: offset ${dq.metaOffset}`);
    assertClose(await dq.meta2!.toArray(), g.absmax2, { rtol: 2 ** -20, atol: 0, what: `${what}: absmax2` });
  }
});

testOnDevices("NF4 picks the nearest codebook entry on odd shapes and row-spanning blocks", async (dev) => {
  const cases: [[number, number], number][] = [[[5, 96], 32], [[1, 64], 64], [[7, 8], 8], [[3, 40], 40], [[
    9,
    1,
  ], 1]];
  for (const [shape, block] of cases) {
    const w = studentT(shape[0] * shape[1], shape[0] * 31 + shape[1]);
    using t = Tensor.fromArray(dev, w, shape);
    const h = await quantizedToHost(await quantize(t, { method: "nf4", groupSize: block }));
    const codes = unpackCodes(h.codes, ...shape, 4);
    const f = Math.fround;
    const scaled = w.map((v, i) => Math.max(-1, Math.min(1, f(v * f(1 / h.scale[Math.floor(i / block)])))));
    assertNearest(scaled, codes, NF4, `nf4 [${shape}] block ${block}`);
    const back = dequantizeRef(h);
    for (let i = 0; i < w.length; i++) {
      assert.equal(back[i], f(NF4[codes[i]] * h.scale[Math.floor(i / block)]));
    }
  }
});

testOnDevices("NF4 double quantisation: nearest DYNAMIC8 codes and absmax within half a gap", async (dev) => {
  const shape: [number, number] = [6, 704]; // block 16: 264 absmax values, 256 + 8 per second-level block
  const w = studentT(shape[0] * shape[1], 5);
  using t = Tensor.fromArray(dev, w, shape);
  const q = await quantize(t, { method: "nf4", groupSize: 16, doubleQuant: true });
  const { absmax } = nf4Ref(w, 16);
  const codes = metaBytes(await q.meta.toArray() as Uint32Array, absmax.length);
  const absmax2 = await q.meta2!.toArray();
  assert.equal(absmax2.length, 2);
  const f = Math.fround;
  const centred = absmax.map((a, g) =>
    Math.max(-1, Math.min(1, f(f(a - q.metaOffset!) * f(1 / absmax2[g >> 8]))))
  );
  assertNearest(centred, codes, DYNAMIC8, "double-quantised absmax");
  // Expanded absmax (quantizedToHost): within half the widest DYNAMIC8 gap of its block's absmax2.
  let gap = 0;
  for (let k = 1; k < DYNAMIC8.length; k++) gap = Math.max(gap, DYNAMIC8[k] - DYNAMIC8[k - 1]);
  const expanded = (await quantizedToHost(q)).scale;
  for (let g = 0; g < absmax.length; g++) {
    const bound = (absmax2[g >> 8] * gap) / 2 + 2 ** -22 * absmax[g];
    assert.ok(Math.abs(expanded[g] - absmax[g]) <= bound, `absmax ${g}: ${expanded[g]} vs ${absmax[g]}`);
  }
});

testOnDevices("NF4 maps all-zero blocks to code 7 and a single absmax to its offset exactly", async (dev) => {
  const w = new Float32Array(16);
  w.set(randn(8, 3), 8); // [2, 8]: row 0 all zero
  using t = Tensor.fromArray(dev, w, [2, 8]);
  const h = await quantizedToHost(await quantize(t, { method: "nf4", groupSize: 8 }));
  assert.deepEqual(Array.from(unpackCodes(h.codes, 2, 8, 4).subarray(0, 8)), new Array(8).fill(7));
  assert.equal(h.scale[0], 0);
  assert.deepEqual(Array.from(dequantizeRef(h).subarray(0, 8)), new Array(8).fill(0));
  // One block: absmax − offset is 0, absmax2 is 0, and the code is DYNAMIC8's 0 (index 127).
  const one = nf4DoubleQuantRef(new Float32Array([0.3]));
  assert.deepEqual([one.codes[0], one.absmax2[0], one.offset], [127, 0, Math.fround(0.3)]);
  using t1 = Tensor.fromArray(dev, randn(64, 4), [1, 64]);
  const q1 = await quantize(t1, { method: "nf4", doubleQuant: true });
  assert.equal(
    (await quantizedToHost(q1)).scale[0],
    (await quantizedToHost(await quantize(t1, { method: "nf4" }))).scale[0],
  );
});

testOnDevices("NF4 results live on the weight's device in the weights category", async (dev) => {
  const before = dev.ledger.current("weights");
  using t = Tensor.fromArray(dev, randn(8 * 64, 6), [8, 64]);
  const q = await quantize(t, { method: "nf4", doubleQuant: true });
  for (const x of [q.codes, q.meta, q.meta2!]) assert.equal(x.device, dev);
  assert.deepEqual([q.codes.size, q.meta.size, q.meta2!.size], [64, 2, 1]); // 8 groups: 8 bytes in 2 words
  assert.equal(
    dev.ledger.current("weights") - before,
    q.codes.storage.bytes + q.meta.storage.bytes + q.meta2!.storage.bytes,
  );
  for (const x of [q.codes, q.meta, q.meta2!]) x.dispose();
});
