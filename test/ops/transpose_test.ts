import assert from "node:assert/strict";
import { transpose2d, transpose2dRef } from "../../src/ops/transpose.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { randn, testOnDevices } from "../_helpers.ts";

testOnDevices("transpose2d() matches transpose2dRef on odd and batched shapes, bit-exactly", async (dev) => {
  for (const shape of [[1, 1], [3, 7], [7, 3], [2, 5, 9], [2, 3, 4, 5], [1, 300], [257, 3], [0, 4]]) {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = randn(n, n + 1);
    using t = Tensor.fromArray(dev, x, shape);
    using y = transpose2d(t);
    const [r, c] = shape.slice(-2);
    assert.deepEqual(y.shape, [...shape.slice(0, -2), c, r]);
    const want = new Float32Array(n);
    transpose2dRef(x, want, n / (r * c) || 0, r, c);
    assert.deepEqual(await y.toArray(), want, `[${shape}]`);
  }
});

testOnDevices("transpose2d() moves i32 words and rejects rank-1 input", async (dev) => {
  using t = Tensor.fromArray(dev, new Int32Array([-1, 2, -3, 4, -5, 6]), [3, 2]);
  using y = transpose2d(t);
  assert.equal(y.dtype, "i32");
  assert.deepEqual([...await y.toArray()], [-1, -3, -5, 2, 4, 6]);
  using v = Tensor.fromArray(dev, [1, 2, 3]);
  assert.throws(
    () => transpose2d(v),
    /Cannot run transpose2d: x must have rank at least 2: received shape \[3\]/,
  );
});
