/**
 * `DecoderLayer`: one pre-norm transformer block of a decoder-only LM, as in Llama, Qwen,
 * Mixtral and OLMoE:
 *
 * ```
 * h = x + attention(rmsNorm₁(x))
 * y = h + mlp(rmsNorm₂(h))        // mlp: a SwiGLU MLP or a sparse MoE block
 * ```
 *
 * Legend: `T` tokens, `C` hidden.
 *
 * @example A dense layer
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { Attention } from "./attention.ts";
 * import { DecoderLayer } from "./decoder_layer.ts";
 * import { Linear } from "./linear.ts";
 * import { RMSNorm } from "./rms_norm.ts";
 * import { SwiGLU } from "./swiglu.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const w = (out: number, inp: number) => new Linear(Tensor.fromArray(dev, new Float32Array(out * inp).fill(0.1), [out, inp]));
 * const norm = () => new RMSNorm(Tensor.fromArray(dev, new Float32Array(8).fill(1)), 1e-6);
 * const attn = new Attention({ qProj: w(8, 8), kProj: w(8, 8), vProj: w(8, 8), oProj: w(8, 8) },
 *   { heads: 2, kvHeads: 2, headDim: 4, ropeTheta: 10000 });
 * using layer = new DecoderLayer({ inputNorm: norm(), attention: attn, postNorm: norm(), mlp: new SwiGLU(w(16, 8), w(16, 8), w(8, 16)) });
 * const { x } = layer.forward(Tensor.zeros(dev, [3, 8])); // [T=3, C=8] -> [3, 8]
 * assert.ok(x.shape.join() === "3,8");
 * ```
 * @module
 */
import { add as addV } from "../autograd/elementwise.ts";
import type { Var } from "../autograd/tape.ts";
import type { TrainContext } from "../autograd/train_context.ts";
import { add } from "../ops/elementwise.ts";
import type { KvCache } from "../ops/kv_cache.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Attention } from "./attention.ts";
import { addPrefixed, type Module, type NamedParameters } from "./module.ts";
import type { RMSNorm } from "./rms_norm.ts";
import { type MoeOutput, type MoeTrainOutput, SparseMoE } from "./sparse_moe.ts";
import type { SwiGLU } from "./swiglu.ts";

/** The parts of a {@link DecoderLayer}; ownership passes to it. */
export interface DecoderLayerParts {
  /** HF `input_layernorm`. */
  inputNorm: RMSNorm;
  /** HF `self_attn`. */
  attention: Attention;
  /** HF `post_attention_layernorm`. */
  postNorm: RMSNorm;
  /** HF `mlp` (dense) or the sparse MoE block (`mlp` / Mixtral's `block_sparse_moe`). */
  mlp: SwiGLU | SparseMoE;
}

/** What {@link DecoderLayer.forward} returns; the caller owns the tensors. */
export interface DecoderLayerOutput {
  /** `[T, C]` the layer's output. */
  x: Tensor<"f32">;
  /** MoE layers: the router's logits, choices and weights (`y` is already added into `x`). */
  router?: Omit<MoeOutput, "y">;
}

/** What {@link DecoderLayer.forwardTrain} returns (Vars on the context's tape). */
export interface DecoderLayerTrainOutput {
  /** `[T, C]` the layer's output. */
  x: Var;
  /** MoE layers: the router's logits, probabilities and host selections. */
  router?: Omit<MoeTrainOutput, "y">;
}

/** A pre-norm attention + MLP block. Owns its parts. */
export class DecoderLayer implements Module {
  readonly inputNorm: RMSNorm;
  readonly attention: Attention;
  readonly postNorm: RMSNorm;
  readonly mlp: SwiGLU | SparseMoE;

  constructor(parts: DecoderLayerParts) {
    this.inputNorm = parts.inputNorm;
    this.attention = parts.attention;
    this.postNorm = parts.postNorm;
    this.mlp = parts.mlp;
  }

  /** True when the MLP is a sparse MoE block. */
  get isMoe(): boolean {
    return this.mlp instanceof SparseMoE;
  }

