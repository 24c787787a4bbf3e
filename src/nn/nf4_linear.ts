/**
 * `Nf4Linear`: a linear layer whose frozen weight is a packed `QuantizedTensor` (NF4 with double
 * quantisation for QLoRAM, [LoRAM](https://arxiv.org/abs/2502.13533) §3.3; QLoRA's layer,
 * [Dettmers et al. 2023](https://arxiv.org/abs/2305.14314)), with an optional LoRA adapter. It has
 * `Linear`'s surface (`adapter`, `inFeatures`, `outFeatures`, `forward`, `forwardTrain`,
 * `parameters`, `dispose`) so it can stand where a `Linear` stands in attention and MLP blocks and
 * LoRA attaches to it as to a `Linear`; it holds no f32 weight:
 *
 * - `forward` (inference): `qmatmul(x, q)` (+ bias) (+ the adapter), codes dequantised in registers;
 * - `forwardTrain`: one tape node (`quantizedLoraLinear`), whose backward dequantises `Ŵ` only
 *   transiently for `dx = dz · Ŵ`.
 *
 * Reading `weight` throws: merging an adapter into 4-bit weights is what LoRAM avoids (the
 * recovered adapter merges into the original full-precision model).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { quantize } from "../compressors/quant/quantize.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { Nf4Linear } from "./nf4_linear.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const q = await quantize(Tensor.fromArray(dev, new Float32Array(3 * 64).fill(0.25), [3, 64]), { method: "nf4", doubleQuant: true });
 * using lin = new Nf4Linear(q);
 * const y = lin.forward(Tensor.fromArray(dev, new Float32Array(64).fill(1), [1, 64])); // [1, 64] -> [1, 3]
 * assert.equal(lin.outFeatures, 3);
 * assert.ok(Math.abs((await y.toArray())[0] - 16) < 1e-3);
 * ```
 * @module
 */
import { dropout } from "../autograd/dropout.ts";
import { quantizedLoraLinear } from "../autograd/quantized_lora_linear.ts";
import type { Var } from "../autograd/tape.ts";
import type { TrainContext } from "../autograd/train_context.ts";
import { add, scale } from "../ops/elementwise.ts";
import { matmul } from "../ops/matmul.ts";
import { qmatmul } from "../ops/qmatmul.ts";
import { disposeQuantized, type QuantizedTensor } from "../tensor/quantized_tensor.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { LoraAdapter } from "./lora_adapter.ts";
import type { NamedParameters } from "./module.ts";

/** A frozen packed-weight linear layer with an optional LoRA adapter. Owns `q` and the bias. */
export class Nf4Linear {
  /** The packed weight `[out, in]`. */
  readonly q: QuantizedTensor;
  /** `[out]` f32, or undefined. */
  readonly bias: Tensor | undefined;
  /** The attached adapter (`src/lora/` attaches it), as on `Linear`. */
  adapter: LoraAdapter | undefined = undefined;
  /** As `Linear.inputHook` (inference forward only). */
  inputHook: ((x: Tensor) => void) | undefined = undefined;

  /**
   * @param q the packed weight `[out, in]`
   * @param bias `[out]` f32, optional
   * @throws {TypeError} on a bias that is not `[out]`
   */
  constructor(q: QuantizedTensor, bias?: Tensor) {
    if (bias && (bias.rank !== 1 || bias.shape[0] !== q.shape[0])) {
      throw new TypeError(
        `Cannot create Nf4Linear: bias must be [${q.shape[0]}] (out): received [${bias.shape}]`,
      );
    }
    this.q = q;
    this.bias = bias;
  }

  /** There is no f32 weight; see the module doc. */
  get weight(): never {
    throw new TypeError(
      "Nf4Linear has no f32 weight (it holds NF4 codes): use dequantize(layer.q) for a copy; adapters trained " +
        "on it are recovered and merged into the original full-precision model, not into 4-bit weights",
    );
  }

  get inFeatures(): number {
    return this.q.shape[1];
  }

  get outFeatures(): number {
    return this.q.shape[0];
  }

  /** `[..., in] -> [..., out]`. */
  forward(x: Tensor): Tensor<"f32"> {
    this.inputHook?.(x);
    let y = qmatmul(x, this.q); // [..., in] x [out, in]ᵀ -> [..., out]
    if (this.bias) {
      using _y = y;
      y = add(y, this.bias);
    }
    if (!this.adapter) return y;
    using _y = y;
    const { a, b, scaling } = this.adapter;
    using xa = matmul(x, a, { transB: true }); // [..., in] x [r, in]ᵀ -> [..., r]
    using xab = matmul(xa, b, { transB: true }); // [..., r] x [out, r]ᵀ -> [..., out]
    using d = scale(xab, scaling);
    return add(y, d); // [..., out]
  }

  /** The training forward (one tape node; dropout on the adapter input while training). */
  forwardTrain(x: Var, ctx: TrainContext): Var {
    const bias = this.bias && ctx.v(this.bias);
    if (!this.adapter) return quantizedLoraLinear({ x, q: this.q, bias }); // [..., in] -> [..., out]
    const { a, b, scaling, dropout: p } = this.adapter;
    const xd = ctx.training && p > 0 ? dropout(x, p, ctx.random) : x; // [..., in]
    return quantizedLoraLinear({ x, q: this.q, bias, lora: { xd, a: ctx.v(a), b: ctx.v(b), scaling } });
  }

  /** The packed tensors (`weight.codes`, `weight.absmax`, …) and the bias: what the ledger holds. */
  parameters(): NamedParameters {
    const p: NamedParameters = new Map([["weight.codes", this.q.codes as Tensor], [
      "weight.absmax",
      this.q.meta as Tensor,
    ]]);
    if (this.q.meta2) p.set("weight.absmax2", this.q.meta2);
    if (this.bias) p.set("bias", this.bias);
    return p;
  }

  dispose(): void {
    disposeQuantized(this.q);
    this.bias?.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
