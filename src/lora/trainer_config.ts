/**
 * `TrainerConfigSchema`: the {@linkcode Trainer}'s options, one strict zod schema with the
 * defaults as documentation. Names follow torch/`transformers.Trainer` where one exists
 * (`lr`, `betas`, `weightDecay`, `warmupSteps`, `maxGradNorm`); LoRAM's recipe (ALGORITHMS.md
 * B.5) is `{ optimizer: { lr: 1e-5 }, schedule: { warmupSteps: 100 }, batch: 4, accumulation: 32 }`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTrainerConfig, type TrainerOptions } from "./trainer_config.ts";
 * const config = parseTrainerConfig({ schedule: { totalSteps: 100, warmupSteps: 10 }, batch: 4 });
 * assert.equal(config.accumulation, 1);
 * assert.equal(config.optimizer.lr, 1e-4);
 * assert.throws(() => parseTrainerConfig({ schedule: { totalSteps: 10 }, bacth: 4 } as TrainerOptions), /did you mean "batch"/);
 * ```
 * @module
 */
import { z } from "zod";
import { parseConfig } from "../config.ts";
import { AdamWOptionsSchema } from "../optim/adamw.ts";

const Count = z.number().int().nonnegative();
const Positive = z.number().int().positive();

/** The learning-rate schedule: nanoGPT's linear warmup then cosine decay to `minLr`. */
export const TrainerScheduleSchema = z.strictObject({
  /** Steps of linear warmup from ~0 to `optimizer.lr`. */
  warmupSteps: Count.default(0),
  /** Optimizer steps to run: the run stops here and the cosine reaches `minLr` here. */
  totalSteps: Positive,
  /** Floor of the cosine decay (nanoGPT suggests `lr / 10`). */
  minLr: z.number().nonnegative().default(0),
});

/** Options of `new Trainer(task, config)`. */
export const TrainerConfigSchema = z.strictObject({
  /** AdamW options (torch names and defaults, except `lr`: 1e-4, a common LoRA rate). */
  optimizer: AdamWOptionsSchema.extend({ lr: z.number().nonnegative().default(1e-4) }).prefault({}),
  schedule: TrainerScheduleSchema,
  /** Examples (sequences) per micro-batch: what one forward/backward holds in memory. */
  batch: Positive.default(1),
  /** Micro-batches per optimizer step; the effective batch is `batch × accumulation`. */
  accumulation: Positive.default(1),
  /** Clip the global gradient norm to this; `null` measures the norm but never clips. */
  maxGradNorm: z.number().positive().nullable().default(1),
  /** Evaluate on `evalData` every this many steps (and at the end); 0: only at the end. */
  evalEvery: Count.default(0),
  /** Write a checkpoint every this many steps (and at the end); 0: only at the end. */
  checkpointEvery: Count.default(0),
  /** Checkpoint folders to keep (the newest ones). */
  keepCheckpoints: Positive.default(2),
  /** The run folder (metrics.arrow, config.json, checkpoints/); default `runs/<new run id>`. */
  runDir: z.string().min(1).optional(),
  /** Seeds the data order and the per-micro-step dropout streams. */
  seed: z.number().int().default(0),
  /** Shuffle the examples each epoch (seeded); `false` walks them in order. */
  shuffle: z.boolean().default(true),
  /** Continue from the newest checkpoint in `runDir` when there is one. */
  resume: z.boolean().default(true),
  /** Print a progress line every this many steps when the output is not a terminal. */
  logEvery: Positive.default(10),
  /** Show a progress bar (terminal or notebook); `false` for tests and batch jobs. */
  progress: z.boolean().default(true),
}).superRefine((c, ctx) => {
  if (c.schedule.warmupSteps > c.schedule.totalSteps) {
    ctx.addIssue({
      code: "custom",
      path: ["schedule", "warmupSteps"],
      message: "must be at most totalSteps",
    });
  }
  if (c.schedule.minLr > c.optimizer.lr) {
    ctx.addIssue({ code: "custom", path: ["schedule", "minLr"], message: "must be at most optimizer.lr" });
  }
});

/** What callers pass to `new Trainer(task, config)`. */
export type TrainerOptions = z.input<typeof TrainerConfigSchema>;
/** The parsed, frozen config (defaults filled); saved as the run's `config.json`. */
export type TrainerConfig = z.output<typeof TrainerConfigSchema>;

/**
 * Parses trainer options.
 *
 * @throws {ConfigError} On an unknown key (with a did-you-mean), a wrong type or range, or
 *   `warmupSteps > totalSteps` / `minLr > lr`.
 */
export function parseTrainerConfig(options: TrainerOptions): TrainerConfig {
  return parseConfig("Trainer", TrainerConfigSchema, options);
}
