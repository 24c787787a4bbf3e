import assert from "node:assert/strict";
import { gemv, GEMV_KERNEL, gemvRef } from "../../src/ops/gemv.ts";
import { matmul } from "../../src/ops/matmul.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";

// Tolerance: y ~ N(0, in) for unit-normal inputs and the GPU accumulates in f32, so errors are
// judged against the in-scaled magnitude: |err| <= 1e-4 (sqrt(in) + |y|).
function tol(cols: number) {
  return { rtol: 1e-4, atol: 1e-4 * Math.sqrt(cols) };
}

// [out, in]: vec4 rows (in % 4 == 0: 64-byte steps, then a tail of 0-3 vec4), the scalar path,
// out = 1, and rows off the 64-row workgroup.
const SHAPES: [number, number][] = [
  [1, 1],
  [1, 3],
  [3, 4],
  [17, 63],
  [129, 64],
  [300, 17],
  [33, 60],
  [65, 4099],
  [4, 4096],
  [257, 128],
];

testOnDevices("gemv matches the reference on odd shapes", async (dev) => {
  for (const [rows, cols] of SHAPES) {
    const w = randn(rows * cols, rows * 1000 + cols);
    const x = randn(cols, cols + 7);
    const want = new Float32Array(rows);
    gemvRef(w, x, want, rows, cols);
    using tw = Tensor.fromArray(dev, w, [rows, cols]);
    using tx = Tensor.fromArray(dev, x);
    using y = gemv(tw, tx);
    assert.deepEqual(y.shape, [rows]);
    assertClose(await y.toArray(), want, { ...tol(cols), what: `gemv [${rows}, ${cols}]` });
  }
});

testOnDevices("gemv of x [1, in] gives [1, out] and agrees with matmul transB", async (dev) => {
  const [rows, cols] = [70, 36];
  using w = Tensor.fromArray(dev, randn(rows * cols, 5), [rows, cols]);
  using x = Tensor.fromArray(dev, randn(cols, 6), [1, cols]);
  using y = gemv(w, x);
  using z = matmul(x, w, { transB: true }); // [1, in] x [out, in]ᵀ -> [1, out]
  assert.deepEqual(y.shape, [1, rows]);
  assertClose(await y.toArray(), await z.toArray(), { ...tol(cols), what: "gemv vs matmul" });
});

testOnDevices("gemv splits more than 65535 workgroups over two grid dimensions", async (dev) => {
  const rows = GEMV_KERNEL.R * GEMV_KERNEL.WG * 65535 + 5;
  const w = Float32Array.from({ length: rows }, (_, i) => (i % 13) - 6);
  using tw = Tensor.fromArray(dev, w, [rows, 1]);
  using tx = Tensor.fromArray(dev, [-2]);
  using y = gemv(tw, tx);
  assertClose(await y.toArray(), w.map((v) => -2 * v), { what: "gemv [rows, 1]" });
});

testOnDevices("gemv rejects mismatched shapes with both shapes in the message", (dev) => {
  using w = Tensor.zeros(dev, [4, 6]);
  using x = Tensor.zeros(dev, [5]);
  assert.throws(
    () => gemv(w, x),
    /Cannot run gemv: W of shape \[4,6\] and x of shape \[5\]: x must be \[6\] or \[1, 6\]/,
  );
  using x2 = Tensor.zeros(dev, [2, 6]);
  assert.throws(() => gemv(w, x2), /x of shape \[2,6\].*use matmul\(x, W, \{ transB: true \}\)/);
  using w3 = Tensor.zeros(dev, [1, 4, 6]);
  assert.throws(() => gemv(w3, x2), /W must have rank 2: received shape \[1,4,6\]/);
  using xi = Tensor.zeros(dev, [6], { dtype: "i32" });
  assert.throws(() => gemv(w, xi), /x must be f32: received i32/);
});
