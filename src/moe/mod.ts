/**
 * Offloading (FloE, Zhou et al., ICML 2025, https://arxiv.org/abs/2505.05950, part 2; ALGORITHMS.md
 * A.6–A.8, C.1): a MoE model whose experts live in host memory decodes under a device budget with
 * one of the policies `resident`, `ondemand`, `cached` and `floe`; the systems table, the budget
 * sweep, the cache table and the hardware projection.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice, openOffloadRuntime } from "../mod.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using rt = await openOffloadRuntime("test/fixtures/models/mixtral-top2-f32", {
 *   device, budgetBytes: 2 ** 22, policy: "cached", maxSeq: 12,
 * });
 * const { tokens, report } = await rt.generate([1, 5, 9], { maxNewTokens: 3 });
 * assert.equal(tokens.length, 3);
 * assert.ok(report.peakDeviceBytes <= report.budgetBytes);
 * ```
 * @module
 */
export * from "./host_experts.ts";
export * from "./transfer.ts";
export * from "./slots.ts";
export * from "./quant_slots.ts";
export * from "./policy.ts";
export * from "./policies/resident.ts";
export * from "./policies/ondemand.ts";
export * from "./policies/cached.ts";
export * from "./policies/floe.ts";
export * from "./budget.ts";
export * from "./report.ts";
export * from "./create_policy.ts";
export * from "./runtime.ts";
export * from "./bench.ts";
export * from "./sweep.ts";
export * from "./projection.ts";
