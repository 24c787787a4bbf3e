/**
 * Pruners: structured plans (MLP channels and GQA KV heads, LoRAM / LLM-Pruner style) applied as a
 * physically smaller model, and unstructured / 2:4 masks (magnitude, Wanda) applied in place.
 *
 * ```
 * randomPlan | l2Plan | activationPlan ─→ PruningPlan (JSON) ─applyPlan→ smaller CausalLM
 * collectInputNorms ─→ ‖X_j‖₂ ─→ wandaMask / pruneWeight / pruneLinears (same shapes, zeros)
 * ```
 *
 * @example Plan, prune and run
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../../device/create_device.ts";
 * import { loadModel } from "../../models/load.ts";
 * import { applyPlan, l2Plan } from "./mod.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/llama-gqa-tied-f32", { device });
 * const plan = await l2Plan(model, { ratio: 0.5, layers: [0, 2] });
 * using small = await applyPlan(model, plan);
 * assert.deepEqual(small.config.layerSizes!.map((s) => s.intermediate), [32, 32]); // d_ff 64 -> 32
 * ```
 * @module
 */
export * from "./apply_plan.ts";
export * from "./calibration.ts";
export * from "./masks.ts";
export * from "./pruning_plan.ts";
export * from "./structured.ts";
export * from "./unstructured.ts";
