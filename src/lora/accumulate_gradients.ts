/**
 * One optimizer step's worth of gradients: runs a {@linkcode TrainTask} over the step's
 * micro-batches, each on a fresh {@linkcode Tape}, and sums the gradients into a
 * {@linkcode GradAccumulator}.
 *
 * **What the gradient means.** Micro-batch `m` returns a mean loss `Lₘ` over `nₘ` tokens. The
 * tape runs backward on `nₘ·Lₘ` (the micro-batch's summed loss), the accumulator sums those
 * gradients, and {@linkcode AccumulatedStep.gradScale} is `1 / Σ nₘ`, so the step's gradient is
 * `Σₘ nₘ∇Lₘ / Σₘ nₘ`: the gradient of the mean loss over *every token of the step*, exactly what
 * one big micro-batch of all the examples would give. (This is the token-weighted accumulation
 * `transformers` adopted in 4.46; with equal token counts it equals the classic `1/accumulation`
 * scaling.) The reported `loss` is the same token-weighted mean.
 *
 * @example Two micro-batches of a one-weight model
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { mean, mul } from "../autograd/mod.ts";
 * import { GradAccumulator } from "../optim/grad_accumulator.ts";
 * import { accumulateGradients } from "./accumulate_gradients.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const w = Tensor.fromArray(dev, [2], [1]); // [1]
 * const task = {
 *   parameters: () => new Map([["w", w]]),
 *   loss(ctx: import("../autograd/mod.ts").TrainContext, xs: readonly number[]) {
 *     const x = ctx.tape.keep(Tensor.fromArray(dev, xs, [xs.length])); // [b]
 *     return { loss: mean(mul(ctx.v(x), ctx.v(w))), tokens: xs.length }; // mean(w·x): []
 *   },
 * };
 * using acc = new GradAccumulator();
 * const step = await accumulateGradients(task, [[1], [2, 3]], { accumulator: acc });
 * assert.equal(step.tokens, 3);
 * assert.equal(step.loss, (2 + 4 + 6) / 3);
 * assert.equal((await acc.get("w")!.toArray())[0] * step.gradScale, 2); // d/dw mean(w·x) = mean(x)
 * ```
 * @module
 */
import { scale } from "../autograd/elementwise.ts";
import { Tape } from "../autograd/tape.ts";
import { TrainContext } from "../autograd/train_context.ts";
import type { GradAccumulator, NamedGrad } from "../optim/grad_accumulator.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { ScalarSums } from "./_scalar_sums.ts";
import type { TrainTask } from "./train_task.ts";

/** Options of {@linkcode accumulateGradients}. */
export interface AccumulateOptions {
  /** Receives the summed gradients; reset it after the optimizer step. */
  accumulator: GradAccumulator;
  /** Dropout seed of each micro-batch (default: its index). */
  seeds?: readonly number[];
  /** The trainable tensors (default: `task.parameters()`). */
  parameters?: Map<string, Tensor>;
  /** Names the step in error messages (default 0). */
  step?: number;
}

/** What one step's micro-batches measured. */
export interface AccumulatedStep {
  /** Token-weighted mean loss over the step (NaN or ±Infinity pass through). */
  loss: number;
  /** Tokens of the step: `Σ nₘ`. */
  tokens: number;
  /** Multiply the accumulated gradients by this to get the step's mean gradient: `1 / tokens`. */
  gradScale: number;
  /** Token-weighted means of the task's `extra` values. */
  extra: Record<string, number>;
}

/**
 * Runs forward and backward for each micro-batch and sums `nₘ·∇Lₘ` into `accumulator` (see the
 * module doc). Each tape is disposed right after its gradients are added.
 *
 * @throws {TypeError} When the task returns a non-integer or negative token count, or the step
 *   has no tokens at all.
 */
export async function accumulateGradients<E>(
  task: TrainTask<E>,
  microBatches: readonly (readonly E[])[],
  options: AccumulateOptions,
): Promise<AccumulatedStep> {
  const params = options.parameters ?? task.parameters();
  const trainable = new Set(params.values());
  const step = options.step ?? 0;
  using sums = new ScalarSums();
  let tokens = 0;
  for (let m = 0; m < microBatches.length; m++) {
    using tape = new Tape();
    const ctx = new TrainContext(tape, trainable, { training: true, seed: options.seeds?.[m] ?? m });
    const out = await task.loss(ctx, microBatches[m]);
    const n = out.tokens;
    if (!Number.isInteger(n) || n < 0) {
      throw new TypeError(
        `Cannot train step ${step}: task.loss returned tokens = ${n} for micro-batch ${m}; ` +
          `return the number of items its mean loss averages over`,
      );
    }
    if (n > 0) {
      tape.backward(scale(out.loss, n)); // nₘ·Lₘ: []
      const grads: NamedGrad[] = [];
      for (const [name, t] of params) {
        const g = ctx.takeGrad(t); // the accumulator owns it from here
        if (g) grads.push({ name, grad: g });
      }
      options.accumulator.addOwned(grads);
    }
    sums.add("loss", out.loss.value, n);
    for (const [key, v] of Object.entries(out.extra ?? {})) {
      sums.add(key, typeof v === "number" ? v : v.value, n);
    }
    tokens += n;
  }
  if (tokens === 0) {
    throw new TypeError(
      `Cannot train step ${step}: its ${microBatches.length} micro-batches hold no tokens; ` +
        `check the data (every target ignored?)`,
    );
  }
  const { loss, ...extra } = await sums.read();
  return { loss, tokens, gradScale: 1 / tokens, extra };
}
