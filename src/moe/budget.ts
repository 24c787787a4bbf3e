/**
 * The device budget of an offload run: what must fit (non-expert weights and whatever else the
 * ledger already holds, the KV cache, an activation reserve, the policy's fewest slots) and what
 * the policy may fill beyond that. A budget below the minimum is refused with the breakdown.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { planBudget } from "./budget.ts";
 * const plan = planBudget({ budgetBytes: 1000, heldBytes: 300, kvBytes: 100, activationBytes: 100, policyMinimumBytes: 200 });
 * assert.equal(plan.minimumBytes, 700);
 * assert.equal(plan.freeBytes, 500); // what the policy may use
 * assert.throws(() => planBudget({ budgetBytes: 600, heldBytes: 300, kvBytes: 100, activationBytes: 100, policyMinimumBytes: 200 }), /below the minimum/);
 * ```
 * @module
 */
import { formatBytes } from "../device/ledger.ts";
import { OutOfBudgetError } from "../errors.ts";
import type { ModelConfig } from "../models/config.ts";

/** What {@link planBudget} weighs. */
export interface BudgetInput {
  /** The run's device budget. */
  budgetBytes: number;
  /** Bytes the ledger holds before the run (non-expert weights, anything else allocated). */
  heldBytes: number;
  /** The KV cache. */
  kvBytes: number;
  /** The reserve for one forward's temporaries ({@link activationReserve}). */
  activationBytes: number;
  /**
   * Temporaries of the policy's setup (quantizing experts): they are freed before the first
   * forward, so they share the activation reserve's room (the larger of the two counts). Default 0.
   */
  setupBytes?: number;
  /** Upload staging of the largest single transfer of a step, alive with the activations. Default 0. */
  transferBytes?: number;
  /** The policy's fewest slots. */
  policyMinimumBytes: number;
  /** The policy's name, for messages. */
  policy?: string;
}

/** A budget that fits, and what it leaves the policy. */
export interface BudgetPlan extends BudgetInput {
  /** As in the input, 0 when it had none. */
  setupBytes: number;
  /** As in the input, 0 when it had none. */
  transferBytes: number;
  /** `held + kv + max(activations + transfer, setup) + policy minimum`. */
  minimumBytes: number;
  /** `budget − held − kv − max(activations + transfer, setup)`: what the policy may fill (≥ its minimum). */
  freeBytes: number;
}

/**
 * Checks that `budgetBytes` holds the minimum and says what it leaves the policy.
 *
 * @throws {OutOfBudgetError} with the breakdown when the budget is below the minimum
 */
export function planBudget(input: BudgetInput): BudgetPlan {
  const { budgetBytes, heldBytes, kvBytes, activationBytes, policyMinimumBytes, policy = "policy" } = input;
  const setupBytes = input.setupBytes ?? 0;
  const transferBytes = input.transferBytes ?? 0;
  const transient = Math.max(activationBytes + transferBytes, setupBytes);
  const minimumBytes = heldBytes + kvBytes + transient + policyMinimumBytes;
  if (!(budgetBytes >= minimumBytes)) {
    throw new OutOfBudgetError(
      `Cannot plan the offload run: the budget of ${
        formatBytes(budgetBytes)
      } (${budgetBytes} bytes) is below ` +
        `the minimum of ${
          formatBytes(minimumBytes)
        } (${minimumBytes} bytes): non-expert weights and other held ` +
        `memory ${formatBytes(heldBytes)}, KV cache ${formatBytes(kvBytes)}, activations ` +
        `${formatBytes(activationBytes)}, upload staging ${formatBytes(transferBytes)}${
          setupBytes > activationBytes + transferBytes
            ? ` (setup scratch ${formatBytes(setupBytes)} takes their room)`
            : ""
        }, ${policy} slots ${formatBytes(policyMinimumBytes)}; raise the budget, ` +
        `shorten the sequence (KV cache and activations) or pick a policy with a smaller minimum`,
    );
  }
  return {
    ...input,
    setupBytes,
    transferBytes,
    minimumBytes,
    freeBytes: budgetBytes - heldBytes - kvBytes - transient,
  };
}

/**
 * Device bytes reserved for one forward's temporaries over `T` tokens with `S` cached positions:
 * the residual stream and its norms, q/k/v and the attention output, the attention scores
 * `[H, T, S]`, the experts' `[T, K, F]` intermediates and `[T, K, C]` outputs, the up activations of
 * every expert `[E, T, F]` (floe reads them back, with their flat copy and the concatenation: three
 * copies), one row of logits,
 * each counted twice (an op's inputs and output live at once), plus readback staging.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseModelConfig } from "../models/config.ts";
 * import { activationReserve } from "./budget.ts";
 * const config = parseModelConfig({ model_type: "mixtral", vocab_size: 96, hidden_size: 32, intermediate_size: 48,
 *   num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, num_local_experts: 4, num_experts_per_tok: 2 });
 * assert.ok(activationReserve(config, 8, 16) > activationReserve(config, 1, 16));
 * ```
 */
export function activationReserve(config: ModelConfig, T: number, S: number): number {
  const { hidden: C, heads: H, headDim: D, topK: K, vocabSize: V } = config;
  const F = Math.max(config.moeIntermediate, config.intermediate);
  const E = Math.max(config.numExperts, 1);
  const perToken = 8 * C + 4 * H * D + 2 * H * S + 3 * Math.max(K, 1) * F + 2 * Math.max(K, 1) * C +
    3 * E * F;
  return 2 * 4 * (T * perToken + 2 * V) + 64 * 1024;
}
