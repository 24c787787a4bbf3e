/**
 * `LinearLike`: what a layer needs from a linear projection `y = x Wᵀ (+ b)` with `W [out, in]`, so a
 * packed weight ({@link QuantizedLinear}) can stand wherever a dense {@link Linear} stands (attention
 * projections, SwiGLU MLPs, the MoE router). Holders type their projections as `LinearLike`; code that
 * needs the dense f32 weight itself (LoRA, pruning, weight analysis) asks {@link asDenseLinear}, which
 * names what to do when the projection is packed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { Linear } from "./linear.ts";
 * import { asDenseLinear, type LinearLike } from "./linear_like.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const lin: LinearLike = new Linear(Tensor.zeros(dev, [2, 3], { category: "weights" })); // [out, in]
 * assert.deepEqual([lin.outFeatures, lin.inFeatures, lin.category], [2, 3, "weights"]);
 * assert.ok(asDenseLinear(lin, "prune it").weight.shape.join() === "2,3");
 * ```
 * @module
 */
import type { Var } from "../autograd/tape.ts";
import type { TrainContext } from "../autograd/train_context.ts";
import type { MemoryCategory } from "../device/ledger.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { Linear } from "./linear.ts";
import type { Module } from "./module.ts";

/** A linear projection over the last axis: dense, packed, or adapted. */
export interface LinearLike extends Module {
  /** Input features (`in`). */
  readonly inFeatures: number;
  /** Output features (`out`). */
  readonly outFeatures: number;
  /** `[out, in]`: the weight's logical shape, whatever its storage. */
  readonly weightShape: readonly [number, number];
  /** The memory-ledger category of the weight's device bytes. */
  readonly category: MemoryCategory;
  /** `[..., in] -> [..., out]` (inference). */
  forward(x: Tensor): Tensor<"f32">;
  /** The same computation on a training tape (`[..., in] -> [..., out]`). */
  forwardTrain(x: Var, ctx: TrainContext): Var;
}

/**
 * `lin` as a dense {@link Linear}, for code that reads or rewrites the f32 weight.
 *
 * @param lin any projection
 * @param what what the caller was doing, for the error message (e.g. `"attach a LoRA adapter to q_proj"`)
 * @throws {TypeError} when `lin` is not a dense `Linear` (e.g. a packed `QuantizedLinear`)
 */
export function asDenseLinear(lin: LinearLike, what: string): Linear {
  if (lin instanceof Linear) return lin;
  throw new TypeError(
    `Cannot ${what}: it needs a dense f32 Linear, received a ${lin.constructor.name} ` +
      `[${lin.weightShape}]; run it on the uncompressed model`,
  );
}

/** Throws a `TypeError` unless `lin`'s weight is `[out, in]` = `shape`. */
export function expectLinear(
  what: string,
  name: string,
  lin: LinearLike,
  shape: readonly [number, number],
): void {
  const [o, i] = lin.weightShape;
  if (o !== shape[0] || i !== shape[1]) {
    throw new TypeError(`Cannot create ${what}: ${name} must be [${shape}] (out, in): received [${o}, ${i}]`);
  }
}
