import assert from "node:assert/strict";
import { dequantize } from "../../src/ops/dequantize.ts";
import { dequantizeRef } from "../../src/ops/dequantize_ref.ts";
import { disposeQuantized } from "../../src/tensor/quantized_tensor.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { testOnDevices } from "../_helpers.ts";
import { allCases, label, randomQuantized } from "./_quantized.ts";

/** Largest distance in units in the last place between two f32 arrays (signed zeros equal). */
function maxUlp(a: Float32Array, b: Float32Array): { ulp: number; at: number } {
  const ia = new Int32Array(a.buffer, a.byteOffset, a.length);
  const ib = new Int32Array(b.buffer, b.byteOffset, b.length);
  const ordered = (i: number) => (i < 0 ? -2147483648 - i : i); // two's-complement order of the floats
  let ulp = 0, at = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(ordered(ia[i]) - ordered(ib[i]));
    if (d > ulp || Number.isNaN(a[i]) !== Number.isNaN(b[i])) [ulp, at] = [Math.max(d, 1), i];
  }
  return { ulp, at };
}

// Exact: (q − zero)·scale and NF4[q]·absmax are one f32 rounding each on both sides, and the kernel
// keeps the reference's two roundings in the double-quantised absmax DYNAMIC8[code]·meta2 + offset
// (a fused multiply-add could differ by many ulps where the sum cancels). metaOffset is an f32 value.
testOnDevices(
  "dequantize equals dequantizeRef for every bits, axis and NF4 variant on odd shapes",
  async (dev) => {
    let seed = 1;
    for (const c of allCases()) {
      const { q, host } = randomQuantized(dev, c, seed++);
      using w = dequantize(q);
      assert.deepEqual(w.shape, c.shape);
      const want = dequantizeRef(host);
      const { ulp, at } = maxUlp(await w.toArray() as Float32Array, want);
      assert.equal(ulp, 0, `dequantize ${label(c)}: element ${at} is ${ulp} ulp from the reference`);
      disposeQuantized(q);
    }
  },
);

testOnDevices("dequantize rejects malformed quantized tensors with the reason", (dev) => {
  const { q } = randomQuantized(dev, { scheme: "nf4", bits: 4, groupSize: 8, axis: 1, shape: [4, 16] }, 2);
  assert.throws(
    () => dequantize({ ...q, bits: 2 }),
    /Cannot run dequantize: the nf4 scheme stores 4-bit codes: received bits = 2/,
  );
  assert.throws(() => dequantize({ ...q, axis: 2 as 1 }), /axis must be 0 or 1: received 2/);
  assert.throws(
    () => dequantize({ ...q, shape: [4, 16, 1] as unknown as [number, number] }),
    /expected a 2-D weight/,
  );
  using codes = Tensor.zeros(dev, [8], { dtype: "f32" });
  assert.throws(
    () => dequantize({ ...q, codes: codes as unknown as Tensor<"u32"> }),
    /codes of a \[4,16\] nf4 weight .* must be u32\[8\]: received f32\[8\]/,
  );
  using m2 = Tensor.zeros(dev, [1]);
  assert.throws(
    () => dequantize({ ...q, meta2: m2 }),
    /meta \(8-bit absmax codes\) .* must be u32\[2\]: received f32\[8\]/,
  );
  using codes8 = Tensor.zeros(dev, [2], { dtype: "u32" });
  assert.throws(
    () => dequantize({ ...q, meta: codes8, meta2: m2 }),
    /needs a finite metaOffset: received undefined/,
  );
  disposeQuantized(q);
});

testOnDevices("dequantize splits more than 65535 workgroups over two grid dimensions", async (dev) => {
  const rows = 64 * 65535 + 1; // one word per row: rows / 64 invocations per workgroup > 65535
  const codes = Uint32Array.from({ length: rows }, (_, i) => i % 251);
  const halves = new Float16Array(2 * rows);
  for (let r = 0; r < rows; r++) [halves[2 * r], halves[2 * r + 1]] = [0.5, r % 7]; // scale 0.5, zero r % 7
  const u32 = { dtype: "u32", category: "weights" } as const;
  const q = {
    method: "rtn",
    scheme: "affine",
    bits: 8,
    groupSize: 1,
    axis: 1,
    shape: [rows, 1],
    codes: Tensor.fromArray(dev, codes, undefined, u32),
    meta: Tensor.fromArray(dev, new Uint32Array(halves.buffer), undefined, u32),
  } as const;
  using w = dequantize(q); // [rows, 1]
  const got = await w.toArray();
  const bad = got.findIndex((v, r) => v !== ((r % 251) - (r % 7)) * 0.5);
  assert.equal(bad, -1, `row ${bad} is ${got[bad]}`);
  disposeQuantized(q);
});
