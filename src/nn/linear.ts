/**
 * `Linear`: `y = x Wᵀ + b` with the weight stored `[out, in]`, as HF `nn.Linear` stores it, plus an
 * optional attached LoRA adapter `+ scaling · dropout(x) Aᵀ Bᵀ`. `forward` runs on raw tensors
 * (inference); `forwardTrain` records the same computation on a tape, taking every weight through a
 * {@link TrainContext} (trainable weights get gradients, frozen ones none).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { Linear } from "./linear.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const w = Tensor.fromArray(dev, [1, 0, 0, 0, 1, 1], [2, 3]); // [out=2, in=3]
 * using lin = new Linear(w, Tensor.fromArray(dev, [10, 20])); // bias [out]
 * const y = lin.forward(Tensor.fromArray(dev, [1, 2, 3], [1, 3])); // [T=1, 3] -> [1, 2]
 * assert.ok((await y.toArray()).join() === "11,25");
 * ```
 * @module
 */
import { dropout } from "../autograd/dropout.ts";
import { loraLinear } from "../autograd/lora_linear.ts";
import { linear as linearV } from "../autograd/matmul.ts";
import type { Var } from "../autograd/tape.ts";
import type { TrainContext } from "../autograd/train_context.ts";
import type { MemoryCategory } from "../device/ledger.ts";
import { add } from "../ops/elementwise.ts";
import { gemv } from "../ops/gemv.ts";
import { matmul } from "../ops/matmul.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { addAdapter, type LoraAdapter } from "./lora_adapter.ts";
import type { Module, NamedParameters } from "./module.ts";

/** A dense linear layer over the last axis. Owns its weight and bias. */
export class Linear implements Module {
  /** `[out, in]` f32. */
  readonly weight: Tensor;
  /** `[out]` f32, or undefined for a layer without bias. */
  readonly bias: Tensor | undefined;
  /**
   * A LoRA adapter applied on top of the weight (`src/lora/` attaches and detaches it; the
   * layer does not own its tensors). Undefined for a plain layer or while the adapter is merged.
   */
  adapter: LoraAdapter | undefined = undefined;
  /**
   * Called with the input of every {@link Linear.forward} (not `forwardTrain`), before the matmul:
   * calibration statistics such as Wanda's per-feature activation norms
   * (`src/compressors/prune/calibration.ts`). The hook must not dispose `x`. Undefined by default.
   */
  inputHook: ((x: Tensor) => void) | undefined = undefined;

  /**
   * @param weight `[out, in]` f32, or f16 for inference only (decode reads the halves directly,
   *   a longer input widens the weight into a temporary; training refuses it)
   * @param bias `[out]` f32, optional
   * @throws {TypeError} on a weight that is not f32/f16 `[out, in]` or a bias that is not f32 `[out]`
   */
  constructor(weight: Tensor, bias?: Tensor) {
    if ((weight.dtype !== "f32" && weight.dtype !== "f16") || weight.rank !== 2) {
      throw new TypeError(
        `Cannot create Linear: weight must be f32 or f16 [out, in]: received ${weight.dtype}[${weight.shape}]`,
      );
    }
    if (bias && (bias.dtype !== "f32" || bias.rank !== 1 || bias.shape[0] !== weight.shape[0])) {
      throw new TypeError(
        `Cannot create Linear: bias must be f32 [${
          weight.shape[0]
        }] (out): received ${bias.dtype}[${bias.shape}]`,
      );
    }
    this.weight = weight;
    this.bias = bias;
  }

  /** Input features. */
  get inFeatures(): number {
    return this.weight.shape[1];
  }

  /** Output features. */
  get outFeatures(): number {
    return this.weight.shape[0];
  }

  /** `[out, in]`. */
  get weightShape(): readonly [number, number] {
    return [this.weight.shape[0], this.weight.shape[1]];
  }

  /** The ledger category of the weight. */
  get category(): MemoryCategory {
    return this.weight.storage.allocation.category;
  }

