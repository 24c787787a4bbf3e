/**
 * `pruneLinears(model, options)`: unstructured (magnitude, Wanda) or 2:4 semi-structured pruning of
 * every decoder Linear of a model, **in place**: each weight is read back, masked on the host
 * (`masks.ts`) and written back with its pruned entries zero. Shapes do not change, so, as LoRAM
 * notes for its Semi/Unst variants, memory is not saved ([LoRAM](https://arxiv.org/abs/2502.13533)
 * Table 1; [Wanda](https://arxiv.org/abs/2306.11695)).
 *
 * Routers (`mlp.gate`, `shared_expert_gate`) are left alone by default; routed MoE experts are
 * stacked tensors, not Linears, and are not pruned.
 *
 * @example Wanda at 50% with norms from one calibration sequence
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../../device/create_device.ts";
 * import { loadModel } from "../../models/load.ts";
 * import { collectInputNorms } from "./calibration.ts";
 * import { pruneLinears } from "./unstructured.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/llama-gqa-tied-f32", { device });
 * const { norms } = await collectInputNorms(model, [Int32Array.of(1, 5, 9, 2)]);
 * const { sparsity, modules } = await pruneLinears(model, { method: "wanda", sparsity: 0.5, norms });
 * assert.equal(sparsity, 0.5);
 * assert.equal(modules.length, 7 * model.config.layers); // q, k, v, o, gate, up, down
 * ```
 * @module
 */
import type { CausalLM } from "../../models/causal_lm.ts";
import { decoderLinears, type InputNorms } from "./calibration.ts";
import { type MaskMethod, pruneWeight } from "./masks.ts";
import { getPruner } from "./pruner.ts";

/** Options of {@link pruneLinears}. */
export interface PruneLinearsOptions {
  method: MaskMethod;
  /** Fraction to prune per weight, in [0, 1) (2:4: 0.5 or left out). */
  sparsity?: number;
  /** Per-module input norms from `collectInputNorms` (required by Wanda; 2:4 uses them when given). */
  norms?: InputNorms;
  /** Which modules to prune (default: all but routers). */
  filter?: (name: string) => boolean;
}

/** One pruned module. */
export interface PrunedModule {
  readonly name: string;
  /** `[out, in]`. */
  readonly shape: readonly [number, number];
  readonly sparsity: number;
}

/** What {@link pruneLinears} returns. */
export interface PruneLinearsResult {
  readonly modules: readonly PrunedModule[];
  /** Pruned fraction over all pruned weights. */
  readonly sparsity: number;
}

const ROUTER = /\.mlp\.gate$|\.shared_expert_gate$/;

/**
 * Prunes the decoder Linears of `model` in place.
 *
 * @throws {RangeError} when Wanda lacks a module's norms (or they have the wrong length), 2:4 meets a
 *   module whose inputs are not divisible by 4, and as `pruneWeight`. These are checked before any
 *   weight is written; only a non-finite weight can stop the pass midway (earlier modules stay pruned).
 */
export async function pruneLinears(
  model: CausalLM,
  options: PruneLinearsOptions,
): Promise<PruneLinearsResult> {
  const { method, sparsity, norms, filter = (n: string) => !ROUTER.test(n) } = options;
  const pruner = getPruner(method);
  const targets = decoderLinears(model).filter((m) => filter(m.name));
  for (const { name, linear } of targets) {
    const why = pruner.unfit?.([linear.outFeatures, linear.inFeatures]);
    if (why) throw new RangeError(`Cannot prune with ${method}: ${name}: ${why}; leave it out with filter`);
  }
  const wrong = targets.find((m) => norms?.has(m.name) && norms.get(m.name)!.length !== m.linear.inFeatures);
  if (wrong) {
    throw new RangeError(
      `Cannot prune ${wrong.name}: its input norms have ${norms!.get(wrong.name)!.length} entries, ` +
        `expected ${wrong.linear.inFeatures}`,
    );
  }
  if (pruner.inputNorms === "required") {
    const missing = targets.filter((m) => !norms?.has(m.name)).map((m) => m.name);
    if (missing.length > 0) {
      throw new RangeError(
        `Cannot prune with ${method}: no input norms for ${missing.slice(0, 3).join(", ")}${
          missing.length > 3 ? ` and ${missing.length - 3} more` : ""
        }; collect them with collectInputNorms(model, sequences)`,
      );
    }
  }
  const modules: PrunedModule[] = [];
  let zeros = 0;
  let total = 0;
  for (const { name, linear } of targets) {
    const shape = [linear.outFeatures, linear.inFeatures] as const;
    const w = await linear.weight.toArray() as Float32Array; // [out, in]
    const r = pruneWeight(w, shape, { method, sparsity, inputNorms: norms?.get(name) });
    model.device.upload(linear.weight.storage, r.pruned);
    modules.push({ name, shape, sparsity: r.sparsity });
    zeros += Math.round(r.sparsity * w.length);
    total += w.length;
  }
  return { modules, sparsity: total > 0 ? zeros / total : 0 };
}
