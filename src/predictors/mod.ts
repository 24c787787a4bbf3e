/**
 * FloE's predictors (https://arxiv.org/abs/2505.05950, ALGORITHMS.md A.4, A.5): expert predictors
 * behind one interface (next-router reuse), routing traces and the metrics of D.1.3 (the per-layer study
 * of a FloE model is `src/floe/predictor_study.ts`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { expertMetrics } from "../mod.ts";
 * assert.equal(expertMetrics(Int32Array.of(0, 1), Int32Array.of(1, 0), 2).topk, 1);
 * ```
 * @module
 */
export * from "./metrics.ts";
export * from "./trace.ts";
export * from "./expert_predictor.ts";
export * from "./trace_io.ts";
export * from "./learned.ts";
