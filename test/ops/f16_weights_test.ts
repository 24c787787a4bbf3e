// Ops that take weights kept at 16 bits on the device (gemv, gatherMatmul, sparseExpert, matmul's
// b) against their f32 references on the exactly widened weights, on odd shapes (rows off the
// workgroup, C not a multiple of 8 or even odd, so rows start mid-word).
import assert from "node:assert/strict";
import { f16ToF32, f32ToF16 } from "../../src/io/dtype_convert.ts";
import { gatherMatmul, gatherMatmulRef } from "../../src/ops/gather_matmul.ts";
import { gemv, gemvRef } from "../../src/ops/gemv.ts";
import { matmul, matmulRef } from "../../src/ops/matmul.ts";
import { sparseExpert, sparseExpertRef } from "../../src/ops/sparse_expert.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";

/** f16 bits of `n` unit normals, and their exact f32 values. */
function halves(n: number, seed: number): { h: Uint16Array; f: Float32Array } {
  const h = f32ToF16(randn(n, seed));
  return { h, f: f16ToF32(h) };
}

const tol = (cols: number) => ({ rtol: 1e-4, atol: 1e-4 * Math.sqrt(cols) });

testOnDevices("gemv of f16 weights equals gemv of their f32 values", async (dev) => {
  for (const [rows, cols] of [[1, 1], [3, 5], [17, 8], [65, 24], [129, 63], [70, 1030], [300, 16]]) {
    const w = halves(rows * cols, rows * 31 + cols);
    const x = randn(cols, cols);
    const want = new Float32Array(rows);
    gemvRef(w.f, x, want, rows, cols);
    using tw = Tensor.fromArray(dev, w.h, [rows, cols], { dtype: "f16" });
    using tx = Tensor.fromArray(dev, x);
    using y = gemv(tw, tx); // [rows, cols] f16 · [cols] -> [rows]
    assertClose(await y.toArray(), want, { ...tol(cols), what: `gemv f16 [${rows}, ${cols}]` });
  }
});

testOnDevices("gatherMatmul of f16 experts equals the f32 reference, out-of-range ids aside", async (dev) => {
  for (const [T, K, Kx, E, N, C] of [[1, 2, 1, 5, 33, 16], [3, 2, 2, 4, 17, 9], [5, 1, 1, 3, 70, 40]]) {
    const w = halves(E * N * C, E + N + C);
    const x = randn(T * Kx * C, T + C);
    const ids = Int32Array.from({ length: T * K }, (_, i) => (i * 7 + 3) % E);
    const want = new Float32Array(T * K * N);
    gatherMatmulRef(x, w.f, ids, want, { T, K, Kx, E, N, C });
    using tw = Tensor.fromArray(dev, w.h, [E, N, C], { dtype: "f16" });
    using tx = Tensor.fromArray(dev, x, Kx === 1 ? [T, C] : [T, Kx, C]);
    using ti = Tensor.fromArray(dev, ids, [T, K], { dtype: "i32" });
    using y = gatherMatmul(tx, tw, ti); // [T, K, N]
    assertClose(await y.toArray(), want, {
      ...tol(C),
      what: `gatherMatmul f16 T${T} K${K} E${E} N${N} C${C}`,
    });
  }
});

testOnDevices("sparseExpert reads f16 gate and down rows as their f32 values", async (dev) => {
  for (const [T, C, F, K, Fc, f0] of [[1, 10, 24, 2, 24, 0], [3, 9, 13, 2, 7, 5], [2, 32, 40, 1, 40, 0]]) {
    const gate = halves(Fc * C, C + F);
    const downT = halves(Fc * C, C + F + 1);
    const x = randn(T * C, 3);
    const v = randn(T * F, 4);
    const selected = Int32Array.from({ length: T * K }, (_, i) => i % 3);
    const weights = Float32Array.from({ length: T * K }, (_, i) => 0.25 + 0.5 * (i % 2));
    for (
      const selection of [{ mode: "topk", k: Math.ceil(F / 3) }, {
        mode: "threshold",
        threshold: 0.7,
      }] as const
    ) {
      const want = new Float32Array(T * C);
      sparseExpertRef(
        { x, v, gate: gate.f, downT: downT.f, selected, weights, expert: 1, T, C, F, K, Fc, f0 },
        selection,
        want,
      );
      using y = sparseExpert({
        x: Tensor.fromArray(dev, x, [T, C]),
        v: Tensor.fromArray(dev, v, [T, F]),
        gate: Tensor.fromArray(dev, gate.h, [Fc, C], { dtype: "f16" }),
        downT: Tensor.fromArray(dev, downT.h, [Fc, C], { dtype: "f16" }),
        selected: Tensor.fromArray(dev, selected, [T, K], { dtype: "i32" }),
        weights: Tensor.fromArray(dev, weights, [T, K]),
        expert: 1,
        channelOffset: f0,
      }, selection);
      assertClose(await y.toArray(), want, {
        ...tol(C),
        what: `sparseExpert f16 ${selection.mode} T${T} C${C}`,
      });
    }
  }
});

testOnDevices("sparseExpert refuses gate and down of different dtypes", (dev) => {
  const f32 = Tensor.fromArray(dev, new Float32Array(4), [2, 2]);
  const f16 = Tensor.fromArray(dev, new Uint16Array(4), [2, 2], { dtype: "f16" });
  const x = Tensor.fromArray(dev, new Float32Array(2), [1, 2]);
  const sel = Tensor.fromArray(dev, Int32Array.of(0), [1, 1], { dtype: "i32" });
  const w = Tensor.fromArray(dev, [1], [1, 1]);
  assert.throws(
    () =>
      sparseExpert({ x, v: x, gate: f16, downT: f32, selected: sel, weights: w, expert: 0 }, {
        mode: "topk",
        k: 1,
      }),
    /downT must be f16: received f32/,
  );
});

testOnDevices("matmul with f16 b (transB) equals the f32 product of the widened values", async (dev) => {
  for (const [M, N, K] of [[5, 7, 9], [16, 33, 64], [3, 100, 30]]) {
    const a = randn(M * K, M);
    const b = halves(N * K, N);
    const want = new Float32Array(M * N);
    matmulRef(a, b.f, want, 1, M, N, K, true, false);
    using ta = Tensor.fromArray(dev, a, [M, K]);
    using tb = Tensor.fromArray(dev, b.h, [N, K], { dtype: "f16" });
    using y = matmul(ta, tb, { transB: true }); // [M, K] x [N, K]ᵀ -> [M, N]
    assertClose(await y.toArray(), want, { ...tol(K), what: `matmul f16 b [${M}, ${N}, ${K}]` });
  }
});
