/**
 * `evaluateLoss`: a {@linkcode TrainTask}'s token-weighted mean loss over a data set, without
 * gradients (nothing is trainable, dropout is off), and its perplexity `exp(loss)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { mean, mul, type TrainContext } from "../autograd/mod.ts";
 * import { evaluateLoss } from "./evaluate.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const w = Tensor.fromArray(dev, [2], [1]); // [1]
 * const task = {
 *   parameters: () => new Map([["w", w]]),
 *   loss(ctx: TrainContext, xs: readonly number[]) {
 *     const x = ctx.tape.keep(Tensor.fromArray(dev, xs, [xs.length])); // [b]
 *     return { loss: mean(mul(ctx.v(x), ctx.v(w))), tokens: xs.length }; // []
 *   },
 * };
 * const { loss, tokens } = await evaluateLoss(task, [1, 2, 3], { batch: 2 }); // batches [1, 2], [3]
 * assert.equal(tokens, 3);
 * assert.equal(loss, 4); // mean(2·x)
 * ```
 * @module
 */
import { Tape } from "../autograd/tape.ts";
import { TrainContext } from "../autograd/train_context.ts";
import { ScalarSums } from "./_scalar_sums.ts";
import type { TrainTask } from "./train_task.ts";

/** What {@linkcode evaluateLoss} measured. */
export interface EvalResult {
  /** Token-weighted mean loss over the data. */
  loss: number;
  /** `exp(loss)`. */
  ppl: number;
  /** Tokens evaluated. */
  tokens: number;
  /** Token-weighted means of the task's `extra` values. */
  extra: Record<string, number>;
}

/**
 * Runs `task.loss` over `data` in order, `batch` examples at a time (the last batch may be
 * smaller), with `training: false` and no trainable tensors; one readback per reported value.
 *
 * @throws {RangeError} When `data` is empty or `batch` is not a positive integer.
 */
export async function evaluateLoss<E>(
  task: TrainTask<E>,
  data: readonly E[],
  options: { batch: number },
): Promise<EvalResult> {
  const { batch } = options;
  if (!Number.isInteger(batch) || batch < 1) {
    throw new RangeError(`Cannot evaluate: batch must be a positive integer: received ${batch}`);
  }
  if (data.length === 0) throw new RangeError("Cannot evaluate: the evaluation data is empty");
  using sums = new ScalarSums();
  const frozen = new Set<never>();
  let tokens = 0;
  for (let i = 0; i < data.length; i += batch) {
    using tape = new Tape();
    const ctx = new TrainContext(tape, frozen, { training: false });
    const out = await task.loss(ctx, data.slice(i, i + batch));
    sums.add("loss", out.loss.value, out.tokens);
    for (const [key, v] of Object.entries(out.extra ?? {})) {
      sums.add(key, typeof v === "number" ? v : v.value, out.tokens);
    }
    tokens += out.tokens;
  }
  const { loss, ...extra } = await sums.read();
  return { loss, ppl: Math.exp(loss), tokens, extra };
}
