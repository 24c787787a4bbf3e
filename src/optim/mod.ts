/**
 * Optimisation: {@linkcode AdamW} (in-place, torch semantics), learning-rate schedules,
 * global-norm gradient clipping and gradient accumulation.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AdamW, linearWarmupCosine } from "./mod.ts";
 * const opt = new AdamW({ lr: 1e-4 });
 * const lr = linearWarmupCosine({ warmupSteps: 100, totalSteps: 1000, maxLr: 1e-4, minLr: 1e-5 });
 * opt.lr = lr(0);
 * assert.ok(opt.lr === 1e-4 / 101);
 * ```
 * @module
 */
export * from "./adamw.ts";
export * from "./clip_grad.ts";
export * from "./grad_accumulator.ts";
export * from "./schedules.ts";
