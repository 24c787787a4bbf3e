/**
 * LoRAM's pruning step `P(·)` for its four variants ([LoRAM](https://arxiv.org/abs/2502.13533)
 * Table 1, ALGORITHMS.md B.2), on the decoder layers of a range (default `[4, L−2)`):
 *
 * | method | plan | result |
 * | --- | --- | --- |
 * | `rand` | `randomPlan`: random MLP channels and KV heads (with their query groups) | physically smaller copy (`applyPlan`) |
 * | `stru` | `firstOrderPlan`: LLM-Pruner first-order importance from calibration blocks | physically smaller copy |
 * | `semi` | 2:4 of every decoder Linear (by magnitude, or Wanda scores with calibration norms) | same-shape copy with zeros |
 * | `unst` | unstructured at `ratio`, by magnitude or Wanda (`criterion`) | same-shape copy with zeros |
 *
 * The original model is never modified. Masked variants store their zeros, so they save no memory
 * (the paper's ▲ rows); their recovery is the identity.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "../models/load.ts";
 * import { loramPrune } from "./prune.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/llama-gqa-tied-f32", { device });
 * const r = await loramPrune(model, { method: "unst", ratio: 0.5, layers: [0, 2], criterion: "magnitude" });
 * using _small = r.model;
 * assert.ok(r.plan === null && r.sparsity === 0.5);
 * ```
 * @module
 */
import { maskWithPlan } from "../compressors/prune/apply_plan.ts";
import { applyPlan } from "../compressors/prune/apply_plan.ts";
import { collectInputNorms } from "../compressors/prune/calibration.ts";
import { createPruningPlan, planDimsOf, type PruningPlan } from "../compressors/prune/pruning_plan.ts";
import { randomPlan } from "../compressors/prune/structured.ts";
import { pruneLinears } from "../compressors/prune/unstructured.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import { firstOrderPlan } from "./first_order_plan.ts";
import { checkLayerRange, checkRatio, isStructured, type LoramMethod } from "./param_count.ts";

/** Options of {@link loramPrune}. */
export interface LoramPruneOptions {
  method: LoramMethod;
  /** Pruning ratio in (0, 1); `semi` is 2:4, so 0.5. */
  ratio: number;
  /** Decoder layers `[start, end)`; default `[4, L−2)`. */
  layers?: readonly [number, number];
  /** Seed of the random plan (default 0). */
  seed?: number;
  /** `unst`/`semi` scores: `"wanda"` (default when calibration is given) or `"magnitude"`. */
  criterion?: "magnitude" | "wanda";
  /** Calibration blocks (`T + 1` ids): required by `stru` and by Wanda scores. */
  calibration?: readonly Int32Array[];
}

/** What {@link loramPrune} returns. */
export interface LoramPruneResult {
  /** The pruned copy (owned by the caller). */
  model: CausalLM;
  /** The structured plan (`rand`, `stru`), or null for masked variants. */
  plan: PruningPlan | null;
  /** Fraction of the pruned range's decoder Linear weights removed (zeroed or cut). */
  sparsity: number;
  /** `"random"`, `"llm-pruner"`, `"2:4"`, `"magnitude"`, `"wanda"`. */
  criterion: string;
}

/**
 * Prunes a copy of `model` by LoRAM's `method` (see the module doc).
 *
 * @throws {TypeError} for a MoE model (structured and masked LoRAM are dense-only here)
 * @throws {RangeError} for a ratio outside (0, 1) (semi: other than 0.5), a layer range outside the
 *   model, `stru` or Wanda without calibration blocks
 */
export async function loramPrune(model: CausalLM, options: LoramPruneOptions): Promise<LoramPruneResult> {
  const { method, ratio, seed = 0, calibration } = options;
  const dims = planDimsOf(model.config); // MoE: a clear TypeError
  checkRatio(ratio);
  const layers = checkLayerRange(dims.layers, options.layers);
  if (isStructured(method)) {
    if (method === "stru" && !calibration?.length) {
      throw new RangeError(
        "Cannot prune with stru: it scores by calibration gradients; pass calibration blocks",
      );
    }
    const plan = method === "rand"
      ? randomPlan(dims, { ratio, layers, seed })
      : await firstOrderPlan(model, calibration!, { ratio, layers });
    const small = await applyPlan(model, plan);
    const linears = (m: CausalLM) =>
      [...m.parameters()].filter(([n]) => inRange(n, layers) && /_proj\.weight$/.test(n))
        .reduce((s, [, t]) => s + t.size, 0);
    return { model: small, plan, sparsity: 1 - linears(small) / linears(model), criterion: plan.method };
  }
  if (method === "semi" && ratio !== 0.5) {
    throw new RangeError(
      `Cannot prune with semi: 2:4 removes exactly half of the weights: ratio must be 0.5: received ${ratio}`,
    );
  }
  const criterion = options.criterion ?? (calibration?.length ? "wanda" : "magnitude");
  if (criterion === "wanda" && !calibration?.length) {
    throw new RangeError('Cannot prune with Wanda scores: pass calibration blocks, or criterion "magnitude"');
  }
  const filter = (name: string) => inRange(name, layers);
  const norms = criterion === "wanda"
    ? (await collectInputNorms(model, calibration!.map((b) => b.subarray(0, -1)), { filter })).norms
    : undefined;
  const copy = await maskWithPlan(model, createPruningPlan({ method: "copy", ratio: 0, dims, layers: [] }));
  try {
    const r = await pruneLinears(copy, {
      method: method === "semi" ? "2:4" : criterion,
      sparsity: ratio,
      norms,
      filter,
    });
    return {
      model: copy,
      plan: null,
      sparsity: r.sparsity,
      criterion: method === "semi" ? "2:4" : criterion,
    };
  } catch (err) {
    copy.dispose();
    throw err;
  }
}

function inRange(name: string, [start, end]: readonly [number, number]): boolean {
  const m = /^model\.layers\.(\d+)\./.exec(name);
  return m !== null && Number(m[1]) >= start && Number(m[1]) < end;
}
