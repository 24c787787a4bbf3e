/**
 * `Linear`: `y = x Wᵀ + b` with the weight stored `[out, in]`, as HF `nn.Linear` stores it.
 *
 * @example
 * ```ts
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { Linear } from "./linear.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const w = Tensor.fromArray(dev, [1, 0, 0, 0, 1, 1], [2, 3]); // [out=2, in=3]
 * using lin = new Linear(w, Tensor.fromArray(dev, [10, 20])); // bias [out]
 * const y = lin.forward(Tensor.fromArray(dev, [1, 2, 3], [1, 3])); // [T=1, 3] -> [1, 2]
 * console.assert((await y.toArray()).join() === "11,25");
 * ```
 * @module
 */
import { add, scale } from "../ops/elementwise.ts";
import { matmul } from "../ops/matmul.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { LoraAdapter } from "./lora_adapter.ts";
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
   * @param weight `[out, in]` f32
   * @param bias `[out]` f32, optional
   * @throws {TypeError} on a weight that is not f32 `[out, in]` or a bias that is not f32 `[out]`
   */
  constructor(weight: Tensor, bias?: Tensor) {
    if (weight.dtype !== "f32" || weight.rank !== 2) {
      throw new TypeError(
        `Cannot create Linear: weight must be f32 [out, in]: received ${weight.dtype}[${weight.shape}]`,
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

  /** `[..., in] -> [..., out]`. */
  forward(x: Tensor): Tensor<"f32"> {
    let y = matmul(x, this.weight, { transB: true }); // [..., in] x [out, in]ᵀ -> [..., out]
    if (this.bias) {
      using _y = y;
      y = add(y, this.bias); // [..., out] + [out]
    }
    if (!this.adapter) return y;
    using _y = y;
    const { a, b, scaling } = this.adapter;
    using xa = matmul(x, a, { transB: true }); // [..., in] x [r, in]ᵀ -> [..., r]
    using xab = matmul(xa, b, { transB: true }); // [..., r] x [out, r]ᵀ -> [..., out]
    using d = scale(xab, scaling);
    return add(y, d); // [..., out]
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
