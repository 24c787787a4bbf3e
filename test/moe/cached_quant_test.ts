/**
 * The `cached` policy with HQQ-packed experts: its logits equal those of the model whose experts
 * are the dequantized HQQ weights (quantized here the same way, independently), whatever the cache
 * size; a packed expert moves `packedExpertBytes`, and the ledger stays within the budget.
 * @module
 */
import assert from "node:assert/strict";
import { quantize } from "../../src/compressors/quant/quantize.ts";
import { createDevice } from "../../src/device/create_device.ts";
import { loadModel } from "../../src/models/load.ts";
import { HostExperts } from "../../src/moe/host_experts.ts";
import { CachedPolicy, packedExpertBytes } from "../../src/moe/policies/cached.ts";
import { openOffloadRuntime } from "../../src/moe/runtime.ts";
import { asDenseExperts } from "../../src/nn/experts.ts";
import type { SparseMoE } from "../../src/nn/sparse_moe.ts";
import { dequantize } from "../../src/ops/dequantize.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose } from "../_helpers.ts";

const MIXTRAL = "test/fixtures/models/mixtral-top2-f32";
const PROMPT = [3, 17, 42, 8, 61];
const MiB = 2 ** 20;

/** The model with every expert matrix replaced by its HQQ round trip; last-position logits per step. */
async function dequantizedReference(
  bits: 2 | 4,
  groupSize: number,
  ids: number[][],
): Promise<Float32Array[]> {
  const device = await createDevice({ backend: "cpu" });
  using model = await loadModel(MIXTRAL, { device });
  for (const l of model.moeLayers) {
    const experts = asDenseExperts((model.layers[l].mlp as SparseMoE).experts, "test");
    for (const stack of [experts.gateProj, experts.upProj, experts.downProj]) {
      const [E, R, Cc] = stack.shape;
      const all = await stack.toArray() as Float32Array;
      for (let e = 0; e < E; e++) {
        using w = Tensor.fromArray(device, all.slice(e * R * Cc, (e + 1) * R * Cc), [R, Cc]);
        const q = await quantize(w, { method: "hqq", bits, groupSize });
        using d = dequantize(q);
        all.set(await d.toArray() as Float32Array, e * R * Cc);
        q.codes.dispose();
        q.meta.dispose();
      }
      device.upload(stack.storage, all);
    }
  }
  using cache = model.createCache(16);
  const out: Float32Array[] = [];
  for (const step of ids) {
    using logits = model.forward(Int32Array.from(step), { cache }).logits; // [T, V]
    const all = await logits.toArray() as Float32Array;
    const V = model.config.vocabSize;
    out.push(all.slice((step.length - 1) * V));
  }
  device.destroy();
  return out;
}

for (const bits of [4, 2] as const) {
  Deno.test(`cached HQQ ${bits}-bit experts compute the dequantized model, whatever the cache size`, async () => {
    const steps = [PROMPT, [9], [23]];
    const ref = await dequantizedReference(bits, 16, steps);
    for (const maxSlots of [2, 3, 8]) {
      const device = await createDevice({ backend: "cpu" });
      const policy = new CachedPolicy({ bits, groupSize: 16, maxSlots });
      using rt = await openOffloadRuntime(MIXTRAL, { device, budgetBytes: 64 * MiB, policy, maxSeq: 16 });
      for (const [i, step] of steps.entries()) {
        assertClose(await rt.forward(Int32Array.from(step)), ref[i], { atol: 1e-4, rtol: 1e-4 });
      }
      const store = rt.store;
      const moved = rt.transfers.stats;
      assert.equal(
        moved.bytes.demand,
        moved.count.demand * packedExpertBytes(store.hidden, store.intermediate, bits, 16),
      );
      device.destroy();
    }
  });
}

Deno.test("cached 4-bit: a packed expert is 6/32 of an f32 one at group 16, and the ledger holds the budget", async () => {
  const store = await HostExperts.fromCheckpoint(MIXTRAL);
  const packed = packedExpertBytes(store.hidden, store.intermediate, 4, 16);
  assert.equal(packed, (store.expertBytes() * 6) / 32); // 4-bit codes + one u32 per 16 weights: 6 of 32 bits
  const probe = await createDevice({ backend: "cpu" });
  const min = (await openOffloadRuntime(MIXTRAL, {
    device: probe,
    budgetBytes: 64 * MiB,
    policy: new CachedPolicy({ bits: 4, groupSize: 16 }),
    maxSeq: 12,
  })).plan.minimumBytes;
  probe.destroy();
  const device = await createDevice({ backend: "cpu", budgetBytes: min });
  using rt = await openOffloadRuntime(MIXTRAL, {
    device,
    budgetBytes: min,
    policy: new CachedPolicy({ bits: 4, groupSize: 16 }),
    maxSeq: 12,
  });
  const { report } = await rt.generate(PROMPT, { maxNewTokens: 6 });
  assert.ok(device.ledger.peak() <= min);
  assert.equal(report.policyInfo.bits, 4);
  device.destroy();
});
