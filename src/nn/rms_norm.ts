/**
 * `RMSNorm` (Zhang & Sennrich 2019, https://arxiv.org/abs/1910.07467) as HF `LlamaRMSNorm`:
 * `x / sqrt(mean(x²) + eps) · weight` over the last axis.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { RMSNorm } from "./rms_norm.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * using norm = new RMSNorm(Tensor.fromArray(dev, [1, 1]), 0); // weight [C=2]
 * const y = await norm.forward(Tensor.fromArray(dev, [3, 4], [1, 2])).toArray(); // [1, 2] -> [1, 2]
 * assert.ok(Math.abs(y[0] - 3 / Math.sqrt(12.5)) < 1e-6);
 * ```
 * @module
 */
import type { Var } from "../autograd/tape.ts";
import type { TrainContext } from "../autograd/train_context.ts";
import { rmsNorm as rmsNormV } from "../autograd/transformer.ts";
import { rmsNorm } from "../ops/rmsnorm.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Module, NamedParameters } from "./module.ts";

/** Root-mean-square normalisation with a learned gain. Owns its weight. */
export class RMSNorm implements Module {
  /** `[C]` f32 gain. */
  readonly weight: Tensor;
  /** Added to the mean square (`rms_norm_eps`). */
  readonly eps: number;

  /**
   * @param weight `[C]` f32
   * @param eps non-negative, finite
   */
  constructor(weight: Tensor, eps: number) {
    if (weight.dtype !== "f32" || weight.rank !== 1) {
      throw new TypeError(
        `Cannot create RMSNorm: weight must be f32 [C]: received ${weight.dtype}[${weight.shape}]`,
      );
    }
    if (!(Number.isFinite(eps) && eps >= 0)) {
      throw new RangeError(
        `Cannot create RMSNorm: eps must be a finite non-negative number: received ${eps}`,
      );
    }
    this.weight = weight;
    this.eps = eps;
  }

  /** `[..., C] -> [..., C]`. */
  forward(x: Tensor): Tensor<"f32"> {
    return rmsNorm(x, this.weight, this.eps);
  }

  /**
   * The training forward on the tape; the gain enters through `ctx.v`.
   *
   * @param x `[..., C]`
   * @param ctx the step's {@link TrainContext}
   * @returns `[..., C]`
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { createDevice } from "../device/create_device.ts";
   * import { sum, Tape, TrainContext } from "../autograd/mod.ts";
   * import { Tensor } from "../tensor/tensor.ts";
   * import { RMSNorm } from "./rms_norm.ts";
   * const dev = await createDevice({ backend: "cpu" });
   * const norm = new RMSNorm(Tensor.fromArray(dev, [1, 1]), 0); // weight [C=2]
   * using tape = new Tape();
   * const ctx = new TrainContext(tape, new Set([norm.weight]));
   * tape.backward(sum(norm.forwardTrain(ctx.v(Tensor.fromArray(dev, [3, 4], [1, 2])), ctx))); // [1, 2]
   * assert.ok(Math.abs((await ctx.grad(norm.weight)!.toArray())[0] - 3 / Math.sqrt(12.5)) < 1e-6);
   * ```
   */
  forwardTrain(x: Var, ctx: TrainContext): Var {
    return rmsNormV(x, ctx.v(this.weight), this.eps); // [..., C]
  }

  parameters(): NamedParameters {
    return new Map([["weight", this.weight]]);
  }

  dispose(): void {
    this.weight.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
