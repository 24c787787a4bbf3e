/**
 * RTN: exact small cases, the analytic round-trip bound on the whole grid (every bit width, group
 * size and axis on odd shapes), and the WebGPU kernels against the TypeScript reference.
 */
import assert from "node:assert/strict";
import { quantize, quantizedToHost } from "../../src/compressors/quant/quantize.ts";
import { affineCodesRef, roundHalfEven, rtnMetaRef } from "../../src/compressors/quant/rtn.ts";
import { dequantizeRef, groupOf } from "../../src/ops/dequantize_ref.ts";
import { unpackCodes } from "../../src/tensor/quantized_tensor.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { testOnDevices } from "../_helpers.ts";
import { awkwardWeight, BITS, gridCases } from "./_quant_cases.ts";

/** f16 spacing at |x| (normal range), for "within one f16 ulp" comparisons. */
function f16Ulp(x: number): number {
  return 2 ** (Math.max(Math.floor(Math.log2(Math.max(Math.abs(x), 2 ** -14))), -14) - 10);
}

Deno.test("roundHalfEven rounds ties to even like torch.round and WGSL round", () => {
  assert.deepEqual([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 2.4, -2.6].map(roundHalfEven), [
    -2,
    -2,
    -0,
    0,
    2,
    2,
    2,
    -3,
  ]);
});

testOnDevices("RTN is exact on a grid-aligned group and keeps the unrounded zero-point", async (dev) => {
  // Row 0: 0, 1/3, 2/3, 1 at 2 bits: step 1/3, zero 0. Row 1: -0.25 .. 0.5: step 0.25, zero 1 (exact).
  // Row 2: -0.05 .. 0.25: step 0.1, zero 0.5, which RTN keeps (HQQ's 4-bit start would round it).
  const w = new Float32Array([0, 1 / 3, 2 / 3, 1, -0.25, 0, 0.25, 0.5, -0.05, 0.05, 0.15, 0.25]);
  using t = Tensor.fromArray(dev, w, [3, 4]);
  const q = await quantize(t, { method: "rtn", bits: 2, groupSize: 4 });
  const h = await quantizedToHost(q);
  assert.deepEqual(Array.from(unpackCodes(h.codes, 3, 4, 2)), [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]);
  assert.equal(h.scale[1], 0.25);
  assert.equal(h.zero![1], 1);
  assert.equal(h.scale[2], Math.f16round(Math.fround(Math.fround(0.25 - Math.fround(-0.05)) / 3)));
  assert.equal(h.zero![2], 0.5);
  const back = dequantizeRef(h);
  for (let i = 0; i < 12; i++) {
    assert.ok(Math.abs(back[i] - w[i]) <= 1e-3, `element ${i}: ${back[i]} vs ${w[i]}`);
  }
});

testOnDevices("RTN reproduces all-zero and constant groups", async (dev) => {
  const w = new Float32Array([0, 0, 0, 0, 0.7, 0.7, 0.7, 0.7, -3, -3, -3, -3]); // [3, 4], one group per row
  using t = Tensor.fromArray(dev, w, [3, 4]);
  const h = await quantizedToHost(await quantize(t, { method: "rtn", bits: 3, groupSize: 4 }));
  const back = dequantizeRef(h);
  assert.deepEqual(Array.from(back.subarray(0, 4)), [0, 0, 0, 0]);
  // Constant c: step f16(|c|/1024), zero = -c/step ≈ ∓1024; the f16 zero is exact to 1/2 code there.
  for (let i = 4; i < 12; i++) {
    assert.ok(Math.abs(back[i] - w[i]) <= Math.abs(w[i]) / 1024, `element ${i}: ${back[i]}`);
  }
});

/**
 * The bound derived in src/compressors/quant/rtn.ts: |w − ŵ| ≤ ŝ·max(1/2, (|ẑ| + 2^b)·2^-10)
 * + 2^-20·(|w| + ŝ·(|ẑ| + 2^b)), with ŝ, ẑ the stored f16 step and zero of the element's group.
 */