  /**
   * @param x `[T, C]` f32
   * @param options `cache`: this layer's KV cache (tokens sit at `cache.length`); `layer`: this layer's
   *   index in the model, handed to a MoE block's experts
   * @returns `x [T, C]`, and for MoE layers the routing (`routerLogits [T, E]`, `selected [T, K]`, `weights [T, K]`)
   */
  forward(x: Tensor, options: { cache?: KvCache; layer?: number } = {}): DecoderLayerOutput {
    let h: Tensor<"f32">;
    {
      using n1 = this.inputNorm.forward(x); // [T, C]
      using a = this.attention.forward(n1, { cache: options.cache }); // [T, C]
      h = add(x, a); // [T, C] residual
    }
    using _h = h;
    using n2 = this.postNorm.forward(h); // [T, C]
    if (this.mlp instanceof SparseMoE) {
      const { y, ...router } = this.mlp.forward(n2, { layer: options.layer }); // [T, C]
      using _y = y;
      return { x: add(h, y), router }; // [T, C] residual
    }
    using m = this.mlp.forward(n2); // [T, C]
    return { x: add(h, m) }; // [T, C] residual
  }

  /**
   * The training forward on the tape (one sequence at positions `0..T-1`, no cache). Async
   * because a MoE block reads its expert choice back.
   *
   * @param x `[T, C]`
   * @param ctx the step's {@link TrainContext}
   * @param segment rows per packed sequence (see {@link Attention.forwardTrain}); default `T`
   * @returns `x [T, C]` and, for MoE layers, the routing (`routerLogits`, `probs` `[T, E]`, `selected`)
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { createDevice } from "../device/create_device.ts";
   * import { sum, Tape, TrainContext } from "../autograd/mod.ts";
   * import { Tensor } from "../tensor/tensor.ts";
   * import { Attention } from "./attention.ts";
   * import { DecoderLayer } from "./decoder_layer.ts";
   * import { Linear } from "./linear.ts";
   * import { RMSNorm } from "./rms_norm.ts";
   * import { SwiGLU } from "./swiglu.ts";
   * const dev = await createDevice({ backend: "cpu" });
   * const w = (out: number, inp: number) => new Linear(Tensor.fromArray(dev, new Float32Array(out * inp).fill(0.1), [out, inp]));
   * const norm = () => new RMSNorm(Tensor.fromArray(dev, new Float32Array(8).fill(1)), 1e-6);
   * const attn = new Attention({ qProj: w(8, 8), kProj: w(8, 8), vProj: w(8, 8), oProj: w(8, 8) },
   *   { heads: 2, kvHeads: 2, headDim: 4, ropeTheta: 10000 });
   * const layer = new DecoderLayer({ inputNorm: norm(), attention: attn, postNorm: norm(), mlp: new SwiGLU(w(16, 8), w(16, 8), w(8, 16)) });
   * using tape = new Tape();
   * const ctx = new TrainContext(tape, new Set([layer.postNorm.weight]));
   * const { x } = await layer.forwardTrain(ctx.v(Tensor.fromArray(dev, new Float32Array(24).fill(1), [3, 8])), ctx);
   * tape.backward(sum(x)); // [3, 8] -> []
   * assert.ok(ctx.grad(layer.postNorm.weight)!.shape.join() === "8");
   * ```
   */
  async forwardTrain(x: Var, ctx: TrainContext, segment?: number): Promise<DecoderLayerTrainOutput> {
    const a = this.attention.forwardTrain(this.inputNorm.forwardTrain(x, ctx), ctx, segment); // [T, C]
    const h = addV(x, a); // [T, C] residual
    const n2 = this.postNorm.forwardTrain(h, ctx); // [T, C]
    if (this.mlp instanceof SparseMoE) {
      const { y, ...router } = await this.mlp.forwardTrain(n2, ctx); // [T, C]
      return { x: addV(h, y), router }; // [T, C] residual
    }
    return { x: addV(h, this.mlp.forwardTrain(n2, ctx)) }; // [T, C] residual
  }

  /** `input_layernorm.weight`, `self_attn.*`, `post_attention_layernorm.weight`, `mlp.*`. */
  parameters(): NamedParameters {
    const p: NamedParameters = new Map();
    addPrefixed(p, "input_layernorm", this.inputNorm.parameters());
    addPrefixed(p, "self_attn", this.attention.parameters());
    addPrefixed(p, "post_attention_layernorm", this.postNorm.parameters());
    addPrefixed(p, "mlp", this.mlp.parameters());
    return p;
  }

  dispose(): void {
    this.inputNorm.dispose();
    this.attention.dispose();
    this.postNorm.dispose();
    this.mlp.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
