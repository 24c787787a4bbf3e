import assert from "node:assert/strict";
import { CpuDevice } from "../../src/device/cpu_device.ts";
import { scale } from "../../src/ops/elementwise.ts";
import { gatherRows } from "../../src/ops/gather.ts";
import { KvCache, kvWrite } from "../../src/ops/kv_cache.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { randn, testOnDevices } from "../_helpers.ts";

const [SMAX, HKV, D] = [11, 3, 5];
const ROW = HKV * D;

testOnDevices("kvWrite() writes rows pos..pos+T-1 and nothing else", async (dev) => {
  using cache = Tensor.zeros(dev, [SMAX, HKV, D], { category: "kv" });
  const a = randn(4 * ROW, 1);
  const b = randn(1 * ROW, 2);
  kvWrite(cache, Tensor.fromArray(dev, a, [4, HKV, D]), 0);
  kvWrite(cache, Tensor.fromArray(dev, b, [1, HKV, D]), SMAX - 1); // the last row
  kvWrite(cache, Tensor.zeros(dev, [0, HKV, D]), SMAX); // T = 0 at the end: a no-op
  const want = new Float32Array(SMAX * ROW);
  want.set(a, 0);
  want.set(b, (SMAX - 1) * ROW);
  assert.deepEqual(await cache.toArray(), want);
});

testOnDevices("kvWrite() is ordered with the dispatches around it in one batch", async (dev) => {
  using cache = Tensor.zeros(dev, [SMAX, HKV, D], { category: "kv" });
  const a = randn(2 * ROW, 3);
  using src = Tensor.fromArray(dev, a, [2, HKV, D]);
  using x = scale(src, 2); // produced by a kernel in the same batch
  kvWrite(cache, x, 5);
  using rows = gatherRows(cache.reshape([SMAX, ROW]), Tensor.fromArray(dev, new Int32Array([6, 5]))); // [2, ROW]
  const got = await rows.toArray();
  assert.deepEqual(got, Float32Array.from([...a.subarray(ROW), ...a.subarray(0, ROW)], (v) => 2 * v));
});

testOnDevices("kvWrite() rejects overflow and mismatched rows with clear errors", (dev) => {
  using cache = Tensor.zeros(dev, [SMAX, HKV, D], { category: "kv" });
  using x = Tensor.zeros(dev, [3, HKV, D]);
  assert.throws(() => kvWrite(cache, x, 9), {
    name: "RangeError",
    message: "Cannot run kvWrite: rows 9..11 do not fit a cache of 11 rows (pos 9 + T 3 > Smax 11); " +
      "create the cache with a larger maxSeq",
  });
  assert.throws(() => kvWrite(cache, x, -1), /pos must be a non-negative integer: received -1/);
  assert.throws(() => kvWrite(cache, x, 0.5), /received 0.5/);
  using wide = Tensor.zeros(dev, [1, HKV, D + 1]);
  assert.throws(
    () => kvWrite(cache, wide, 0),
    /Cannot run kvWrite: x must be \[T, 3, 5\] to match the cache: received \[1,3,6\]/,
  );
  using ints = Tensor.zeros(dev, [1, HKV, D], { dtype: "i32" });
  assert.throws(() => kvWrite(cache, ints, 0), /x must be f32: received i32/);
});

testOnDevices("KvCache appends, tracks length, resets and returns its memory", async (dev) => {
  const before = dev.ledger.current("kv");
  const cache = new KvCache(dev, { maxSeq: 6, kvHeads: 2, headDim: 4, label: "layer0" });
  assert.equal(dev.ledger.current("kv") - before, 2 * 6 * 2 * 4 * 4);
  assert.equal(cache.maxSeq, 6);
  const k = randn(5 * 8, 4);
  const v = randn(5 * 8, 5);
  assert.equal(
    cache.append(
      Tensor.fromArray(dev, k.subarray(0, 32), [4, 2, 4]),
      Tensor.fromArray(dev, v.subarray(0, 32), [4, 2, 4]),
    ),
    0,
  );
  assert.equal(
    cache.append(
      Tensor.fromArray(dev, k.subarray(32), [1, 2, 4]),
      Tensor.fromArray(dev, v.subarray(32), [1, 2, 4]),
    ),
    4,
  );
  assert.equal(cache.length, 5);
  assert.deepEqual((await cache.k.toArray()).subarray(0, 40), k);
  assert.deepEqual((await cache.v.toArray()).subarray(0, 40), v);

  const two = Tensor.zeros(dev, [2, 2, 4]);
  assert.throws(
    () => cache.append(two, two),
    /Cannot run KvCache.append: rows 5..6 do not fit a cache of 6 rows/,
  );
  assert.equal(cache.length, 5, "a failed append leaves the cache as it was");
  assert.throws(() => cache.append(two, Tensor.zeros(dev, [1, 2, 4])), /k and v must have the same T/);

  cache.reset();
  assert.equal(cache.length, 0);
  assert.equal(cache.append(two, two), 0);
  cache.dispose();
  assert.equal(dev.ledger.current("kv"), before);
});

Deno.test("KvCache rejects non-positive sizes", () => {
  const dev = new CpuDevice();
  assert.throws(
    () => new KvCache(dev, { maxSeq: 0, kvHeads: 2, headDim: 4 }),
    /Cannot create KvCache: maxSeq must be a positive integer: received 0/,
  );
  assert.throws(
    () => new KvCache(dev, { maxSeq: 4, kvHeads: 2, headDim: 2.5 }),
    /headDim must be a positive integer/,
  );
});
