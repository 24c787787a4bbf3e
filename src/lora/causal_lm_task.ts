/**
 * `causalLmTask`: next-token training of a {@linkcode CausalLM} as a {@linkcode TrainTask} —
 * the whole model (pre-training, full fine-tuning) or only its LoRA adapters (a
 * {@linkcode LoraModel}: the base weights stay frozen constants on the tape and cost no gradient
 * or optimizer memory).
 *
 * One example is a block of `T + 1` token ids (`tokenizeAndPack` with `blockSize: T + 1`): the
 * model reads `T` and predicts the next token at each position. A micro-batch of blocks of one
 * length runs as one packed forward (each block attends only within itself; every projection is one
 * GEMM over all rows); blocks of different lengths run one forward each on the same tape, their
 * losses averaged token-weighted. Either way the loss is the mean over every target of the
 * micro-batch. MoE models add `routerAuxLossCoef · auxLoss` (the load-balancing loss, see
 * `src/models/train_forward.ts`; pooled over the packed micro-batch, as HF pools a batch).
 *
 * @example One full-model training step's loss on a golden checkpoint
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tape, TrainContext } from "../autograd/mod.ts";
 * import { loadModel } from "../models/load.ts";
 * import { causalLmTask } from "./causal_lm_task.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/llama-gqa-tied-f32", { device });
 * const task = causalLmTask(model);
 * using tape = new Tape();
 * const ctx = new TrainContext(tape, new Set(task.parameters().values()));
 * const { loss, tokens } = await task.loss(ctx, [Int32Array.of(1, 5, 9), Int32Array.of(2, 4, 6)]);
 * tape.backward(loss);
 * assert.ok(tokens === 4 && ctx.grad(model.norm.weight) !== null);
 * ```
 * @module
 */
import { add, scale } from "../autograd/elementwise.ts";
import type { Var } from "../autograd/tape.ts";
import type { TrainContext } from "../autograd/train_context.ts";
import type { CausalLM, LossTrainResult } from "../models/causal_lm.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { LoraModel } from "./lora_model.ts";
import type { TaskLoss, TrainTask } from "./train_task.ts";

/** Options of {@linkcode causalLmTask}. */
export interface CausalLmTaskOptions {
  /** Train only these adapters (attached to `model`); default: every weight of the model. */
  lora?: LoraModel;
  /** Weight of the MoE load-balancing loss; default: the checkpoint's `router_aux_loss_coef` or 0. */
  routerAuxLossCoef?: number;
}

/**
 * Wraps `model` (and optionally its LoRA adapters) as a trainable task over blocks of `T + 1` ids.
 *
 * @param model The model; with `lora`, the model the adapters are attached to.
 * @param options `lora` and `routerAuxLossCoef`.
 */
export function causalLmTask(model: CausalLM, options: CausalLmTaskOptions = {}): TrainTask<Int32Array> {
  const { lora, routerAuxLossCoef } = options;
  return {
    parameters: (): Map<string, Tensor> => lora ? lora.trainableParameters() : model.parameters(),
    async loss(ctx: TrainContext, batch: readonly Int32Array[]): Promise<TaskLoss> {
      if (batch.length === 0) throw new RangeError("Cannot compute the loss of an empty micro-batch");
      const parts: LossTrainResult[] = [];
      if (batch.every((b) => b.length === batch[0].length)) {
        // One packed forward over the whole micro-batch (larger GEMMs, one pass per op).
        parts.push(await model.lossTrain(ctx, batch, { routerAuxLossCoef }));
      } else {
        for (const ids of batch) parts.push(await model.lossTrain(ctx, ids, { routerAuxLossCoef }));
      }
      const tokens = parts.reduce((s, p) => s + p.tokens, 0);
      const weighted = (pick: (p: LossTrainResult) => Var | undefined): Var | undefined => {
        let acc: Var | undefined;
        for (const p of parts) {
          const v = pick(p);
          if (!v || p.tokens === 0) continue;
          const w = scale(v, p.tokens / Math.max(tokens, 1)); // [] token-weighted share
          acc = acc ? add(acc, w) : w;
        }
        return acc;
      };
      const loss = weighted((p) => p.loss) ?? scale(parts[0].loss, 0);
      const extra: Record<string, Var> = {};
      if (parts[0].auxLoss) {
        extra.lm_loss = weighted((p) => p.lmLoss)!;
        extra.aux_loss = weighted((p) => p.auxLoss)!;
      }
      return { loss, tokens, extra };
    },
  };
}
