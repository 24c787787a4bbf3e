import assert from "node:assert/strict";
import { Tensor } from "../../src/tensor/tensor.ts";
import { mean, meanAll, sum, sumAll, sumSquaresAll } from "../../src/ops/reduce.ts";
import { randn, testOnDevices } from "../_helpers.ts";

/** Asserts |got − exact| <= 1e-6 · Σ|x| per row: the stated tolerance, against float64 sums. */
function assertSums(got: Float32Array, x: Float32Array, c: number, div: number, what: string): void {
  assert.equal(got.length, c === 0 ? got.length : x.length / c, `${what}: length`);
  for (let r = 0; r < got.length; r++) {
    let s = 0;
    let abs = 0;
    for (let j = r * c; j < (r + 1) * c; j++) {
      s += x[j];
      abs += Math.abs(x[j]);
    }
    const err = Math.abs(got[r] - s / div);
    assert.ok(err <= 1e-6 * abs / div + 1e-30, `${what}: row ${r} is ${got[r]}, float64 gives ${s / div}`);
  }
}

// Odd C runs the scalar entry point, C % 4 == 0 the vec4 one, across the three launch shapes.
const SHAPES: number[][] = [
  [1, 1],
  [3, 7],
  [2, 1, 33],
  [1, 4099],
  [3, 4096],
  [20, 12],
  [600, 36],
  [70001, 7],
  [5],
  [8],
];

testOnDevices("sum() and mean() over the last axis match float64 sums", async (dev) => {
  for (const shape of SHAPES) {
    const c = shape[shape.length - 1];
    const n = shape.reduce((a, b) => a * b, 1);
    const x = randn(n, n + c, 1).map((v) => v + 0.5); // a non-zero mean, so sums grow with C
    using tx = Tensor.fromArray(dev, x, shape);
    using s = sum(tx, { axis: -1 });
    using m = mean(tx, { axis: shape.length - 1 });
    assert.deepEqual(s.shape, shape.slice(0, -1));
    assertSums(await s.toArray(), x, c, 1, `sum [${shape}]`);
    assertSums(await m.toArray(), x, c, c, `mean [${shape}]`);
  }
});

testOnDevices("sumAll() and meanAll() return [] scalars matching float64 sums", async (dev) => {
  for (const shape of [[1], [7], [8], [3, 4099], [3, 4096], [70001, 33], [70000, 36]]) {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = randn(n, n, 1).map((v) => v + 0.25);
    using tx = Tensor.fromArray(dev, x, shape);
    using s = sumAll(tx);
    using m = meanAll(tx);
    assert.deepEqual(s.shape, []);
    assertSums(await s.toArray(), x, n, 1, `sumAll [${shape}]`);
    assertSums(await m.toArray(), x, n, n, `meanAll [${shape}]`);
  }
});

testOnDevices("sum() covers more than 65535 workgroups of rows", async (dev) => {
  const n = 64 * 65535 + 129; // 65538 workgroups of 64 rows on llvmpipe: the grid spills into y
  const x = new Float32Array(n).map((_, i) => i % 1000);
  using tx = Tensor.fromArray(dev, x, [n, 1]);
  using s = sum(tx);
  assert.deepEqual(await s.toArray(), x);
});

testOnDevices("reductions of empty tensors: sums are 0, means NaN", async (dev) => {
  using e = Tensor.zeros(dev, [2, 0]);
  using s = sum(e);
  using m = mean(e);
  using sa = sumAll(e);
  using ma = meanAll(e);
  assert.deepEqual([...await s.toArray()], [0, 0]);
  assert.ok((await m.toArray()).every(Number.isNaN));
  assert.deepEqual(sa.shape, []);
  assert.deepEqual([...await sa.toArray()], [0]);
  assert.ok(Number.isNaN((await ma.toArray())[0]));
});

testOnDevices("reductions reject other axes, scalars and non-f32 input", (dev) => {
  using x = Tensor.zeros(dev, [2, 3]);
  using s = Tensor.zeros(dev, []);
  using i = Tensor.zeros(dev, [3], { dtype: "i32" });
  assert.throws(
    () => sum(x, { axis: 0 }),
    /Cannot run sum: only the last axis \(-1 or 1\) is supported: received axis 0 for shape \[2,3\]/,
  );
  assert.throws(() => mean(s), /Cannot run mean: x must have rank at least 1: received shape \[\]/);
  assert.throws(() => sumAll(i), /Cannot run sumAll: x must be f32: received i32/);
});

testOnDevices("sumAll() takes three passes past 4096² values and frees its partial sums", async (dev) => {
  const before = dev.ledger.current();
  {
    // +1, −1, +1, …: every partial sum is a small integer, so the result is exact.
    using x = Tensor.fromArray(dev, new Float32Array(4096 * 4096 + 5).map((_, i) => i % 2 ? -1 : 1));
    using s = sumAll(x);
    assert.deepEqual([...await s.toArray()], [1]);
  }
  assert.equal(dev.ledger.current(), before);
});

testOnDevices("sumSquaresAll equals Σ x² on odd sizes, and 0 for an empty tensor", async (dev) => {
  for (const n of [1, 7, 1023, 70_001]) {
    const x = randn(n, n);
    using t = Tensor.fromArray(dev, x);
    using s = sumSquaresAll(t);
    const want = x.reduce((a, v) => a + v * v, 0);
    assert.ok(Math.abs((await s.toArray())[0] - want) <= 1e-5 * want, `n = ${n}`);
  }
  using e = sumSquaresAll(Tensor.zeros(dev, [0]));
  assert.equal((await e.toArray())[0], 0);
  assert.throws(() => sumSquaresAll(Tensor.zeros(dev, [2], { dtype: "i32" })), /sumSquaresAll/);
});
