/**
 * The cached policy's bookkeeping on hand-worked sequences: LRU and LFU evict the entries the
 * rules name, a group's experts are never evicted while it loads, prefetch never evicts the group
 * being computed, and every upload is one counted transfer of one expert.
 * @module
 */
import assert from "node:assert/strict";
import { createDevice } from "../../src/device/create_device.ts";
import { HostExperts } from "../../src/moe/host_experts.ts";
import { CachedPolicy } from "../../src/moe/policies/cached.ts";
import { TransferEngine } from "../../src/moe/transfer.ts";

const store = await HostExperts.fromCheckpoint("test/fixtures/models/mixtral-top2-f32");

async function cache(eviction: "lru" | "lfu", slots: number) {
  const device = await createDevice({ backend: "cpu" });
  const transfers = new TransferEngine(device, store);
  const policy = new CachedPolicy({ eviction, maxSlots: slots });
  await policy.setup({ device, store, transfers }, 64 * 2 ** 20);
  return { policy, transfers, device };
}

Deno.test("cached LRU: evicts the least recently used entry", async () => {
  const { policy, transfers, device } = await cache("lru", 3);
  assert.equal(policy.load(0, [0, 1]).hits, 0); // slots: (0,0) (0,1)
  assert.equal(policy.load(0, [0]).hits, 1); // (0,0) used again: (0,1) is now the oldest
  assert.equal(policy.load(1, [2]).hits, 0); // third slot
  assert.equal(policy.load(1, [3]).hits, 0); // evicts (0,1)
  assert.equal(policy.load(0, [0]).hits, 1);
  assert.equal(policy.load(0, [1]).hits, 0); // (0,1) was evicted; evicts (1,2), now the oldest
  assert.equal(policy.load(1, [3]).hits, 1);
  assert.equal(policy.load(1, [2]).hits, 0);
  assert.equal(transfers.stats.count.demand, 6);
  assert.equal(transfers.stats.bytes.demand, 6 * store.expertBytes());
  policy.dispose();
  device.destroy();
});

Deno.test("cached LFU: evicts the least often used entry, ties by recency", async () => {
  const { policy, device } = await cache("lfu", 3);
  policy.load(0, [0, 1]);
  policy.load(0, [0]); // uses: (0,0) 2, (0,1) 1
  policy.load(0, [1]); // (0,1) 2
  policy.load(0, [1]); // (0,1) 3
  policy.load(1, [2]); // (1,2) 1
  assert.equal(policy.load(1, [3]).hits, 0); // evicts (1,2): fewest uses
  assert.equal(policy.load(0, [0]).hits, 1);
  assert.equal(policy.load(0, [1]).hits, 1);
  assert.equal(policy.load(1, [2]).hits, 0); // (1,2) was evicted; evicts (1,3) (1 use)
  assert.equal(policy.load(1, [3]).hits, 0);
  policy.dispose();
  device.destroy();
});

Deno.test("cached: a group's experts are never evicted while it loads; prefetch spares the pinned group", async () => {
  const { policy, transfers, device } = await cache("lru", 2);
  policy.load(0, [0, 1]);
  const g = policy.load(1, [2, 3]); // both slots replaced, neither by the other
  assert.notEqual(g.slotOf.get(2), g.slotOf.get(3));
  const pinned = new Set(["1.2", "1.3"]);
  assert.equal(policy.prefetch(0, [0], pinned), 0); // no slot outside the pinned group
  assert.equal(transfers.stats.count.prefetch, 0);
  assert.equal(policy.prefetch(0, [0], new Set(["1.2"])), 1); // evicts (1,3)
  assert.equal(policy.load(0, [0]).hits, 1); // the prefetched expert is a hit
  assert.equal(transfers.stats.bytes.prefetch, store.expertBytes());
  policy.dispose();
  device.destroy();
});

Deno.test("cached: the slots the budget leaves are counted at the cache's bits", () => {
  const f32 = new CachedPolicy({ bits: 16 });
  const q4 = new CachedPolicy({ bits: 4, groupSize: 16 });
  const free = 5 * store.expertBytes();
  assert.equal(f32.plannedBytes(store, free), 5 * store.expertBytes());
  const scratch = 2 * store.matrixValues() * 4; // one f32 matrix and its codes while quantizing
  const slots = Math.min(
    store.layers.length * store.numExperts,
    Math.floor((free - scratch) / q4.slotBytes(store)),
  );
  assert.ok(slots > 5);
  assert.equal(q4.plannedBytes(store, free), slots * q4.slotBytes(store));
});
