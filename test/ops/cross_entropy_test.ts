import assert from "node:assert/strict";
import {
  crossEntropy,
  crossEntropyBackward,
  crossEntropyBackwardRef,
  crossEntropyRef,
} from "../../src/ops/cross_entropy.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, rng, testOnDevices } from "../_helpers.ts";

function targetsFor(n: number, v: number, seed: number, ignoreEvery = 0): Int32Array {
  const u = rng(seed);
  return Int32Array.from(
    { length: n },
    (_, i) => ignoreEvery && i % ignoreEvery === 1 ? -100 : Math.floor(u() * v),
  );
}

// Odd V runs strided rows, V ≥ 128 with few rows uses 16 lanes per row on llvmpipe; [600, 37] has
// 64 rows per workgroup and more rows than the 256 invocations of the finishing reduction.
const SHAPES: [number, number][] = [[1, 1], [3, 7], [5, 33], [2, 4099], [20, 12], [600, 37]];

testOnDevices("crossEntropy() and its backward match the float64 references", async (dev) => {
  for (const [n, v] of SHAPES) {
    const x = randn(n * v, n + v, 3);
    const t = targetsFor(n, v, n * v, 3);
    using tx = Tensor.fromArray(dev, x, [n, v]);
    using tt = Tensor.fromArray(dev, t);
    using loss = crossEntropy(tx, tt);
    assert.deepEqual(loss.shape, []);
    const want = crossEntropyRef(x, t, v);
    assertClose(await loss.toArray(), [want.loss], { rtol: 2e-6, atol: 1e-6, what: `loss [${n}, ${v}]` });
    using dx = crossEntropyBackward(tx, tt, 0.7);
    const wantDx = new Float32Array(n * v);
    crossEntropyBackwardRef(x, t, v, 0.7, wantDx);
    assertClose(await dx.toArray(), wantDx, { rtol: 1e-5, atol: 1e-8, what: `dlogits [${n}, ${v}]` });
  }
});

testOnDevices(
  "crossEntropy() is stable on ±1e4 logits and accepts [B, T, V] with [B, T] targets",
  async (dev) => {
    const x = randn(2 * 3 * 9, 5).map((z, i) => z + (i % 2 ? 1e4 : -1e4));
    const t = new Int32Array([0, 1, 8, -100, 3, 4]);
    using tx = Tensor.fromArray(dev, x, [2, 3, 9]);
    using tt = Tensor.fromArray(dev, t, [2, 3]);
    using loss = crossEntropy(tx, tt);
    const l = (await loss.toArray())[0];
    assert.ok(Number.isFinite(l), `finite loss: ${l}`);
    assertClose([l], [crossEntropyRef(x, t, 9).loss], { rtol: 1e-5, what: "loss" });
    using g = Tensor.fromArray(dev, [2], []);
    using dx = crossEntropyBackward(tx, tt, g);
    const want = new Float32Array(x.length);
    crossEntropyBackwardRef(x, t, 9, 2, want);
    assertClose(await dx.toArray(), want, { rtol: 1e-5, atol: 1e-7, what: "dlogits" });
  },
);

testOnDevices("crossEntropy() with no valid row gives loss 0 and a zero gradient", async (dev) => {
  using tx = Tensor.fromArray(dev, randn(3 * 4, 1), [3, 4]);
  using tt = Tensor.fromArray(dev, new Int32Array([7, 7, 7]));
  using loss = crossEntropy(tx, tt, { ignoreIndex: 7 });
  assert.deepEqual([...await loss.toArray()], [0]);
  using dx = crossEntropyBackward(tx, tt, 1, { ignoreIndex: 7 });
  assert.deepEqual([...await dx.toArray()], Array(12).fill(0));
  using empty = Tensor.fromArray(dev, new Float32Array(0), [0, 4]);
  using none = Tensor.fromArray(dev, new Int32Array(0), [0]);
  assert.deepEqual([...await crossEntropy(empty, none).toArray()], [0]);
});

testOnDevices("crossEntropy() flags out-of-range targets: RangeError on CPU, NaN on WebGPU", async (dev) => {
  using tx = Tensor.fromArray(dev, randn(2 * 3, 2), [2, 3]);
  using tt = Tensor.fromArray(dev, new Int32Array([1, 3]));
  if (dev.kind === "cpu") {
    assert.throws(() => crossEntropy(tx, tt), /targets\[1\] = 3 is outside \[0, 3\)/);
    assert.throws(() => crossEntropyBackward(tx, tt, 1), /targets\[1\] = 3 is outside/);
  } else {
    assert.ok(Number.isNaN((await crossEntropy(tx, tt).toArray())[0]));
    const dx = await crossEntropyBackward(tx, tt, 1).toArray();
    assert.ok(dx.subarray(3).every(Number.isNaN) && dx.subarray(0, 3).every(Number.isFinite));
  }
});

testOnDevices("crossEntropy() validates shapes and dtypes", (dev) => {
  using tx = Tensor.fromArray(dev, randn(6, 3), [2, 3]);
  using bad = Tensor.fromArray(dev, new Int32Array([0, 1, 2]));
  using f = Tensor.fromArray(dev, [0, 1]);
  assert.throws(() => crossEntropy(tx, bad), /targets must have shape \[2\].*received \[3\]/);
  assert.throws(() => crossEntropy(tx, f), /targets must be i32: received f32/);
  using t = Tensor.fromArray(dev, new Int32Array([0, 1]));
  assert.throws(() => crossEntropyBackward(tx, t, tx), /dloss must be a scalar/);
});
