import assert from "node:assert/strict";
import { concatRows, padRows, sliceRows, sliceRowsRef, writeRows } from "../../src/ops/slice.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { randn, testOnDevices } from "../_helpers.ts";

const [R, A, B] = [7, 3, 5]; // odd trailing sizes: rows of 15 words

testOnDevices("sliceRows(), concatRows(), padRows() and writeRows() move rows on odd shapes", async (dev) => {
  const x = randn(R * A * B, 1);
  using t = Tensor.fromArray(dev, x, [R, A, B]);
  using s = sliceRows(t, 2, 4); // [4, A, B]
  assert.deepEqual(s.shape, [4, A, B]);
  assert.deepEqual(await s.toArray(), sliceRowsRef(x, A * B, 2, 4));
  using empty = sliceRows(t, 7, 0);
  assert.deepEqual(empty.shape, [0, A, B]);

  using head = sliceRows(t, 0, 2);
  using tail = sliceRows(t, 6, 1);
  using cat = concatRows([tail, empty, head, s]); // [7, A, B]
  assert.deepEqual(
    await cat.toArray(),
    Float32Array.of(...x.slice(6 * 15), ...x.slice(0, 30), ...x.slice(30, 90)),
  );

  using padded = padRows(head, 1, 3); // [6, A, B]
  const want = new Float32Array(6 * 15);
  want.set(x.slice(0, 30), 15);
  assert.deepEqual(await padded.toArray(), want);

  using dst = Tensor.zeros(dev, [R, A, B]);
  writeRows(dst, tail, 3);
  const w2 = new Float32Array(R * 15);
  w2.set(x.slice(90), 45);
  assert.deepEqual(await dst.toArray(), w2);

  using ints = Tensor.fromArray(dev, Int32Array.of(1, 2, 3, 4, 5, 6), [3, 2]);
  assert.deepEqual([...await concatRows([sliceRows(ints, 2, 1), sliceRows(ints, 0, 1)]).toArray()], [
    5,
    6,
    1,
    2,
  ]);
});

testOnDevices("slice ops reject bad ranges and mismatched parts", (dev) => {
  using t = Tensor.zeros(dev, [4, 3]);
  using u = Tensor.zeros(dev, [2, 2]);
  assert.throws(() => sliceRows(t, 3, 2), /not inside the 4 rows/);
  assert.throws(() => sliceRows(t, -1, 1), RangeError);
  assert.throws(() => concatRows([]), /parts is empty/);
  assert.throws(() => concatRows([t, u]), /same dtype and trailing shape/);
  assert.throws(() => padRows(t, -1, 0), RangeError);
  assert.throws(() => writeRows(t, u, 0), /does not match/);
  assert.throws(() => writeRows(u, Tensor.zeros(dev, [2, 2]), 1), /do not fit/);
});