  /** `[..., in] -> [..., out]`. */
  forward(x: Tensor): Tensor<"f32"> {
    this.inputHook?.(x);
    let y = this.weight.dtype === "f16" && x.size === this.inFeatures
      ? this.#gemv16(x) // one row of f16 weights: the halves read directly
      : matmul(x, this.weight, { transB: true }); // [..., in] x [out, in]ᵀ -> [..., out]
    if (this.bias) {
      using _y = y;
      y = add(y, this.bias); // [..., out] + [out]
    }
    if (!this.adapter) return y;
    using _y = y;
    return addAdapter(y, x, this.adapter); // [..., out]
  }

  /** `[..., in] -> [..., out]` for one row (`x.size == in`) of an f16 weight. */
  #gemv16(x: Tensor): Tensor<"f32"> {
    using row = x.reshape([this.inFeatures]); // [..., in] -> [in]
    using y = gemv(this.weight, row); // [out, in] · [in] -> [out]
    return y.reshape([...x.shape.slice(0, -1), this.outFeatures]); // [out] -> [..., out]
  }

  /**
   * The training forward: `x Wᵀ + b` on the tape, plus the adapter's
   * `scaling · dropout(x) Aᵀ Bᵀ` (dropout only when `ctx.training` and `dropout > 0`, its mask drawn
   * from `ctx.random`). Weights, bias and adapter tensors enter through `ctx.v`.
   *
   * @param x `[..., in]`
   * @param ctx the step's {@link TrainContext}
   * @returns `[..., out]`
   * @example Train only the adapter of a frozen layer
   * ```ts
   * import assert from "node:assert/strict";
   * import { createDevice } from "../device/create_device.ts";
   * import { sum, Tape, TrainContext } from "../autograd/mod.ts";
   * import { Tensor } from "../tensor/tensor.ts";
   * import { Linear } from "./linear.ts";
   * const dev = await createDevice({ backend: "cpu" });
   * const lin = new Linear(Tensor.fromArray(dev, [1, 0, 0, 1], [2, 2])); // [out, in], frozen
   * const a = Tensor.fromArray(dev, [1, 1], [1, 2]); // [r=1, in]
   * const b = Tensor.zeros(dev, [2, 1]); // [out, r=1]
   * lin.adapter = { a, b, scaling: 2, dropout: 0 };
   * using tape = new Tape();
   * const ctx = new TrainContext(tape, new Set([a, b]));
   * const y = lin.forwardTrain(ctx.v(Tensor.fromArray(dev, [1, 2], [1, 2])), ctx); // [1, 2] -> [1, 2]
   * tape.backward(sum(y));
   * assert.ok(ctx.grad(lin.weight) === null && (await ctx.grad(b)!.toArray()).join() === "6,6");
   * ```
   */
  forwardTrain(x: Var, ctx: TrainContext): Var {
    if (this.weight.dtype !== "f32") {
      throw new TypeError(
        `Cannot train through Linear [${this.weightShape}]: its weight is ${this.weight.dtype} (inference only); ` +
          "load the model with dtype f32 to train",
      );
    }
    const weight = ctx.v(this.weight);
    const bias = this.bias && ctx.v(this.bias);
    if (!this.adapter) return linearV(x, weight, bias); // [..., in] -> [..., out]
    const { a, b, scaling, dropout: p } = this.adapter;
    const xd = ctx.training && p > 0 ? dropout(x, p, ctx.random) : x; // [..., in]
    // One tape node: x Wᵀ + b + scaling · (xd Aᵀ) Bᵀ keeps z and the [..., r] product only.
    return loraLinear({ x, weight, bias, xd, a: ctx.v(a), b: ctx.v(b), scaling }); // [..., out]
  }

  /** `weight` and, when present, `bias`. */
  parameters(): NamedParameters {
    const p: NamedParameters = new Map([["weight", this.weight]]);
    if (this.bias) p.set("bias", this.bias);
    return p;
  }

  dispose(): void {
    this.weight.dispose();
    this.bias?.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
