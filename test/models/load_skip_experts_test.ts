/**
 * `loadModel(dir, { experts: "skip" })`: the routed experts are neither read nor allocated, every
 * MoE layer holds `DetachedExperts`, the rest of the model is the same, and running it names the cause.
 * @module
 */
import assert from "node:assert/strict";
import { createDevice } from "../../src/device/create_device.ts";
import { loadModel } from "../../src/models/load.ts";
import { DetachedExperts } from "../../src/nn/detached_experts.ts";
import type { SparseMoE } from "../../src/nn/sparse_moe.ts";

const DIR = "test/fixtures/models/mixtral-top2-f32";

Deno.test("loadModel experts: skip leaves the experts off the device and the rest as loaded", async () => {
  const device = await createDevice({ backend: "cpu" });
  using full = await loadModel(DIR, { device });
  const weights = device.ledger.current("weights");
  const experts = device.ledger.current("experts");
  assert.ok(experts > 0);
  using skipped = await loadModel(DIR, { device, experts: "skip" });
  assert.equal(device.ledger.current("experts"), experts); // only the full model's
  assert.equal(device.ledger.current("weights"), 2 * weights);
  for (const l of skipped.moeLayers) {
    const moe = skipped.layers[l].mlp as SparseMoE;
    assert.ok(moe.experts instanceof DetachedExperts);
    assert.equal(moe.experts.intermediate, full.config.moeIntermediate);
  }
  const a = await (skipped.embedTokens.weight.toArray());
  const b = await (full.embedTokens.weight.toArray());
  assert.deepEqual(a, b);
  assert.throws(() => skipped.forward(Int32Array.of(1, 2)), /experts of layer 0 are not on the device/);
  device.destroy();
});
