/**
 * Learning-rate schedules: functions from a 0-based step to a learning rate.
 *
 * - {@linkcode linearWarmupCosine}: nanoGPT's `get_lr` (linear warmup, cosine decay to `minLr`,
 *   then `minLr` forever).
 * - {@linkcode cosineWithWarmup}: Hugging Face `get_cosine_schedule_with_warmup` (the
 *   `lr_scheduler_type="cosine"` of `transformers.Trainer`, which LoRAM's scripts use), decaying
 *   to 0.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { linearWarmupCosine } from "./schedules.ts";
 * const lr = linearWarmupCosine({ warmupSteps: 10, totalSteps: 100, maxLr: 6e-4, minLr: 6e-5 });
 * assert.ok(lr(9) === 6e-4 * 10 / 11); // still warming up
 * assert.ok(Math.abs(lr(55) - 3.3e-4) < 1e-12); // halfway through the decay
 * assert.ok(lr(500) === 6e-5);
 * ```
 * @module
 */
import { z } from "zod";
import { parseConfig } from "../config.ts";

/** A learning-rate schedule: 0-based optimizer step → learning rate. */
export type LrSchedule = (step: number) => number;

const Steps = z.number().int().nonnegative();

/** Options of {@link linearWarmupCosine}. */
export const LinearWarmupCosineSchema = z.strictObject({
  /** nanoGPT `warmup_iters`. */
  warmupSteps: Steps,
  /** nanoGPT `lr_decay_iters`: the step at which the decay reaches `minLr`. */
  totalSteps: Steps,
  /** nanoGPT `learning_rate`. */
  maxLr: z.number().nonnegative(),
  /** nanoGPT `min_lr` (it suggests `maxLr / 10`). Default 0. */
  minLr: z.number().nonnegative().default(0),
}).superRefine((o, ctx) => {
  if (o.warmupSteps > o.totalSteps) {
    ctx.addIssue({ code: "custom", path: ["warmupSteps"], message: "must be at most totalSteps" });
  }
  if (o.minLr > o.maxLr) ctx.addIssue({ code: "custom", path: ["minLr"], message: "must be at most maxLr" });
});

/**
 * nanoGPT's `get_lr(it)`, step for step:
 *
 * ```text
 * it <  warmup:          maxLr · (it + 1) / (warmup + 1)
 * it >  total:           minLr
 * otherwise:             minLr + ½(1 + cos(π · (it − warmup) / (total − warmup))) · (maxLr − minLr)
 * ```
 *
 * (When `warmupSteps === totalSteps`, the single decay step returns `maxLr`.)
 *
 * @throws {ConfigError} On negative or non-integer steps, `warmupSteps > totalSteps` or `minLr > maxLr`.
 */
export function linearWarmupCosine(options: z.input<typeof LinearWarmupCosineSchema>): LrSchedule {
  const { warmupSteps, totalSteps, maxLr, minLr } = parseConfig(
    "linearWarmupCosine",
    LinearWarmupCosineSchema,
    options,
  );
  return (it: number) => {
    if (it < warmupSteps) return maxLr * (it + 1) / (warmupSteps + 1);
    if (it > totalSteps) return minLr;
    const span = totalSteps - warmupSteps;
    const ratio = span === 0 ? 0 : (it - warmupSteps) / span;
    const coeff = 0.5 * (1 + Math.cos(Math.PI * ratio));
    return minLr + coeff * (maxLr - minLr);
  };
}

/** Options of {@link cosineWithWarmup}. */
export const CosineWithWarmupSchema = z.strictObject({
  /** HF `num_warmup_steps`. */
  warmupSteps: Steps,
  /** HF `num_training_steps`. */
  totalSteps: Steps,
  /** The optimizer's base learning rate (HF multiplies its lambda by it). */
  maxLr: z.number().nonnegative(),
  /** HF `num_cycles`; 0.5 is one half-cosine from `maxLr` to 0. */
  numCycles: z.number().positive().default(0.5),
});

/**
 * Hugging Face `get_cosine_schedule_with_warmup`: `maxLr · step / max(1, warmup)` during warmup,
 * then `maxLr · max(0, ½(1 + cos(2π · numCycles · progress)))` with
 * `progress = (step − warmup) / max(1, total − warmup)`. Like the original, it is periodic past
 * `totalSteps` (the Trainer never steps that far); use {@link linearWarmupCosine} to hold a floor.
 */
export function cosineWithWarmup(options: z.input<typeof CosineWithWarmupSchema>): LrSchedule {
  const { warmupSteps, totalSteps, maxLr, numCycles } = parseConfig(
    "cosineWithWarmup",
    CosineWithWarmupSchema,
    options,
  );
  return (step: number) => {
    if (step < warmupSteps) return maxLr * step / Math.max(1, warmupSteps);
    const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
    return maxLr * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * numCycles * 2 * progress)));
  };
}
