/**
 * `Embedding`: token ids to rows of a `[V, C]` table (HF `nn.Embedding`, `embed_tokens`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { Embedding } from "./embedding.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * using emb = new Embedding(Tensor.fromArray(dev, [0, 1, 10, 11, 20, 21], [3, 2])); // [V=3, C=2]
 * const x = emb.forward(Tensor.fromArray(dev, new Int32Array([2, 0]))); // [T=2] -> [2, 2]
 * assert.ok((await x.toArray()).join() === "20,21,0,1");
 * ```
 * @module
 */
import { embedding as embeddingV } from "../autograd/gather.ts";
import type { Var } from "../autograd/tape.ts";
import type { TrainContext } from "../autograd/train_context.ts";
import { embedding } from "../ops/embedding.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Module, NamedParameters } from "./module.ts";

/** A lookup table of token vectors. Owns its table. */
export class Embedding implements Module {
  /** `[V, C]` f32. */
  readonly weight: Tensor;

  /** @param weight `[V, C]` f32, or f16 for inference only (rows widen on lookup) */
  constructor(weight: Tensor) {
    if ((weight.dtype !== "f32" && weight.dtype !== "f16") || weight.rank !== 2) {
      throw new TypeError(
        `Cannot create Embedding: weight must be f32 or f16 [V, C]: received ${weight.dtype}[${weight.shape}]`,
      );
    }
    this.weight = weight;
  }

  /** Vocabulary `V`. */
  get numEmbeddings(): number {
    return this.weight.shape[0];
  }

  /** Channels `C`. */
  get embeddingDim(): number {
    return this.weight.shape[1];
  }

  /** `[...] i32 ids -> [..., C]`. */
  forward(ids: Tensor): Tensor<"f32"> {
    return embedding(this.weight, ids); // [...] -> [..., C]
  }

  /**
   * The training forward: the lookup on the tape (a trainable table gets a dense `[V, C]` gradient).
   *
   * @param ids `[...]` i32 token ids (a plain tensor)
   * @param ctx the step's {@link TrainContext}
   * @returns `[..., C]`
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { createDevice } from "../device/create_device.ts";
   * import { sum, Tape, TrainContext } from "../autograd/mod.ts";
   * import { Tensor } from "../tensor/tensor.ts";
   * import { Embedding } from "./embedding.ts";
   * const dev = await createDevice({ backend: "cpu" });
   * const emb = new Embedding(Tensor.zeros(dev, [3, 2])); // [V=3, C=2]
   * using tape = new Tape();
   * const ctx = new TrainContext(tape, new Set([emb.weight]));
   * tape.backward(sum(emb.forwardTrain(Tensor.fromArray(dev, new Int32Array([2, 2])), ctx))); // [2] -> [2, 2]
   * assert.ok((await ctx.grad(emb.weight)!.toArray()).join() === "0,0,0,0,2,2");
   * ```
   */
  forwardTrain(ids: Tensor, ctx: TrainContext): Var {
    if (this.weight.dtype !== "f32") {
      throw new TypeError(
        "Cannot train through Embedding: its table is f16 (inference only); load it as f32",
      );
    }
    return embeddingV(ctx.v(this.weight), ids); // [...] -> [..., C]
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
