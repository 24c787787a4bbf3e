import assert from "node:assert/strict";
import { Tensor } from "../../src/tensor/tensor.ts";
import { rmsNormBackward, rmsNormBackwardRef } from "../../src/ops/rmsnorm_backward.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";

/** Independent float64 forward: y = w ⊙ x / sqrt(mean(x²) + eps), row by row. */
function rmsNorm64(x: Float64Array, w: Float64Array, eps: number): Float64Array {
  const c = w.length;
  const y = new Float64Array(x.length);
  for (let o = 0; o < x.length; o += c) {
    let ss = 0;
    for (let j = 0; j < c; j++) ss += x[o + j] ** 2;
    const r = 1 / Math.sqrt(ss / c + eps);
    for (let j = 0; j < c; j++) y[o + j] = w[j] * x[o + j] * r;
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

// The loss L = Σ dy ⊙ rmsNorm64(x, w) has gradients (dx, dweight); central differences in float64
// with h = 1e-5 are exact to ~1e-10, so the f32-rounded reference must agree to f32 rounding.
Deno.test("rmsNormBackwardRef() matches float64 central differences of the forward", () => {
  const eps = 1e-5;
  let seed = 1;
  for (const rows of [1, 2, 3]) {
    for (const c of [1, 5, 33]) {
      seed += 3;
      const x = randn(rows * c, seed);
      const w = randn(c, seed + 1);
      const dy = randn(rows * c, seed + 2);
      const dx = new Float32Array(rows * c);
      const dw = new Float32Array(c);
      rmsNormBackwardRef(x, w, dy, dx, dw, eps);
      const x64 = Float64Array.from(x);
      const w64 = Float64Array.from(w);
      const gx = fdGrad((v) => dot(dy, rmsNorm64(v, w64, eps)), x64, 1e-5);
      const gw = fdGrad((v) => dot(dy, rmsNorm64(x64, v, eps)), w64, 1e-5);
      assertClose(dx, gx, { rtol: 1e-5, atol: 1e-6, what: `dx [${rows}, ${c}]` });
      assertClose(dw, gw, { rtol: 1e-5, atol: 1e-6, what: `dweight [${rows}, ${c}]` });
    }
  }
});

// Odd C runs the scalar entries, C % 4 == 0 the vec4 ones; > 64 rows uses several dweight blocks.
const SHAPES: number[][] = [[1, 1], [3, 5], [2, 3, 33], [1, 4099], [3, 4096], [130, 12], [600, 36], [
  5000,
  7,
]];

testOnDevices("rmsNormBackward() matches rmsNormBackwardRef on odd shapes", async (dev) => {
  for (const shape of SHAPES) {
    const c = shape[shape.length - 1];
    const n = shape.reduce((a, b) => a * b, 1);
    const x = randn(n, n + c, 2);
    const w = randn(c, c, 1);
    const dy = randn(n, n + 7);
    using tx = Tensor.fromArray(dev, x, shape);
    using tw = Tensor.fromArray(dev, w);
    using tdy = Tensor.fromArray(dev, dy, shape);
    const { dx, dweight } = rmsNormBackward(tx, tw, tdy, 1e-5);
    using _dx = dx;
    using _dw = dweight;
    assert.deepEqual(dx.shape, shape);
    assert.deepEqual(dweight.shape, [c]);
    const wantDx = new Float32Array(n);
    const wantDw = new Float32Array(c);
    rmsNormBackwardRef(x, w, dy, wantDx, wantDw, 1e-5);
    // f32 sums of up to thousands of terms: atol relative to the typical size of the terms, since
    // dx = r·w·dy − k·x cancels (entirely at C = 1, where dx ≈ eps-sized).
    const scale = (a: ArrayLike<number>) => Math.sqrt(dot(a, a) / a.length);
    const terms = new Float32Array(n); // r·w·dy
    for (let o = 0; o < n; o += c) {
      const rms = scale(x.subarray(o, o + c));
      for (let j = 0; j < c; j++) terms[o + j] = w[j] * dy[o + j] / rms;
    }
    assertClose(await dx.toArray(), wantDx, {
      rtol: 1e-4,
      atol: 1e-5 * scale(terms),
      what: `dx [${shape}]`,
    });
    assertClose(await dweight.toArray(), wantDw, {
      rtol: 1e-4,
      atol: 1e-5 * scale(wantDw),
      what: `dweight [${shape}]`,
    });
  }
});

testOnDevices("rmsNormBackward() is deterministic", async (dev) => {
  const shape = [300, 20];
  const x = randn(6000, 5, 1);
  const dy = randn(6000, 6, 1);
  using tx = Tensor.fromArray(dev, x, shape);
  using tw = Tensor.fromArray(dev, randn(20, 7));
  using tdy = Tensor.fromArray(dev, dy, shape);
  const a = rmsNormBackward(tx, tw, tdy);
  const b = rmsNormBackward(tx, tw, tdy);
  assert.deepEqual(await a.dweight.toArray(), await b.dweight.toArray());
  assert.deepEqual(await a.dx.toArray(), await b.dx.toArray());
  for (const t of [a.dx, a.dweight, b.dx, b.dweight]) t.dispose();
});

testOnDevices("rmsNormBackward() rejects mismatched shapes, dtypes and eps", (dev) => {
  using x = Tensor.zeros(dev, [2, 4]);
  using dy = Tensor.zeros(dev, [2, 4]);
  using dy3 = Tensor.zeros(dev, [2, 3]);
  using w3 = Tensor.zeros(dev, [3]);
  using w4 = Tensor.zeros(dev, [4]);
  using xi = Tensor.zeros(dev, [2, 4], { dtype: "i32" });
  assert.throws(
    () => rmsNormBackward(x, w3, dy),
    /Cannot run rmsNormBackward: weight must have shape \[4\] to match the last dim of x \[2,4\]: received \[3\]/,
  );
  assert.throws(
    () => rmsNormBackward(x, w4, dy3),
    /Cannot run rmsNormBackward: dy must have the shape of x \[2,4\]: received \[2,3\]/,
  );
  assert.throws(() => rmsNormBackward(xi, w4, dy), /Cannot run rmsNormBackward: x must be f32: received i32/);
  assert.throws(
    () => rmsNormBackward(x, w4, dy, -1),
    /eps must be a finite non-negative number: received -1/,
  );
});
