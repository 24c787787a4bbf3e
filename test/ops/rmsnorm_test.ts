import assert from "node:assert/strict";
import { Tensor } from "../../src/tensor/tensor.ts";
import { rmsNorm, rmsNormRef } from "../../src/ops/rmsnorm.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";

// Odd C runs the scalar entry point, C % 4 == 0 the vec4 one; row counts cover 16 lanes per row
// (< 16 rows), 8 rows per workgroup and 64 rows per workgroup (>= 512 rows).
const SHAPES: number[][] = [[1, 1], [3, 7], [2, 1, 33], [1, 4099], [3, 4096], [20, 12], [600, 36], [
  70001,
  7,
]];

testOnDevices("rmsNorm() matches rmsNormRef on odd shapes", async (dev) => {
  for (const shape of SHAPES) {
    const c = shape[shape.length - 1];
    const n = shape.reduce((a, b) => a * b, 1);
    const x = randn(n, n + c, 2);
    const w = randn(c, c, 1);
    using tx = Tensor.fromArray(dev, x, shape);
    using tw = Tensor.fromArray(dev, w);
    using y = rmsNorm(tx, tw, 1e-5);
    assert.deepEqual(y.shape, shape);
    const want = new Float32Array(n);
    rmsNormRef(x, w, want, 1e-5);
    assertClose(await y.toArray(), want, { rtol: 2e-5, atol: 1e-6, what: `rmsNorm [${shape}]` });
  }
});

testOnDevices("rmsNorm() matches closed forms: constant rows and zero rows", async (dev) => {
  // Row of a constant a: y = a / sqrt(a² + eps) · w.
  using tx = Tensor.fromArray(dev, [3, 3, 3, 0, 0, 0], [2, 3]);
  using tw = Tensor.fromArray(dev, [1, -2, 0.5]);
  using y = rmsNorm(tx, tw, 1e-6);
  const k = 3 / Math.sqrt(9 + 1e-6);
  assertClose(await y.toArray(), [k, -2 * k, 0.5 * k, 0, 0, 0], { rtol: 1e-6, atol: 0 });
});

testOnDevices("rmsNorm() rejects mismatched weights, dtypes and eps", (dev) => {
  using x = Tensor.zeros(dev, [2, 4]);
  using w3 = Tensor.zeros(dev, [3]);
  using w4 = Tensor.zeros(dev, [4]);
  using xi = Tensor.zeros(dev, [2, 4], { dtype: "i32" });
  assert.throws(
    () => rmsNorm(x, w3),
    /Cannot run rmsNorm: weight must have shape \[4\] to match the last dim of x \[2,4\]: received \[3\]/,
  );
  assert.throws(() => rmsNorm(xi, w4), /Cannot run rmsNorm: x must be f32: received i32/);
  assert.throws(() => rmsNorm(x, w4, -1), /eps must be a finite non-negative number: received -1/);
});
