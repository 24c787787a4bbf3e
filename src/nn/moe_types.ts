/**
 * The types a sparse MoE block shares with the code around it: the {@link Experts} interface a
 * method implements to replace a layer's expert computation (FloE's sparse experts, an offloading
 * runtime), what the block returns in inference ({@link MoeOutput}) and training
 * ({@link MoeTrainOutput}). Kept apart from `sparse_moe.ts` so the block, its training forward and
 * the expert implementations import them without importing each other.
 *
 * Legend: `T` tokens, `C` hidden, `E` experts, `K` experts per token, `F` expert width, `N` routed
 * (token, slot) pairs.
 *
 * @example A hand-written `Experts`: every expert is the identity
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { matmul } from "../ops/matmul.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import type { Experts, ExpertsInput } from "./moe_types.ts";
 * const identity: Experts = {
 *   numExperts: 2, hidden: 3, intermediate: 1,
 *   forward: ({ x, weights }: ExpertsInput) => { // [T, C], [T, K]
 *     using w = weights.reshape([x.shape[0], 1, weights.shape[1]]); // [T, 1, K]
 *     using ones = Tensor.fromArray(x.device, new Float32Array(weights.shape[1]).fill(1), [1, weights.shape[1], 1]);
 *     using s = matmul(w, ones); // [T, 1, 1]: Σ_k w
 *     using x3 = x.reshape([x.shape[0], 1, 3]); // [T, 1, C]
 *     using y = matmul(s, x3); // [T, 1, C]
 *     return y.reshape([x.shape[0], 3]); // [T, C]
 *   },
 *   parameters: () => new Map(), dispose: () => {},
 * };
 * const dev = await createDevice({ backend: "cpu" });
 * const y = identity.forward({
 *   layer: 0, x: Tensor.fromArray(dev, [1, 2, 3], [1, 3]),
 *   selected: Tensor.fromArray(dev, Int32Array.of(0, 1), [1, 2], { dtype: "i32" }),
 *   weights: Tensor.fromArray(dev, [0.25, 0.75], [1, 2]),
 * });
 * assert.equal((await y.toArray()).join(), "1,2,3");
 * ```
 * @module
 */
import type { Var } from "../autograd/tape.ts";
import type { TrainContext } from "../autograd/train_context.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Module } from "./module.ts";

/** What a block hands its {@link Experts}: the routed `(token, expert, weight)` triples and the MoE input. */
export interface ExpertsInput {
  /** The decoder layer's index in the model (`-1` when the block runs on its own). */
  readonly layer: number;
  /** `[T, C]` f32: the MoE input `h_i` (the post-attention RMSNorm output). */
  readonly x: Tensor;
  /** `[T, K]` i32: token `t`'s experts, by descending routing weight. */
  readonly selected: Tensor<"i32">;
  /** `[T, K]` f32: their routing weights. */
  readonly weights: Tensor<"f32">;
}

/**
 * The routed experts of one MoE layer: `y_t = Σ_k weights[t,k] · expert_{selected[t,k]}(x_t)`. Dense
 * `SwiGLUExperts` is one implementation; a method swaps a layer's implementation with
 * `SparseMoE.replaceExperts` without touching `nn/` or `models/`.
 */
export interface Experts extends Module {
  /** Experts `E`. */
  readonly numExperts: number;
  /** Hidden size `C`. */
  readonly hidden: number;
  /** Expert width `F`. */
  readonly intermediate: number;
  /** `[T, C]`: the weighted sum of each token's routed experts (shared experts excluded). */
  forward(input: ExpertsInput): Tensor<"f32">;
  /**
   * Training (optional; a block without it cannot train): the unweighted outputs of an
   * expert-sorted batch, `x [N, C]` with `groups[e]` rows for expert `e` -> `[N, C]`.
   */
  forwardTrain?(x: Var, groups: readonly number[], ctx: TrainContext): Var;
}

/** What `SparseMoE.forward` returns; the caller owns (and disposes) every tensor. */
export interface MoeOutput {
  /** `[T, C]` the block's output. */
  y: Tensor<"f32">;
  /** `[T, E]` router logits (before the softmax), as HF's `router_logits`. */
  routerLogits: Tensor<"f32">;
  /** `[T, K]` i32 expert ids, by descending routing weight. */
  selected: Tensor<"i32">;
  /** `[T, K]` routing weights of `selected`. */
  weights: Tensor<"f32">;
}

/** What `SparseMoE.forwardTrain` returns (Vars live on the context's tape). */
export interface MoeTrainOutput {
  /** `[T, C]` the block's output. */
  y: Var;
  /** `[T, E]` router logits. */
  routerLogits: Var;
  /** `[T, E]` router probabilities `softmax(routerLogits)` (the load-balancing loss's `P`). */
  probs: Var;
  /** `[T·K]` the selected experts, row-major `[T, K]`, by descending routing weight (host copy). */
  selected: Int32Array;
}
