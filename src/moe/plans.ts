/**
 * The smallest device budget each offload policy accepts on a model, with its breakdown, without
 * running anything or setting the policy up (no quantization, no uploads of experts): what
 * `ferry floe bench --plan` prints. It answers "which budget do I need?" before a long run.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { offloadPlans } from "./plans.ts";
 * const rows = await offloadPlans("test/fixtures/models/mixtral-top2-f32", {
 *   policies: ["ondemand", "floe"], promptTokens: 4, tokens: 4, backend: "cpu",
 * });
 * assert.equal(rows.length, 2);
 * const parts = (r: typeof rows[0]) =>
 *   r.held_bytes + r.kv_bytes + Math.max(r.activation_bytes + r.transfer_bytes, r.setup_bytes) + r.policy_bytes;
 * assert.ok(rows.every((r) => r.minimum_bytes === parts(r)));
 * ```
 * @module
 */
import { createDevice } from "../device/create_device.ts";
import { loadModel } from "../models/load.ts";
import type { OffloadBenchOptions } from "./bench.ts";
import { createPolicy } from "./create_policy.ts";
import { HostExperts } from "./host_experts.ts";
import { offloadMinimum } from "./runtime.ts";

/** One policy's minimum budget (snake_case: the JSON and Arrow column names). */
export interface PlanRow {
  policy: string;
  weights_dtype: string;
  /** The smallest budget the runtime accepts: `held + kv + max(activation + transfer, setup) + policy`. */
  minimum_bytes: number;
  /** Non-expert weights (and anything else on the device before the run). */
  held_bytes: number;
  kv_bytes: number;
  /** The reserve for one forward's temporaries. */
  activation_bytes: number;
  /** Upload staging of a step's largest transfer, alive with the activations. */
  transfer_bytes: number;
  /** The policy's setup scratch (quantizing), freed before any forward: it shares the activations' room. */
  setup_bytes: number;
  /** The policy's own minimum (its fewest slots, resident parts, buffers). */
  policy_bytes: number;
  /** Every expert of the model in f16, for the budget as a percentage. */
  expert_f16_bytes: number;
}

/** The minimum budget of each policy of `options` on the MoE checkpoint `dir`. */
export async function offloadPlans(
  dir: string,
  options: Omit<OffloadBenchOptions, "budgetBytes">,
): Promise<PlanRow[]> {
  const { promptTokens: P, tokens: N, backend = "auto", dtype = "f32" } = options;
  const store = await HostExperts.fromCheckpoint(dir, { deviceDType: dtype, metadataOnly: true });
  const device = await createDevice({ backend });
  try {
    using model = await loadModel(dir, { device, experts: "skip", dtype });
    const rows: PlanRow[] = [];
    for (const p of options.policies) {
      const policy = typeof p === "string" ? createPolicy(p, options.settings) : p();
      const plan = await offloadMinimum(model, store, policy, P + N, options.prefillChunk ?? P);
      policy.dispose();
      rows.push({
        policy: policy.name,
        weights_dtype: dtype,
        minimum_bytes: plan.minimumBytes,
        held_bytes: plan.heldBytes,
        kv_bytes: plan.kvBytes,
        activation_bytes: plan.activationBytes,
        transfer_bytes: plan.transferBytes,
        setup_bytes: plan.setupBytes,
        policy_bytes: plan.policyMinimumBytes,
        expert_f16_bytes: 2 * store.layers.length * store.numExperts * store.expertValues(),
      });
    }
    return rows;
  } finally {
    device.destroy();
  }
}
