/**
 * LoRAM's LoRA stage (B.5): LoRA with the run's settings (PEFT defaults of LoRAM: r 8, α 16,
 * dropout 0.05 on q/k/v/o/gate/up/down) trained by the `Trainer` on the in-domain blocks, with the
 * ledger's peak bytes per category and the throughput of the training. `loramRun` trains the
 * pruned model with it; the same call on the original model is the paper's "large + LoRA" baseline
 * ([LoRAM](https://arxiv.org/abs/2502.13533) Table 1).
 *
 * @example LoRA on a tiny model: two steps
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "../models/load.ts";
 * import { parseLoramRunConfig } from "./run_config.ts";
 * import { trainLora } from "./train_lora.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/llama-gqa-tied-f32", { device });
 * const config = parseLoramRunConfig({ model: "m", out: "o", method: "rand", ratio: 0.5, train: { steps: 2, batch: 2 } });
 * const blocks = Array.from({ length: 4 }, (_, s) => Int32Array.from({ length: 17 }, (_, i) => (s + 3 * i) % 100));
 * const runDir = await Deno.makeTempDir();
 * const { lora, stats } = await trainLora(model, config, { train: blocks }, runDir, { progress: false });
 * assert.equal(stats.steps, 2);
 * assert.equal(stats.trainable_params, lora.numTrainableParameters());
 * assert.ok(stats.peak_bytes.lora > 0 && stats.tokens === 2 * 2 * 16);
 * lora[Symbol.dispose]();
 * await Deno.remove(runDir, { recursive: true });
 * ```
 * @module
 */
import { causalLmTask } from "../lora/causal_lm_task.ts";
import { applyLora, type LoraModel } from "../lora/lora_model.ts";
import { Trainer } from "../lora/trainer.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import type { LoramData } from "./data.ts";
import type { LoramRunConfig } from "./run_config.ts";

/** Training figures of a LoRA stage. */
export interface TrainStats {
  trainable_params: number;
  steps: number;
  tokens: number;
  tokens_per_s: number;
  final_loss: number;
  /** Ledger peak bytes per category during LoRA training (and `total`). */
  peak_bytes: Record<string, number>;
}

/** What {@link trainLora} returns: the adapter, still attached to the model, and the figures. */
export interface TrainLoraResult {
  /** Dispose it (or `using`) to take the adapter off the model. */
  lora: LoraModel;
  stats: TrainStats;
  /** The Trainer's metrics (`metrics.arrow`: train and eval rows). */
  logPath: string;
}

/**
 * Attaches LoRA to `model` with `config.lora` and trains it on `data.train` (`config.train`,
 * evaluated on `data.evalBlocks` every `evalEvery` steps), checkpointing under `runDir`: a rerun
 * resumes from the newest checkpoint.
 */
export async function trainLora(
  model: CausalLM,
  config: Pick<LoramRunConfig, "lora" | "train" | "seed">,
  data: Pick<LoramData, "train" | "evalBlocks">,
  runDir: string,
  extras: { progress?: boolean; onStep?: (step: number) => void | Promise<void> } = {},
): Promise<TrainLoraResult> {
  const lora = applyLora(model, {
    r: config.lora.r,
    loraAlpha: config.lora.alpha,
    loraDropout: config.lora.dropout,
    targetModules: [...config.lora.targetModules],
  }, { seed: config.seed });
  try {
    const t = config.train;
    using trainer = new Trainer(causalLmTask(model, { lora }), {
      optimizer: { lr: t.lr, weightDecay: 0 },
      schedule: {
        totalSteps: t.steps,
        warmupSteps: t.warmupSteps ?? Math.floor(t.steps / 10),
        minLr: t.lr / 10,
      },
      batch: t.batch,
      evalEvery: t.evalEvery,
      checkpointEvery: t.checkpointEvery,
      runDir,
      seed: config.seed,
      progress: extras.progress ?? true,
    });
    const ledger = model.device.ledger;
    ledger.resetPeak();
    let tokens = 0;
    let seconds = 0;
    const fit = await trainer.fit(data.train, {
      // No eval blocks (`evalBlocks: 0`): no curve, and no end-of-training evaluation.
      evalData: data.evalBlocks?.length ? data.evalBlocks : undefined,
      onStep: async (r) => {
        tokens += r.tokens;
        seconds += r.tokens / r.tokensPerS;
        await extras.onStep?.(r.step);
      },
    });
    const peak: Record<string, number> = { total: ledger.peak() };
    for (const u of ledger.usage()) peak[u.category] = u.peak;
    const stats: TrainStats = {
      trainable_params: lora.numTrainableParameters(),
      steps: fit.step,
      tokens,
      tokens_per_s: seconds > 0 ? tokens / seconds : 0,
      final_loss: fit.loss,
      peak_bytes: peak,
    };
    return { lora, stats, logPath: `${fit.runDir}/metrics.arrow` };
  } catch (e) {
    lora[Symbol.dispose]();
    throw e;
  }
}
