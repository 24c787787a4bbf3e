/**
 * `SwiGLU` MLP (Shazeer 2020, https://arxiv.org/abs/2002.05202) as in Llama, Qwen and every
 * expert of Mixtral/Qwen-MoE/OLMoE: `down(silu(gate(x)) ⊙ up(x))`.
 *
 * Legend: `T` tokens, `C` hidden, `F` intermediate.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { Linear } from "./linear.ts";
 * import { SwiGLU } from "./swiglu.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const w = (out: number, inp: number) => new Linear(Tensor.fromArray(dev, new Float32Array(out * inp).fill(0.5), [out, inp]));
 * using mlp = new SwiGLU(w(8, 4), w(8, 4), w(4, 8)); // C=4, F=8
 * const y = mlp.forward(Tensor.zeros(dev, [3, 4])); // [T=3, C] -> [3, C]
 * assert.ok(y.shape.join() === "3,4" && (await y.toArray())[0] === 0);
 * ```
 * @module
 */
import { siluMul as siluMulV } from "../autograd/elementwise.ts";
import type { Var } from "../autograd/tape.ts";
import type { TrainContext } from "../autograd/train_context.ts";
import { siluMul } from "../ops/elementwise.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { LinearLike } from "./linear_like.ts";
import { addPrefixed, type Module, type NamedParameters } from "./module.ts";

/** A gated MLP with SiLU. Owns its three projections. */
export class SwiGLU implements Module {
  /** `[F, C]` (HF `gate_proj`, Mixtral `w1`). */
  readonly gateProj: LinearLike;
  /** `[F, C]` (HF `up_proj`, Mixtral `w3`). */
  readonly upProj: LinearLike;
  /** `[C, F]` (HF `down_proj`, Mixtral `w2`). */
  readonly downProj: LinearLike;

  /** @throws {TypeError} when the three shapes do not chain as `[F, C]`, `[F, C]`, `[C, F]` */
  constructor(gateProj: LinearLike, upProj: LinearLike, downProj: LinearLike) {
    const [f, c] = gateProj.weightShape;
    const ok = upProj.outFeatures === f && upProj.inFeatures === c && downProj.outFeatures === c &&
      downProj.inFeatures === f;
    if (!ok) {
      throw new TypeError(
        `Cannot create SwiGLU: projections must be gate [F, C], up [F, C], down [C, F]: received ` +
          `[${gateProj.weightShape}], [${upProj.weightShape}], [${downProj.weightShape}]`,
      );
    }
    this.gateProj = gateProj;
    this.upProj = upProj;
    this.downProj = downProj;
  }

  /** `[T, C] -> [T, C]`. */
  forward(x: Tensor): Tensor<"f32"> {
    using g = this.gateProj.forward(x); // [T, C] -> [T, F]
    using u = this.upProj.forward(x); // [T, C] -> [T, F]
    using a = siluMul(g, u); // [T, F]
    return this.downProj.forward(a); // [T, F] -> [T, C]
  }

  /**
   * The training forward on the tape (adapters of the three projections included).
   *
   * @param x `[T, C]`
   * @param ctx the step's {@link TrainContext}
   * @returns `[T, C]`
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { createDevice } from "../device/create_device.ts";
   * import { sum, Tape, TrainContext } from "../autograd/mod.ts";
   * import { Tensor } from "../tensor/tensor.ts";
   * import { Linear } from "./linear.ts";
   * import { SwiGLU } from "./swiglu.ts";
   * const dev = await createDevice({ backend: "cpu" });
   * const w = (out: number, inp: number) => new Linear(Tensor.fromArray(dev, new Float32Array(out * inp).fill(0.5), [out, inp]));
   * const down = w(4, 8);
   * const mlp = new SwiGLU(w(8, 4), w(8, 4), down); // C=4, F=8
   * using tape = new Tape();
   * const ctx = new TrainContext(tape, new Set([down.weight]));
   * tape.backward(sum(mlp.forwardTrain(ctx.v(Tensor.fromArray(dev, new Float32Array(12).fill(1), [3, 4])), ctx)));
   * assert.ok(ctx.grad(down.weight)!.shape.join() === "4,8");
   * ```
   */
  forwardTrain(x: Var, ctx: TrainContext): Var {
    const g = this.gateProj.forwardTrain(x, ctx); // [T, C] -> [T, F]
    const u = this.upProj.forwardTrain(x, ctx); // [T, C] -> [T, F]
    return this.downProj.forwardTrain(siluMulV(g, u), ctx); // [T, F] -> [T, C]
  }

  /** `gate_proj.*`, `up_proj.*`, `down_proj.*`. */
  parameters(): NamedParameters {
    const p: NamedParameters = new Map();
    addPrefixed(p, "gate_proj", this.gateProj.parameters());
    addPrefixed(p, "up_proj", this.upProj.parameters());
    addPrefixed(p, "down_proj", this.downProj.parameters());
    return p;
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
