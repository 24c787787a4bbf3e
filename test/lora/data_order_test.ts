import assert from "node:assert/strict";
import { DataOrder, deriveSeed } from "../../src/lora/data_order.ts";

Deno.test("DataOrder covers every example once per epoch (minus the dropped tail) and reshuffles", () => {
  const order = new DataOrder(11, 3, { seed: 5 });
  assert.equal(order.batchesPerEpoch, 3);
  const epoch = (e: number) => [0, 1, 2].flatMap((j) => order.indices(3 * e + j));
  const e0 = epoch(0);
  const e1 = epoch(1);
  assert.equal(new Set(e0).size, 9);
  assert.ok(e0.every((i) => i >= 0 && i < 11));
  assert.notDeepEqual(e0, e1);
  assert.deepEqual(order.indices(4), new DataOrder(11, 3, { seed: 5 }).indices(4)); // pure function of (seed, g)
  assert.notDeepEqual(order.indices(0), new DataOrder(11, 3, { seed: 6 }).indices(0));
  assert.equal(order.epochOf(8), 2);
});

Deno.test("DataOrder without shuffle walks the examples in order", () => {
  const order = new DataOrder(5, 2, { shuffle: false });
  assert.deepEqual([0, 1, 2].map((g) => order.indices(g)), [[0, 1], [2, 3], [0, 1]]);
  assert.deepEqual(order.pick(["a", "b", "c", "d", "e"], 1), ["c", "d"]);
});

Deno.test("DataOrder rejects data that cannot fill a micro-batch", () => {
  assert.throws(() => new DataOrder(3, 4), /3 examples do not fill one micro-batch of 4/);
  assert.throws(() => new DataOrder(3, 0), RangeError);
  assert.throws(() => new DataOrder(8, 2).indices(-1), RangeError);
});

Deno.test("deriveSeed separates (seed, step, micro) triples", () => {
  const seeds = new Set<number>();
  for (let s = 0; s < 50; s++) for (let m = 0; m < 4; m++) seeds.add(deriveSeed(1, s, m));
  assert.equal(seeds.size, 200);
  assert.ok([...seeds].every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32));
});
