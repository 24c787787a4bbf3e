/**
 * `LoramRunConfigSchema`: the options of one LoRAM run ({@link loramRun}), one strict zod schema
 * whose defaults are LoRAM's where they fit a small model (ALGORITHMS.md B.4, B.5, B.9): LoRA r 8,
 * α 16, dropout 0.05 on q/k/v/o/gate/up/down; alignment with the LM head frozen; recovery `zeroA`.
 * Learning rates default to values that move a 4M-parameter model in a few hundred steps (the
 * paper's 5e-5 / 1e-5 are for 13B–70B models and 1 epoch of millions of tokens).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseLoramRunConfig } from "./run_config.ts";
 * const c = parseLoramRunConfig({ model: "m", out: "o", method: "rand", ratio: 0.5, train: { steps: 10 } });
 * assert.equal(c.lora.r, 8);
 * assert.equal(c.recover, "zeroA");
 * assert.throws(() => parseLoramRunConfig({ model: "m", out: "o", method: "rand", ratio: 1, train: { steps: 1 } }), /ratio/);
 * ```
 * @module
 */
import { z } from "zod";
import { parseConfig } from "../config.ts";
import { LORAM_METHODS } from "./param_count.ts";

const Positive = z.number().int().positive();
const Count = z.number().int().nonnegative();

/** LoRAM's default LoRA targets (B.5; `lm_head` left out: the embedded models tie it). */
export const LORAM_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

/** One training stage (alignment or LoRA). */
const StageSchema = (lr: number, steps: number) =>
  z.strictObject({
    /** Optimizer steps (alignment: 0 skips it). */
    steps: Count.default(steps),
    lr: z.number().positive().default(lr),
    /** Blocks per step. */
    batch: Positive.default(4),
    /** Linear warmup steps (default a tenth of the steps). */
    warmupSteps: Count.optional(),
    /** Checkpoint every this many steps (a killed run resumes from the newest). */
    checkpointEvery: Count.default(25),
    /** Evaluate on the in-domain eval blocks every this many steps (0: at the end only). */
    evalEvery: Count.default(0),
  });

/** Options of {@link loramRun}. */
export const LoramRunConfigSchema = z.strictObject({
  /** HF folder of the original (large) model. */
  model: z.string().min(1),
  /** Output folder: plan.json, pruned/, pruned-adapter/, adapter/, merged/, eval.json, runs/. */
  out: z.string().min(1),
  method: z.enum(LORAM_METHODS),
  /** Pruning ratio in (0, 1) (semi: 0.5). */
  ratio: z.number().gt(0).lt(1),
  /** Pruned decoder layers `[start, end)`; default `[4, L−2)`. */
  layers: z.tuple([Count, Count]).optional(),
  /** `semi`/`unst` scores (default Wanda). */
  criterion: z.enum(["magnitude", "wanda"]).default("wanda"),
  /** Calibration blocks (from the alignment data) for `stru` and Wanda. */
  calibrationBlocks: Positive.default(8),
  /** Recovery of the pruned columns of A_o / A_down (B.3). */
  recover: z.enum(["zeroA", "normA"]).default("zeroA"),
  /** QLoRAM: the frozen base weights of the pruned model in NF4 with double quantisation. */
  nf4: z.boolean().default(false),
  /** Seeds the plan, the LoRA init, the data order and normA. */
  seed: z.number().int().default(0),
  lora: z.strictObject({
    r: Positive.default(8),
    alpha: z.number().positive().default(16),
    dropout: z.number().min(0).lt(1).default(0.05),
    targetModules: z.array(z.string().min(1)).min(1).default(LORAM_TARGETS),
  }).prefault({}),
  /** Continual pre-training of the pruned model, LM head frozen (B.4). */
  align: StageSchema(1e-4, 0).prefault({}),
  /** LoRA training on the pruned model (B.5). */
  train: StageSchema(1e-3, 100),
  /** Tokens scored per held-out document (its first ones), or per held-out stream. */
  evalTokens: Positive.default(4096),
  /** Tokens per perplexity window. */
  evalBlock: Positive.default(128),
});

/** What callers pass to {@link loramRun}. */
export type LoramRunOptions = z.input<typeof LoramRunConfigSchema>;
/** The parsed config (defaults filled); written to `OUT/loram_config.json`. */
export type LoramRunConfig = z.output<typeof LoramRunConfigSchema>;

/** @throws {ConfigError} on an unknown key, a wrong type or range */
export function parseLoramRunConfig(options: LoramRunOptions): LoramRunConfig {
  return parseConfig("LoramRun", LoramRunConfigSchema, options);
}