function assertRtnBound(
  w: Float32Array,
  back: Float32Array,
  scale: Float32Array,
  zero: Float32Array,
  c: { shape: [number, number]; axis: 0 | 1; groupSize: number },
  bits: number,
  what: string,
): void {
  const [rows, cols] = c.shape;
  for (let r = 0; r < rows; r++) {
    for (let col = 0; col < cols; col++) {
      const i = r * cols + col;
      const g = groupOf(r, col, rows, cols, c.groupSize, c.axis);
      const s = scale[g];
      const zq = Math.abs(zero[g]) + 2 ** bits;
      const bound = s * Math.max(0.5, zq * 2 ** -10) + 2 ** -20 * (Math.abs(w[i]) + s * zq);
      const err = Math.abs(w[i] - back[i]);
      if (!(err <= bound)) {
        assert.fail(
          `${what}: element (${r}, ${col}) = ${w[i]} came back ${back[i]}; |err| ${err} > bound ${bound}`,
        );
      }
    }
  }
}

testOnDevices(
  "RTN round trip is within the analytic bound for every bits × groupSize × axis",
  async (dev) => {
    let checked = 0;
    for (const c of gridCases()) {
      const w = awkwardWeight(c.shape, c.shape[0] * 100 + c.shape[1]);
      using t = Tensor.fromArray(dev, w, c.shape);
      for (const bits of BITS) {
        const h = await quantizedToHost(
          await quantize(t, { method: "rtn", bits, groupSize: c.groupSize, axis: c.axis }),
        );
        const what = `rtn ${bits}-bit [${c.shape}] g${c.groupSize} axis ${c.axis}`;
        assertRtnBound(w, dequantizeRef(h), h.scale, h.zero!, c, bits, what);
        checked++;
      }
    }
    assert.equal(checked, 64); // 16 (shape, axis, groupSize) cases × 4 bit widths
  },
);

testOnDevices(
  "RTN codes are the nearest codes of the stored f16 metadata (reference on both devices)",
  async (dev) => {
    let differing = 0;
    let total = 0;
    for (const c of gridCases()) {
      const w = awkwardWeight(c.shape, c.shape[0] * 100 + c.shape[1]);
      using t = Tensor.fromArray(dev, w, c.shape);
      for (const bits of BITS) {
        const h = await quantizedToHost(
          await quantize(t, { method: "rtn", bits, groupSize: c.groupSize, axis: c.axis }),
        );
        const what = `rtn ${bits}-bit [${c.shape}] g${c.groupSize} axis ${c.axis}`;
        // Metadata: on the CPU the reference itself; on WebGPU within one f16 ulp (the kernel's f32
        // division is 2.5 ULP, so it may land on the other side of an f16 rounding boundary).
        const ref = rtnMetaRef(w, c.shape, bits, c.groupSize, c.axis);
        for (let g = 0; g < ref.scale.length; g++) {
          const tol = dev.kind === "cpu" ? 0 : 1;
          assert.ok(
            Math.abs(h.scale[g] - ref.scale[g]) <= tol * f16Ulp(ref.scale[g]),
            `${what}: step of group ${g}`,
          );
          assert.ok(
            Math.abs(h.zero![g] - ref.zero[g]) <= tol * f16Ulp(ref.zero[g]),
            `${what}: zero of group ${g}`,
          );
        }
        // Codes from the device's own stored metadata: exact on the CPU; on WebGPU a code may differ
        // by one where w/step + zero lies within the division's error of a .5 tie (none expected here).
        const got = unpackCodes(h.codes, c.shape[0], c.shape[1], bits);
        const want = unpackCodes(
          affineCodesRef(w, c.shape, bits, c.groupSize, c.axis, h.scale, h.zero!),
          ...c.shape,
          bits,
        );
        for (let i = 0; i < got.length; i++) {
          total++;
          if (got[i] !== want[i]) {
            differing++;
            assert.ok(
              dev.kind !== "cpu" && Math.abs(got[i] - want[i]) === 1,
              `${what}: code ${i} ${got[i]} vs ${want[i]}`,
            );
          }
        }
      }
    }
    assert.ok(differing <= total * 1e-3, `${differing} of ${total} codes differ from the reference`);
  },
);

testOnDevices("RTN results live on the weight's device in the weights category", async (dev) => {
  const before = dev.ledger.current("weights");
  using t = Tensor.fromArray(dev, awkwardWeight([24, 96], 1), [24, 96]);
  const q = await quantize(t, { method: "rtn", bits: 3, groupSize: 32 });
  assert.equal(q.codes.device, dev);
  assert.equal(q.meta.device, dev);
  assert.equal(q.codes.size, 24 * 10); // 96 three-bit codes -> 10 words per row
  assert.equal(q.meta.size, 72);
  assert.equal(dev.ledger.current("weights") - before, q.codes.storage.bytes + q.meta.storage.bytes);
  q.codes.dispose();
  q.meta.dispose();
});
