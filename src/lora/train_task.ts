/**
 * `TrainTask`: what the {@linkcode Trainer} trains, kept small so that any model can be trained.
 *
 * A task names its trainable tensors and records one micro-batch's forward pass on a
 * {@linkcode TrainContext}'s tape. The trainer owns everything else: data order, accumulation,
 * clipping, AdamW, schedules, checkpoints and metrics.
 *
 * @example A one-parameter regression task
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { mean, mul, scale, Tape, TrainContext } from "../autograd/mod.ts";
 * import type { TrainTask } from "./train_task.ts";
 *
 * const dev = await createDevice({ backend: "cpu" });
 * const w = Tensor.fromArray(dev, [0.5], [1], { category: "lora" }); // [1]
 * const task: TrainTask<number> = {
 *   parameters: () => new Map([["w", w]]),
 *   loss(ctx, batch) {
 *     const x = ctx.tape.keep(Tensor.fromArray(dev, batch, [batch.length])); // [b], freed with the tape
 *     const err = scale(mul(ctx.v(x), ctx.v(w)), 1, -1); // w·x - 1: [b]
 *     return { loss: mean(mul(err, err)), tokens: batch.length }; // []
 *   },
 * };
 * using tape = new Tape();
 * const ctx = new TrainContext(tape, new Set(task.parameters().values()));
 * const { loss } = await task.loss(ctx, [1, 2]);
 * assert.equal((await loss.value.toArray())[0], (0.25 + 0) / 2); // (0.5 - 1)² and (1 - 1)²
 * ```
 * @module
 */
import type { TrainContext } from "../autograd/train_context.ts";
import type { Var } from "../autograd/tape.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** What {@linkcode TrainTask.loss} returns for one micro-batch. */
export interface TaskLoss {
  /** The mean loss over the micro-batch's `tokens` (a one-element Var on `ctx.tape`). */
  loss: Var;
  /**
   * How many items the loss averages over (target tokens for a language model, rows for a
   * regression). The trainer weights micro-batches by it, so a step's gradient is the mean over
   * all of the step's tokens. A micro-batch with 0 tokens contributes nothing.
   */
  tokens: number;
  /**
   * More scalars to log, averaged over the step like the loss (token-weighted): numbers, or
   * one-element Vars read back once per step. Keys become metric columns.
   */
  extra?: Record<string, number | Var>;
}

/**
 * A model plus its objective, as the trainer sees it.
 *
 * @typeParam E One example (e.g. an `Int32Array` block of token ids); a micro-batch is
 *   `readonly E[]` of `config.batch` examples.
 */
export interface TrainTask<E> {
  /**
   * Trainable tensors by stable name (PEFT or HF names); the trainer updates them in place and
   * saves them under these names. Called once per `fit`.
   */
  parameters(): Map<string, Tensor>;
  /**
   * Records one micro-batch's forward pass on `ctx.tape` (ask `ctx.v(t)` for every weight, so
   * trainable ones become params) and returns the mean loss and its token count. Input tensors
   * built here must outlive the backward pass: hand them to `ctx.tape.keep(t)`. With
   * `ctx.training === false` (evaluation) nothing is trainable and no backward runs.
   */
  loss(ctx: TrainContext, batch: readonly E[]): TaskLoss | Promise<TaskLoss>;
}
