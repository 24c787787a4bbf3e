import assert from "node:assert/strict";
import { Tensor } from "../../src/tensor/tensor.ts";
import { softmaxRef } from "../../src/ops/softmax.ts";
import { softmaxBackward, softmaxBackwardRef } from "../../src/ops/softmax_backward.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";

/** Independent float64 softmax over rows of `c`. */
function softmax64(x: Float64Array, c: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let o = 0; o < x.length; o += c) {
    const m = Math.max(...x.subarray(o, o + c));
    let s = 0;
    for (let j = 0; j < c; j++) s += Math.exp(x[o + j] - m);
    for (let j = 0; j < c; j++) y[o + j] = Math.exp(x[o + j] - m) / s;
  }
  return y;
}

/** Central-difference gradient of `loss` at `v` (every entry), in float64. */
function fdGrad(loss: (v: Float64Array) => number, v: Float64Array, h: number): Float64Array {
  const g = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const keep = v[i];
    v[i] = keep + h;
    const up = loss(v);
    v[i] = keep - h;
    const down = loss(v);
    v[i] = keep;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

// L = Σ dy ⊙ softmax64(x): its gradient in x from float64 central differences (h = 1e-5, exact to
// ~1e-10) against the reference fed the f32 forward output y (one f32 rounding: rtol 1e-5, atol 1e-6).
Deno.test("softmaxBackwardRef() matches float64 central differences of the forward", () => {
  let seed = 1;
  for (const rows of [1, 2, 3]) {
    for (const c of [1, 5, 33]) {
      seed += 2;
      const x = randn(rows * c, seed, 2);
      const dy = randn(rows * c, seed + 1);
      const y = new Float32Array(rows * c);
      softmaxRef(x, y, c);
      const dx = new Float32Array(rows * c);
      softmaxBackwardRef(y, dy, dx, c);
      const gx = fdGrad((v) => dot(dy, softmax64(v, c)), Float64Array.from(x), 1e-5);
      assertClose(dx, gx, { rtol: 1e-5, atol: 1e-6, what: `dx [${rows}, ${c}]` });
    }
  }
});

// Odd C runs the scalar entry, C % 4 == 0 the vec4 one; row counts cover 16 lanes per row
// (< 16 rows), 8 rows per workgroup and 64 rows per workgroup (>= 512 rows).
const SHAPES: number[][] = [[1, 1], [3, 5], [2, 3, 33], [1, 4099], [3, 4096], [20, 12], [600, 36], [
  5000,
  7,
]];

testOnDevices("softmaxBackward() matches softmaxBackwardRef on odd shapes", async (dev) => {
  for (const shape of SHAPES) {
    const c = shape[shape.length - 1];
    const n = shape.reduce((a, b) => a * b, 1);
    const y = new Float32Array(n);
    softmaxRef(randn(n, n + c, 3), y, c);
    const dy = randn(n, n + 1);
    using ty = Tensor.fromArray(dev, y, shape);
    using tdy = Tensor.fromArray(dev, dy, shape);
    using dx = softmaxBackward(ty, tdy);
    assert.deepEqual(dx.shape, shape);
    const want = new Float32Array(n);
    softmaxBackwardRef(y, dy, want, c);
    // dx_i = y_i·(dy_i − s): the f32 row sum s errs by ~1e-7·Σ|dy·y|, scaled by y_i ≤ max y.
    let bound = 0;
    for (let o = 0; o < n; o += c) {
      let s = 0;
      let m = 0;
      for (let j = 0; j < c; j++) {
        s += Math.abs(dy[o + j] * y[o + j]);
        m = Math.max(m, y[o + j]);
      }
      bound = Math.max(bound, s * m);
    }
    assertClose(await dx.toArray(), want, { rtol: 1e-4, atol: 1e-6 * bound + 1e-12, what: `dx [${shape}]` });
  }
});

testOnDevices("softmaxBackward() rejects mismatched shapes and dtypes", (dev) => {
  using y = Tensor.zeros(dev, [2, 4]);
  using dy = Tensor.zeros(dev, [2, 3]);
  using yi = Tensor.zeros(dev, [2, 4], { dtype: "i32" });
  using s = Tensor.zeros(dev, []);
  assert.throws(
    () => softmaxBackward(y, dy),
    /Cannot run softmaxBackward: dy must have the shape of y \[2,4\]: received \[2,3\]/,
  );
  assert.throws(() => softmaxBackward(yi, y), /Cannot run softmaxBackward: y must be f32: received i32/);
  assert.throws(() => softmaxBackward(s, s), /Cannot run softmaxBackward: y must have rank at least 1/);
});
