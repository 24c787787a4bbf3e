/**
 * `SwiGLUExperts`: the `E` routed experts of a sparse MoE layer, each a SwiGLU MLP, with each
 * projection stacked into one `[E, ·, ·]` tensor (ledger category `"experts"`) so the routing
 * stays on the device: one `gatherMatmul` per projection serves every (token, slot) pair, with
 * no readback of the selected experts.
 *
 * Legend: `T` tokens, `K` experts per token, `E` experts, `C` hidden, `F` expert width.
 *
 * @example Two tokens, each routed to two of three experts
 * ```ts
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { SwiGLUExperts } from "./experts.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const [E, F, C] = [3, 8, 4];
 * const stack = (shape: number[]) => Tensor.fromArray(dev, new Float32Array(E * F * C).fill(0.1), shape, { category: "experts" });
 * using experts = new SwiGLUExperts(stack([E, F, C]), stack([E, F, C]), stack([E, C, F]));
 * const idx = Tensor.fromArray(dev, new Int32Array([0, 2, 1, 0]), [2, 2]); // [T=2, K=2]
 * const y = experts.forward(Tensor.zeros(dev, [2, C]), idx); // [T, C] -> [T, K, C]
 * console.assert(y.shape.join() === "2,2,4");
 * ```
 * @module
 */
import { siluMul } from "../ops/elementwise.ts";
import { gatherMatmul } from "../ops/gather_matmul.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Module, NamedParameters } from "./module.ts";

/** `E` stacked SwiGLU experts. Owns the three stacked tensors. */
export class SwiGLUExperts implements Module {
  /** `[E, F, C]`: every expert's `gate_proj` (Mixtral `w1`). */
  readonly gateProj: Tensor;
  /** `[E, F, C]`: every expert's `up_proj` (Mixtral `w3`). */
  readonly upProj: Tensor;
  /** `[E, C, F]`: every expert's `down_proj` (Mixtral `w2`). */
  readonly downProj: Tensor;

  /** @throws {TypeError} unless the tensors are f32 `[E, F, C]`, `[E, F, C]`, `[E, C, F]` */
  constructor(gateProj: Tensor, upProj: Tensor, downProj: Tensor) {
    const [E, F, C] = gateProj.shape;
    const same = (t: Tensor, shape: number[]) =>
      t.dtype === "f32" && t.rank === 3 && t.shape.every((d, i) => d === shape[i]);
    if (
      gateProj.rank !== 3 || !same(gateProj, [E, F, C]) || !same(upProj, [E, F, C]) ||
      !same(downProj, [E, C, F])
    ) {
      throw new TypeError(
        `Cannot create SwiGLUExperts: expected f32 gate [E, F, C], up [E, F, C], down [E, C, F]: received ` +
          `${gateProj.dtype}[${gateProj.shape}], ${upProj.dtype}[${upProj.shape}], ${downProj.dtype}[${downProj.shape}]`,
      );
    }
    this.gateProj = gateProj;
    this.upProj = upProj;
    this.downProj = downProj;
  }

  /** Experts `E`. */
  get numExperts(): number {
    return this.gateProj.shape[0];
  }

  /** Expert width `F`. */
  get intermediate(): number {
    return this.gateProj.shape[1];
  }

  /**
   * Runs expert `idx[t, k]` on token `t` for every slot.
   *
   * @param x `[T, C]` f32
   * @param idx `[T, K]` i32 expert ids
   * @returns `[T, K, C]` f32, unweighted expert outputs
   */
  forward(x: Tensor, idx: Tensor): Tensor<"f32"> {
    using g = gatherMatmul(x, this.gateProj, idx); // [T, C] -> [T, K, F]
    using u = gatherMatmul(x, this.upProj, idx); // [T, C] -> [T, K, F]
    using a = siluMul(g, u); // [T, K, F]
    return gatherMatmul(a, this.downProj, idx); // [T, K, F] -> [T, K, C]
  }

  /** `gate_proj`, `up_proj`, `down_proj` (stacked, no `.weight` suffix). */
  parameters(): NamedParameters {
    return new Map([["gate_proj", this.gateProj], ["up_proj", this.upProj], ["down_proj", this.downProj]]);
  }

  dispose(): void {
    this.gateProj.dispose();
    this.upProj.dispose();
    this.downProj.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
