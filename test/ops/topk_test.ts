import assert from "node:assert/strict";
import { topk, topkRef } from "../../src/ops/topk.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { randn, rng, testOnDevices } from "../_helpers.ts";

/** Values drawn from a few levels, so most rows have ties. */
function tied(n: number, seed: number, levels = 4): Float32Array {
  const u = rng(seed);
  return Float32Array.from({ length: n }, () => Math.floor(u() * levels) - 1.5);
}

async function check(x: Tensor, data: Float32Array, k: number): Promise<void> {
  const E = x.shape[x.rank - 1];
  const rows = data.length / E;
  const values = new Float32Array(rows * k);
  const indices = new Int32Array(rows * k);
  topkRef(data, E, k, values, indices);
  const got = topk(x, k); // [..., E] -> [..., k]
  assert.deepEqual(got.values.shape, [...x.shape.slice(0, -1), k]);
  assert.deepEqual(got.indices.shape, got.values.shape);
  assert.equal(got.indices.dtype, "i32");
  // Values are copied, never computed: the comparison is exact.
  assert.deepEqual(await got.values.toArray(), values, `values [${x.shape}] k=${k}`);
  assert.deepEqual(await got.indices.toArray(), indices, `indices [${x.shape}] k=${k}`);
  got.values.dispose();
  got.indices.dispose();
}

Deno.test("topkRef sorts descending and breaks ties by the lower index", () => {
  const x = new Float32Array([1, 3, 3, -0, 0, 3, -Infinity, Infinity]);
  const values = new Float32Array(8);
  const indices = new Int32Array(8);
  topkRef(x, 8, 8, values, indices);
  assert.deepEqual([...indices], [7, 1, 2, 5, 0, 3, 4, 6]);
  assert.deepEqual([...values], [Infinity, 3, 3, 3, 1, -0, 0, -Infinity]);
});

testOnDevices("topk() matches topkRef on ties, k = 1 and k = E", async (dev) => {
  const cases: [number[], number][] = [
    [[5, 8], 2], // routing: 8 experts, top-2, many ties
    [[3, 7], 1],
    [[4, 13], 13], // k = E: a full stable sort
    [[2, 3, 60], 6], // rank 3
    [[128], 8], // one row of 128 experts
    [[1, 1], 1],
  ];
  for (const [i, [shape, k]] of cases.entries()) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = i % 2 === 0 ? tied(n, i + 1) : randn(n, i + 1);
    using x = Tensor.fromArray(dev, data, shape);
    await check(x, data, k);
  }
});

testOnDevices("topk() handles more than 65535 rows and rows of 3000", async (dev) => {
  const rows = 70001;
  const wide = tied(rows * 3, 9, 3);
  using x = Tensor.fromArray(dev, wide, [rows, 3]);
  await check(x, wide, 2);
  const long = randn(3 * 3000, 10);
  long[1234] = long[2999] = 50; // a tie at the top of row 0
  using y = Tensor.fromArray(dev, long, [3, 3000]);
  await check(y, long, 5);
});

testOnDevices("topk() returns empty results for k = 0 and rejects bad k", (dev) => {
  using x = Tensor.zeros(dev, [2, 4]);
  const { values, indices } = topk(x, 0);
  assert.deepEqual(values.shape, [2, 0]);
  assert.deepEqual(indices.shape, [2, 0]);
  values.dispose();
  indices.dispose();
  assert.throws(
    () => topk(x, 5),
    /Cannot run topk: k must be an integer in 0\.\.4 \(the last axis of x\): received 5/,
  );
  assert.throws(() => topk(x, 1.5), /received 1.5/);
  using i = Tensor.zeros(dev, [4], { dtype: "i32" });
  assert.throws(() => topk(i, 1), /x must be f32: received i32/);
});
