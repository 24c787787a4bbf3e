/** Finite-difference checks of the autograd functions the training forwards added. */
import assert from "node:assert/strict";
import {
  concatRows,
  dropout,
  groupedLinear,
  reshape,
  scatterAddRows,
  sigmoid,
  sliceRows,
  sum,
  Tape,
} from "../../src/autograd/mod.ts";
import { mulberry32 } from "../../src/tensor/random.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { randn, testOnDevices } from "../_helpers.ts";
import { gradcheck } from "./_gradcheck.ts";

const inp = (shape: number[], seed: number, std = 1) => ({
  data: randn(shape.reduce((a, b) => a * b, 1), seed, std),
  shape,
});

testOnDevices("autograd sigmoid() and dropout() match finite differences", async (dev) => {
  await gradcheck(dev, (_t, [x]) => sigmoid(x), [inp([3, 7], 1, 2)], { what: "sigmoid" });
  // The same seed draws the same mask in every evaluation.
  await gradcheck(dev, (_t, [x]) => dropout(x, 0.4, mulberry32(3)), [inp([5, 9], 2)], { what: "dropout" });
  using tape = new Tape();
  const x = tape.param(Tensor.fromArray(dev, new Float32Array(4000).fill(1))); // [4000]
  assert.equal(dropout(x, 0, Math.random), x, "p = 0 is the identity");
  const y = await dropout(x, 0.25, mulberry32(4)).value.toArray();
  const kept = y.filter((v) => v !== 0);
  assert.ok(kept.every((v) => Math.abs(v - 4 / 3) < 1e-6), "survivors scaled by 1 / (1 - p)");
  assert.ok(Math.abs(kept.length / 4000 - 0.75) < 0.03, `keep rate ${kept.length / 4000}`);
  assert.throws(() => dropout(x, 1, Math.random), RangeError);
});

testOnDevices(
  "autograd sliceRows(), concatRows() and scatterAddRows() match finite differences",
  async (dev) => {
    await gradcheck(
      dev,
      (_t, [x, y]) => concatRows([sliceRows(x, 1, 3), y, sliceRows(x, 4, 1), sliceRows(x, 0, 0)]),
      [inp([5, 3, 2], 3), inp([2, 3, 2], 4)],
      { what: "slice/concat" },
    );
    const idx = Int32Array.of(4, 0, 4, 6);
    await gradcheck(
      dev,
      (_t, [d, s], device) => scatterAddRows(d, Tensor.fromArray(device, idx), s),
      [inp([7, 5], 5), inp([4, 5], 6)],
      { what: "scatterAddRows" },
    );
  },
);

testOnDevices("autograd groupedLinear() matches finite differences, with an empty group", async (dev) => {
  const groups = [3, 0, 1, 5]; // N = 9, expert 1 gets no rows
  await gradcheck(
    dev,
    (_t, [x, w]) => groupedLinear(x, w, groups),
    [inp([9, 7], 7), inp([4, 5, 7], 8, 0.5)],
    {
      what: "groupedLinear",
    },
  );
  using tape = new Tape();
  const x = tape.constant(Tensor.fromArray(dev, randn(9 * 7, 9), [9, 7]));
  const w = tape.param(Tensor.fromArray(dev, randn(4 * 5 * 7, 10), [4, 5, 7]));
  tape.backward(sum(reshape(groupedLinear(x, w, groups), [-1])));
  const g = await w.grad!.toArray();
  assert.ok(g.subarray(35, 70).every((v) => v === 0), "expert 1's gradient is zero");
  assert.throws(() => groupedLinear(x, w, [3, 0, 1, 4]), /groups/);
});
