/**
 * Learned expert predictors of FloE (Zhou et al., ICML 2025, https://arxiv.org/abs/2505.05950;
 * ALGORITHMS.md A.5): from layer `i`'s MoE input `h_i`, raw scores over layer `i+1`'s experts,
 * trained (SmoothL1 to the multi-hot label of the true top-k; `src/floe/train_predictor.ts`) on
 * routing traces. {@link LinearExpertPredictor} is one `C → E` layer initialised from the next
 * layer's router (it starts as router reuse); {@link MlpExpertPredictor} is `C → hidden → SiLU → E`
 * with bias (hidden 512 in the authors' code).
 *
 * Legend: `T` tokens, `C` hidden, `E` experts, `H` MLP width.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { MlpExpertPredictor } from "./learned.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using p = new MlpExpertPredictor(device, { hidden: 32, features: 16, experts: 4, seed: 1 });
 * assert.deepEqual(p.predict(1, Tensor.zeros(device, [3, 16])).shape, [3, 4]); // [T, C] -> [T, E]
 * ```
 * @module
 */
import { silu as siluV } from "../autograd/elementwise.ts";
import { linear as linearV } from "../autograd/matmul.ts";
import type { Var } from "../autograd/tape.ts";
import type { TrainContext } from "../autograd/train_context.ts";
import type { Device } from "../device/device.ts";
import type { Linear } from "../nn/linear.ts";
import type { NamedParameters } from "../nn/module.ts";
import { add, silu } from "../ops/elementwise.ts";
import { matmul } from "../ops/matmul.ts";
import { randn } from "../tensor/random.ts";
import { Tensor } from "../tensor/tensor.ts";
import type { ExpertPredictor } from "./expert_predictor.ts";

/** A trainable expert predictor. */
export interface LearnedExpertPredictor extends ExpertPredictor {
  /** `[T, C] -> [T, E]` on the tape. */
  forwardTrain(ctx: TrainContext, h: Var): Var;
  /** The trainable tensors by name. */
  parameters(): NamedParameters;
  dispose(): void;
}

const affine = (x: Tensor, w: Tensor, b: Tensor): Tensor<"f32"> => {
  using y = matmul(x, w, { transB: true }); // [T, in] x [out, in]ᵀ -> [T, out]
  return add(y, b); // [T, out]
};

/** `scores = h Wᵀ + b`, `W [E, C]` initialised from the next layer's router. Owns its tensors. */
export class LinearExpertPredictor implements LearnedExpertPredictor {
  readonly kind = "learned-linear";
  readonly weight: Tensor;
  readonly bias: Tensor;

  /** @param weight `[E, C]` f32 and `bias` `[E]` f32; ownership passes to the predictor */
  constructor(weight: Tensor, bias: Tensor) {
    if (weight.rank !== 2 || bias.rank !== 1 || bias.shape[0] !== weight.shape[0]) {
      throw new TypeError(
        `Cannot create LinearExpertPredictor: expected weight [E, C] and bias [E]: received [${weight.shape}], [${bias.shape}]`,
      );
    }
    this.weight = weight;
    this.bias = bias;
  }

  /** A copy of the target layer's dense router `[E, C]`, bias 0: it starts as router reuse. */
  static async fromRouter(router: Linear): Promise<LinearExpertPredictor> {
    const [E, C] = router.weightShape;
    const device = router.weight.device;
    const w = await router.weight.toArray() as Float32Array;
    return new LinearExpertPredictor(
      Tensor.fromArray(device, w, [E, C], { category: "weights" }),
      Tensor.zeros(device, [E], { category: "weights" }),
    );
  }

  predict(_target: number, h: Tensor): Tensor<"f32"> {
    return affine(h, this.weight, this.bias); // [T, C] -> [T, E]
  }

  forwardTrain(ctx: TrainContext, h: Var): Var {
    return linearV(h, ctx.v(this.weight), ctx.v(this.bias)); // [T, C] -> [T, E]
  }

  parameters(): NamedParameters {
    return new Map([["weight", this.weight], ["bias", this.bias]]);
  }

  dispose(): void {
    this.weight.dispose();
    this.bias.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** `scores = SiLU(h W1ᵀ + b1) W2ᵀ + b2`, initialised `N(0, 1/fan_in)` from `seed`. Owns its tensors. */
export class MlpExpertPredictor implements LearnedExpertPredictor {
  readonly kind = "learned-mlp";
  readonly w1: Tensor;
  readonly b1: Tensor;
  readonly w2: Tensor;
  readonly b2: Tensor;

  constructor(device: Device, dims: { features: number; experts: number; hidden?: number; seed?: number }) {
    const { features: C, experts: E, hidden: H = 512, seed = 0 } = dims;
    const w = { category: "weights" } as const;
    this.w1 = Tensor.fromArray(device, randn(H * C, seed, 1 / Math.sqrt(C)), [H, C], w);
    this.b1 = Tensor.zeros(device, [H], w);
    this.w2 = Tensor.fromArray(device, randn(E * H, seed + 1, 1 / Math.sqrt(H)), [E, H], w);
    this.b2 = Tensor.zeros(device, [E], w);
  }

  predict(_target: number, h: Tensor): Tensor<"f32"> {
    using z = affine(h, this.w1, this.b1); // [T, C] -> [T, H]
    using a = silu(z); // [T, H]
    return affine(a, this.w2, this.b2); // [T, H] -> [T, E]
  }

  forwardTrain(ctx: TrainContext, h: Var): Var {
    const a = siluV(linearV(h, ctx.v(this.w1), ctx.v(this.b1))); // [T, C] -> [T, H]
    return linearV(a, ctx.v(this.w2), ctx.v(this.b2)); // [T, H] -> [T, E]
  }

  parameters(): NamedParameters {
    return new Map([["w1", this.w1], ["b1", this.b1], ["w2", this.w2], ["b2", this.b2]]);
  }

  dispose(): void {
    for (const t of [this.w1, this.b1, this.w2, this.b2]) t.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
