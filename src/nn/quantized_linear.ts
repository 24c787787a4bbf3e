/**
 * `QuantizedLinear`: `y = x Ŵᵀ (+ b)` with `Ŵ [out, in]` a packed {@link QuantizedTensor} (RTN, HQQ
 * or NF4 codes plus metadata), run through the packed kernels without materialising f32 weights:
 * `qgemv` for one token (decode), `qmatmul` for several (prefill). A {@link LinearLike}, so it stands
 * wherever a dense `Linear` does: FloE's resident up projections and QLoRA's / QLoRAM's frozen NF4
 * base ([Dettmers et al. 2023](https://arxiv.org/abs/2305.14314),
 * [LoRAM](https://arxiv.org/abs/2502.13533) §3.3) are both this class.
 *
 * A LoRA adapter attaches to it as to a `Linear` (`src/lora/`), and it trains: `forwardTrain` is one
 * tape node (`quantizedLoraLinear`) whose backward dequantises `Ŵ` only transiently for
 * `dx = dz · Ŵ`; the packed weight itself is frozen. An adapter is never merged into packed codes:
 * LoRAM recovers it and merges it into the full-precision original.
 *
 * @example Quantize a dense projection and run it
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { quantize } from "../compressors/quant/quantize.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { QuantizedLinear } from "./quantized_linear.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const w = Tensor.fromArray(dev, Float32Array.from({ length: 8 * 64 }, (_, i) => Math.sin(i)), [8, 64]); // [out, in]
 * using lin = new QuantizedLinear(await quantize(w, { method: "hqq", bits: 4, groupSize: 64 }));
 * const y = lin.forward(Tensor.fromArray(dev, new Float32Array(3 * 64).fill(0.1), [3, 64])); // [T=3, in] -> [3, out]
 * assert.deepEqual([y.shape, lin.weightShape], [[3, 8], [8, 64]]);
 * ```
 * @see https://mobiusml.github.io/hqq_blog/ (HQQ), https://arxiv.org/abs/2305.14314 (NF4)
 * @module
 */
import { dropout } from "../autograd/dropout.ts";
import { quantizedLoraLinear } from "../autograd/quantized_lora_linear.ts";
import type { Var } from "../autograd/tape.ts";
import type { TrainContext } from "../autograd/train_context.ts";
import type { MemoryCategory } from "../device/ledger.ts";
import { add } from "../ops/elementwise.ts";
import { qgemv } from "../ops/qgemv.ts";
import { qmatmul } from "../ops/qmatmul.ts";
import { disposeQuantized, type QuantizedTensor } from "../tensor/quantized_tensor.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { addAdapter, type LoraAdapter } from "./lora_adapter.ts";
import type { NamedParameters } from "./module.ts";

/** A linear layer over a packed weight. Owns the quantized tensor and the bias. */
export class QuantizedLinear {
  /** The packed `[out, in]` weight. */
  readonly weight: QuantizedTensor;
  /** `[out]` f32, or undefined. */
  readonly bias: Tensor | undefined;
  /** The attached LoRA adapter (`src/lora/` attaches it), as on `Linear`. */
  adapter: LoraAdapter | undefined = undefined;
  /** Called with the input of every inference forward (activation capture), as on `Linear`. */
  inputHook: ((x: Tensor) => void) | undefined = undefined;

  /**
   * @param weight packed `[out, in]`
   * @param bias `[out]` f32, optional
   * @throws {TypeError} on a bias that is not f32 `[out]`
   */
  constructor(weight: QuantizedTensor, bias?: Tensor) {
    if (bias && (bias.dtype !== "f32" || bias.rank !== 1 || bias.shape[0] !== weight.shape[0])) {
      throw new TypeError(
        `Cannot create QuantizedLinear: bias must be f32 [${weight.shape[0]}] (out): received ` +
          `${bias.dtype}[${bias.shape}]`,
      );
    }
    this.weight = weight;
    this.bias = bias;
  }

  get inFeatures(): number {
    return this.weight.shape[1];
  }

  get outFeatures(): number {
    return this.weight.shape[0];
  }

  get weightShape(): readonly [number, number] {
    return this.weight.shape;
  }

  /** The ledger category of the packed codes. */
  get category(): MemoryCategory {
    return this.weight.codes.storage.allocation.category;
  }

  /** `[..., in] -> [..., out]`: `qgemv` for a single row, `qmatmul` otherwise (+ bias, + adapter). */
  forward(x: Tensor): Tensor<"f32"> {
    this.inputHook?.(x);
    const rows = x.size / Math.max(1, x.shape[x.rank - 1]);
    let y: Tensor<"f32">;
    if (rows === 1 && x.rank <= 2) {
      using v = x.rank === 2 ? x.reshape([x.shape[1]]) : x.reshape(x.shape); // [in]
      using y1 = qgemv(this.weight, v); // [out, in] · [in] -> [out]
      y = y1.reshape(x.rank === 2 ? [1, this.outFeatures] : [this.outFeatures]); // [1, out] | [out]
    } else {
      y = qmatmul(x, this.weight); // [..., in] x [out, in]ᵀ -> [..., out]
    }
    if (this.bias) {
      using _y = y;
      y = add(y, this.bias); // [..., out] + [out]
    }
    if (!this.adapter) return y;
    using _y = y;
    return addAdapter(y, x, this.adapter); // [..., out]
  }

  /**
   * The training forward: one tape node over the frozen packed weight (dropout on the adapter input
   * while training). Gradients flow to the input, the bias and the adapter, never to the codes.
   */
  forwardTrain(x: Var, ctx: TrainContext): Var {
    const bias = this.bias && ctx.v(this.bias);
    if (!this.adapter) return quantizedLoraLinear({ x, q: this.weight, bias }); // [..., in] -> [..., out]
    const { a, b, scaling, dropout: p } = this.adapter;
    const xd = ctx.training && p > 0 ? dropout(x, p, ctx.random) : x; // [..., in]
    return quantizedLoraLinear({ x, q: this.weight, bias, lora: { xd, a: ctx.v(a), b: ctx.v(b), scaling } });
  }

  /** `weight.codes`, `weight.meta` (and `weight.meta2`), `bias`: the device tensors it owns. */
  parameters(): NamedParameters {
    const p: NamedParameters = new Map([["weight.codes", this.weight.codes], [
      "weight.meta",
      this.weight.meta,
    ]]);
    if (this.weight.meta2) p.set("weight.meta2", this.weight.meta2);
    if (this.bias) p.set("bias", this.bias);
    return p;
  }

  dispose(): void {
    disposeQuantized(this.weight);
    this.bias?.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
