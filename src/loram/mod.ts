/**
 * LoRAM ([Zhang et al., ICLR 2025](https://arxiv.org/abs/2502.13533)): train LoRA on a pruned
 * (optionally NF4-quantized) model, recover the low-rank matrices to the original shapes, and merge
 * them into the original model.
 *
 * ```
 * loramParamCounts(config) ─→ params, pruned params, LoRAM / QLoRAM reduction and GiB
 * loramPrune(model, rand | stru | semi | unst) ─→ plan + pruned copy
 * pruned-model LoRA ─recoverLora / recoverAdapterFolder(plan)→ full-shape adapter for the original
 * loramRun(device, options, data) ─→ OUT/ plan.json, pruned/, pruned-adapter/, adapter/, merged/, eval.json
 * ```
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseModelConfig } from "../models/config.ts";
 * import { loramParamCounts } from "./mod.ts";
 * const config = parseModelConfig(JSON.parse(await Deno.readTextFile("examples/models/brown-dense/config.json")));
 * assert.equal(loramParamCounts(config, { method: "rand", ratio: 0.5 }).pruned_params, 3_542_208);
 * ```
 * @module
 */
export * from "./param_count.ts";
export * from "./first_order_plan.ts";
export * from "./prune.ts";
export * from "./qloram.ts";
export * from "./recover.ts";
export * from "./run_config.ts";
export * from "./pipeline.ts";
export * from "./data.ts";
export * from "./eval.ts";
export * from "./held_out.ts";
export * from "./curves.ts";
export * from "./train_lora.ts";
export * from "./summary.ts";
export * from "./tables.ts";
