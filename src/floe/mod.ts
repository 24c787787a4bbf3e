/**
 * FloE (Zhou et al., ICML 2025, https://arxiv.org/abs/2505.05950), model side: {@link FloeExperts}
 * (resident HQQ up, channel-major gate/down rows read sparsely per routed token),
 * {@link floeCompress}, threshold calibration and the achieved-sparsity measurement.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice, floeCompress, loadModel, measureSparsity } from "../mod.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await floeCompress(await loadModel("test/fixtures/models/mixtral-top2-f32", { device }),
 *   { upBits: 2, groupSize: 16, sparsity: 0.75, mode: "topk", denseLayers: [0] });
 * const rows = await measureSparsity(model, [Int32Array.of(1, 5, 9, 4)]);
 * assert.ok(rows.every((r) => r.layer === 1 && (r.tokens === 0 || r.kept_fraction === 0.25)));
 * ```
 * @module
 */
export * from "./floe_experts.ts";
export * from "./compress.ts";
export * from "./thresholds.ts";
export * from "./calibrate.ts";
export * from "./record.ts";
export * from "./predictor_study.ts";
export * from "./mask_study.ts";
export * from "./compression_table.ts";
export * from "./quality_table.ts";
export * from "./calibrate_channel.ts";
export * from "./train_predictor.ts";
