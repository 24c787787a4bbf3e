import assert from "node:assert/strict";
import { type Perm3, permute3, permute3Into, permute3Ref } from "../../src/ops/permute.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { randn, testOnDevices } from "../_helpers.ts";

const PERMS: Perm3[] = [[0, 1, 2], [1, 0, 2], [2, 0, 1], [0, 2, 1], [1, 2, 0], [2, 1, 0]];

testOnDevices("permute3() matches permute3Ref for every axis order, bit-exactly", async (dev) => {
  // [.., .., 8]: the vec4 entry for orders that keep the last axis; odd extents: the scalar entry.
  for (const shape of [[3, 5, 8], [7, 4, 12], [2, 3, 5], [1, 1, 1], [37, 3, 33], [300, 2, 4], [0, 2, 4]]) {
    const n = shape.reduce((a, b) => a * b, 1);
    const x = randn(n, n + 3);
    using t = Tensor.fromArray(dev, x, shape);
    for (const perm of PERMS) {
      using y = permute3(t, perm);
      assert.deepEqual(y.shape, perm.map((a) => shape[a]));
      const want = new Float32Array(n);
      permute3Ref(x, shape, perm, want);
      assert.deepEqual(await y.toArray(), want, `[${shape}] perm [${perm}]`);
    }
  }
});

testOnDevices("permute3Into() reads a leading slice and leaves the rest of y alone", async (dev) => {
  using x = Tensor.fromArray(dev, Float32Array.from({ length: 24 }, (_, i) => i), [4, 2, 3]); // [S, H, D]
  using y = Tensor.fromArray(dev, new Float32Array(16).fill(-1), [16]);
  permute3Into(x, [2, 2, 3], [1, 0, 2], y); // rows 0..1 of x as [H, 2, D]
  assert.deepEqual([...await y.toArray()], [0, 1, 2, 6, 7, 8, 3, 4, 5, 9, 10, 11, -1, -1, -1, -1]);
});

testOnDevices("permute3() moves i32 words and rejects bad input", async (dev) => {
  using t = Tensor.fromArray(dev, new Int32Array([-1, 2, -3, 4, -5, 6]), [3, 2, 1]);
  using y = permute3(t, [1, 0, 2]);
  assert.equal(y.dtype, "i32");
  assert.deepEqual([...await y.toArray()], [-1, -3, -5, 2, 4, 6]);
  using flat = Tensor.fromArray(dev, [1, 2, 3]);
  assert.throws(() => permute3(flat, [0, 1, 2]), /permute3: x must have rank 3: received shape \[3\]/);
  assert.throws(() => permute3(t, [0, 0, 2]), /perm must order the axes 0, 1, 2: received \[0,0,2\]/);
  using small = Tensor.zeros(dev, [5]);
  assert.throws(() => permute3Into(t, [3, 2, 1], [1, 0, 2], small), /does not fit/);
});
