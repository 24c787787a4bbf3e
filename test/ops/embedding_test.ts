import assert from "node:assert/strict";
import { Tensor } from "../../src/tensor/tensor.ts";
import { embedding } from "../../src/ops/embedding.ts";
import { castRef } from "../../src/ops/cast.ts";
import { randn, testOnDevices } from "../_helpers.ts";

function gather(table: Float32Array, ids: ArrayLike<number>, c: number): Float32Array {
  const out = new Float32Array(ids.length * c);
  for (let i = 0; i < ids.length; i++) out.set(table.subarray(ids[i] * c, ids[i] * c + c), i * c);
  return out;
}

testOnDevices("embedding() gathers rows for repeated i32 and u32 ids of any rank", async (dev) => {
  for (const [v, c] of [[5, 1], [11, 7], [3, 33], [2, 4099]]) {
    const table = randn(v * c, v + c);
    using tt = Tensor.fromArray(dev, table, [v, c]);
    const ids = Array.from({ length: 6 }, (_, i) => (i * 7 + 1) % v); // repeats once 6 > v
    using i2 = Tensor.fromArray(dev, new Int32Array(ids), [2, 3]);
    using u1 = Tensor.fromArray(dev, new Uint32Array(ids), [6]);
    using i0 = Tensor.fromArray(dev, new Int32Array([v - 1]), []);
    using a = embedding(tt, i2);
    using b = embedding(tt, u1);
    using s = embedding(tt, i0);
    assert.deepEqual(a.shape, [2, 3, c]);
    assert.deepEqual(s.shape, [c]);
    assert.deepEqual(await a.toArray(), gather(table, ids, c));
    assert.deepEqual(await b.toArray(), gather(table, ids, c));
    assert.deepEqual(await s.toArray(), gather(table, [v - 1], c));
  }
});

testOnDevices("embedding() widens f16 and bf16 tables exactly, odd sizes included", async (dev) => {
  const [v, c] = [5, 7]; // 35 halves: the last word is half padding
  const bits = Uint16Array.from({ length: v * c }, (_, i) => (i * 2654435761) >>> 16);
  bits[3] = 0x0001; // a subnormal half
  const ids = new Int32Array([4, 0, 4, 2]);
  for (const dtype of ["f16", "bf16"] as const) {
    using tt = Tensor.fromArray(dev, bits, [v, c], { dtype });
    using ti = Tensor.fromArray(dev, ids);
    using y = embedding(tt, ti);
    const wide = new Float32Array(v * c);
    castRef(bits, dtype, wide, "f32");
    const got = new Uint32Array((await y.toArray()).buffer);
    assert.deepEqual(got, new Uint32Array(gather(wide, ids, c).buffer), dtype);
  }
});

testOnDevices("embedding() out-of-range ids: RangeError on cpu, zero rows on webgpu", async (dev) => {
  using tt = Tensor.fromArray(dev, [1, 2, 3, 4], [2, 2]);
  using ids = Tensor.fromArray(dev, new Int32Array([1, 2, -1]));
  if (dev.kind === "cpu") {
    assert.throws(
      () => embedding(tt, ids),
      /Cannot run embedding: id 2 at index 1 is outside the table's \[0, 2\) rows/,
    );
  } else {
    using y = embedding(tt, ids);
    assert.deepEqual([...await y.toArray()], [3, 4, 0, 0, 0, 0]);
  }
});

testOnDevices("embedding() rejects bad table shapes and dtypes", (dev) => {
  using t1 = Tensor.zeros(dev, [4]);
  using t2 = Tensor.zeros(dev, [4, 2]);
  using fid = Tensor.zeros(dev, [3]);
  using iid = Tensor.zeros(dev, [3], { dtype: "i32" });
  assert.throws(
    () => embedding(t1, iid),
    /Cannot run embedding: table must have shape \[V, C\]: received \[4\]/,
  );
  assert.throws(() => embedding(t2, fid), /Cannot run embedding: ids must be i32 or u32: received f32/);
});
