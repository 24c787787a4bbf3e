/**
 * `Attention`: causal multi-head self-attention with grouped-query heads (GQA, Ainslie et al. 2023,
 * https://arxiv.org/abs/2305.13245), rotary position embedding (RoFormer,
 * https://arxiv.org/abs/2104.09864) and an optional KV cache, as HF's Llama/Qwen/Mixtral/OLMoE
 * attention with eager kernels. Optional q/k/v biases (Qwen2) and q/k RMSNorms before RoPE:
 * per head (Qwen3-MoE) or over the whole projection (OLMoE).
 *
 * Legend: `T` new tokens, `C` hidden, `H` query heads, `Hkv` key/value heads, `D` head dim.
 *
 * @example One layer, prefill then decode through a cache
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { KvCache } from "../ops/kv_cache.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { Attention } from "./attention.ts";
 * import { Linear } from "./linear.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const w = (out: number, inp: number) => new Linear(Tensor.fromArray(dev, new Float32Array(out * inp).fill(0.1), [out, inp]));
 * using attn = new Attention({ qProj: w(8, 8), kProj: w(4, 8), vProj: w(4, 8), oProj: w(8, 8) },
 *   { heads: 2, kvHeads: 1, headDim: 4, ropeTheta: 10000 });
 * using cache = new KvCache(dev, { maxSeq: 8, kvHeads: 1, headDim: 4 });
 * const y = attn.forward(Tensor.zeros(dev, [3, 8]), { cache }); // [T=3, C=8] -> [3, 8]
 * attn.forward(Tensor.zeros(dev, [1, 8]), { cache }); // decode at position 3
 * assert.ok(y.shape.join() === "3,8" && cache.length === 4);
 * ```
 * @module
 */
import { z } from "zod";
import { reshape } from "../autograd/reshape.ts";
import { concatRows, sliceRows } from "../autograd/slice.ts";
import type { Var } from "../autograd/tape.ts";
import type { TrainContext } from "../autograd/train_context.ts";
import { attention as attentionV, rope as ropeV } from "../autograd/transformer.ts";
import { parseConfig } from "../config.ts";
import { attention } from "../ops/attention.ts";
import type { KvCache } from "../ops/kv_cache.ts";
import { rope } from "../ops/rope.ts";
import { Tensor } from "../tensor/tensor.ts";
import { expectLinear, type LinearLike } from "./linear_like.ts";
import { addPrefixed, expectParameter, type Module, type NamedParameters } from "./module.ts";
import type { RMSNorm } from "./rms_norm.ts";

/** Options of {@link Attention}. */
export const AttentionConfigSchema = z.strictObject({
  /** Query heads `H`. */
  heads: z.number().int().positive(),
  /** Key/value heads `Hkv`; divides `H`. */
  kvHeads: z.number().int().positive(),
  /** Head dim `D`; even. */
  headDim: z.number().int().positive().multipleOf(2),
  /** RoPE base (`rope_theta`). */
  ropeTheta: z.number().positive(),
  /** Where `qNorm`/`kNorm` apply: `"per_head"` (weights `[D]`) or `"full"` (`[H·D]`, `[Hkv·D]`). */
  qkNorm: z.enum(["none", "per_head", "full"]).default("none"),
});

/** Parsed {@link AttentionConfigSchema}. */
export type AttentionConfig = z.output<typeof AttentionConfigSchema>;

/** The projections (and optional norms) of an {@link Attention} layer; ownership passes to it. */
export interface AttentionWeights {
  /** `[H·D, C]`, optional bias. */
  qProj: LinearLike;
  /** `[Hkv·D, C]`, optional bias. */
  kProj: LinearLike;
  /** `[Hkv·D, C]`, optional bias. */
  vProj: LinearLike;
  /** `[C, H·D]`, optional bias. */
  oProj: LinearLike;
  /** Required when `qkNorm` is not `"none"`. */
  qNorm?: RMSNorm;
  kNorm?: RMSNorm;
}

/** Options of {@link Attention.forward}. */
export interface AttentionForwardOptions {
  /** This layer's cache: keys/values are appended at `cache.length`, queries sit at that position. */
  cache?: KvCache;
}

/** Causal GQA self-attention with RoPE. Owns its projections and norms. */
export class Attention implements Module {
  readonly config: AttentionConfig;
  readonly qProj: LinearLike;
  readonly kProj: LinearLike;
  readonly vProj: LinearLike;
  readonly oProj: LinearLike;
  readonly qNorm: RMSNorm | undefined;
  readonly kNorm: RMSNorm | undefined;

  /**
   * @throws {ConfigError} on invalid options
   * @throws {TypeError} when a projection or norm does not match the head layout
   */
  constructor(weights: AttentionWeights, options: z.input<typeof AttentionConfigSchema>) {
    const config = parseConfig("Attention", AttentionConfigSchema, options);
    const { heads: H, kvHeads: Hkv, headDim: D, qkNorm } = config;
    if (H % Hkv !== 0) {
      throw new RangeError(`Cannot create Attention: kvHeads ${Hkv} must divide heads ${H}`);
    }
    const C = weights.qProj.inFeatures;
    expectLinear("Attention", "q_proj.weight", weights.qProj, [H * D, C]);
    expectLinear("Attention", "k_proj.weight", weights.kProj, [Hkv * D, C]);
    expectLinear("Attention", "v_proj.weight", weights.vProj, [Hkv * D, C]);
    expectLinear("Attention", "o_proj.weight", weights.oProj, [C, H * D]);
    if (qkNorm === "none" && (weights.qNorm || weights.kNorm)) {
      throw new TypeError(`Cannot create Attention: qNorm/kNorm were given but qkNorm is "none"`);
    }
    if (qkNorm !== "none") {
      if (!weights.qNorm || !weights.kNorm) {
        throw new TypeError(`Cannot create Attention: qkNorm "${qkNorm}" needs qNorm and kNorm`);
      }
      const full = qkNorm === "full";
      expectParameter("Attention", "q_norm.weight", weights.qNorm.weight, [full ? H * D : D]);
      expectParameter("Attention", "k_norm.weight", weights.kNorm.weight, [full ? Hkv * D : D]);
    }
    this.config = config;
    this.qProj = weights.qProj;
    this.kProj = weights.kProj;
    this.vProj = weights.vProj;
    this.oProj = weights.oProj;
    this.qNorm = qkNorm === "none" ? undefined : weights.qNorm;
    this.kNorm = qkNorm === "none" ? undefined : weights.kNorm;
  }

  /**
   * Attends the `T` new tokens to themselves and, with a cache, to every earlier token in it.
   * Without a cache the tokens sit at positions `0..T-1`.
   *
   * @param x `[T, C]` f32
   * @returns `[T, C]` f32
   * @throws {RangeError} when the cache cannot hold `T` more rows
   */
  forward(x: Tensor, options: AttentionForwardOptions = {}): Tensor<"f32"> {
    const { heads: H, kvHeads: Hkv, headDim: D, ropeTheta: theta, qkNorm } = this.config;
    const { cache } = options;
    const T = x.shape[0];
    const pos = cache ? cache.length : 0;
    if (cache && pos + T > cache.maxSeq) {
      throw new RangeError(
        `Cannot run Attention: the cache holds ${cache.maxSeq} rows but position ${pos} + ${T} tokens ` +
          `= ${pos + T}; create the cache with a larger maxSeq`,
      );
    }
    using q0 = this.qProj.forward(x); // [T, C] -> [T, H·D]
    using k0 = this.kProj.forward(x); // [T, C] -> [T, Hkv·D]
    using v0 = this.vProj.forward(x); // [T, C] -> [T, Hkv·D]
    using q1 = qkNorm === "full" ? this.qNorm!.forward(q0) : q0.reshape(q0.shape); // [T, H·D]
    using k1 = qkNorm === "full" ? this.kNorm!.forward(k0) : k0.reshape(k0.shape); // [T, Hkv·D]
    using q2 = q1.reshape([T, H, D]); // [T, H, D]
    using k2 = k1.reshape([T, Hkv, D]); // [T, Hkv, D]
    using v = v0.reshape([T, Hkv, D]); // [T, Hkv, D]
    using q3 = qkNorm === "per_head" ? this.qNorm!.forward(q2) : q2.reshape(q2.shape); // [T, H, D]
    using k3 = qkNorm === "per_head" ? this.kNorm!.forward(k2) : k2.reshape(k2.shape); // [T, Hkv, D]
    using q = rope(q3, pos, { theta }); // [T, H, D]
    using k = rope(k3, pos, { theta }); // [T, Hkv, D]
    let o: Tensor;
    if (cache) {
      cache.append(k, v); // rows pos..pos+T-1 of [Smax, Hkv, D]
      o = attention(q, cache.k, cache.v, { pos }); // [T, H, D] over [pos + T, Hkv, D]
    } else {
      o = attention(q, k, v, { pos: 0 }); // [T, H, D] over [T, Hkv, D]
    }
    using _o = o;
    using flat = o.reshape([T, H * D]); // [T, H·D]
    return this.oProj.forward(flat); // [T, H·D] -> [T, C]
  }

  /**
   * The training forward: one sequence at positions `0..T-1`, causal, no cache, recorded on the
   * tape (q/k norms, biases, GQA and RoPE as in {@link Attention.forward}); or, with `segment`,
   * `T / segment` sequences packed row after row, each at positions `0..segment-1` and attending
   * only within itself (a batch in one pass: every projection runs once over all rows).
   *
   * @param x `[T, C]`
   * @param ctx the step's {@link TrainContext}
   * @param segment rows per packed sequence (a divisor of `T`); default `T` (one sequence)
   * @returns `[T, C]`
   * @throws {RangeError} when `segment` does not divide `T`
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { createDevice } from "../device/create_device.ts";
   * import { sum, Tape, TrainContext } from "../autograd/mod.ts";
   * import { Tensor } from "../tensor/tensor.ts";
   * import { Attention } from "./attention.ts";
   * import { Linear } from "./linear.ts";
   * const dev = await createDevice({ backend: "cpu" });
   * const w = (out: number, inp: number) => new Linear(Tensor.fromArray(dev, new Float32Array(out * inp).fill(0.1), [out, inp]));
   * const [qProj, vProj] = [w(8, 8), w(4, 8)];
   * const attn = new Attention({ qProj, kProj: w(4, 8), vProj, oProj: w(8, 8) },
   *   { heads: 2, kvHeads: 1, headDim: 4, ropeTheta: 10000 });
   * using tape = new Tape();
   * const ctx = new TrainContext(tape, new Set([vProj.weight]));
   * tape.backward(sum(attn.forwardTrain(ctx.v(Tensor.fromArray(dev, new Float32Array(24).fill(1), [3, 8])), ctx)));
   * assert.ok(ctx.grad(vProj.weight)!.shape.join() === "4,8" && ctx.grad(qProj.weight) === null);
   * ```
   */
  forwardTrain(x: Var, ctx: TrainContext, segment?: number): Var {
    const { heads: H, kvHeads: Hkv, headDim: D, ropeTheta: theta, qkNorm } = this.config;
    const T = x.shape[0];
    const S = segment ?? T;
    if (!(Number.isInteger(S) && S > 0 && T % S === 0)) {
      throw new RangeError(
        `Cannot run Attention.forwardTrain: segment ${segment} must be a positive divisor of the ${T} rows`,
      );
    }
    let q = this.qProj.forwardTrain(x, ctx); // [T, C] -> [T, H·D]
    let k = this.kProj.forwardTrain(x, ctx); // [T, C] -> [T, Hkv·D]
    const v = reshape(this.vProj.forwardTrain(x, ctx), [T, Hkv, D]); // [T, C] -> [T, Hkv, D]
    if (qkNorm === "full") {
      q = this.qNorm!.forwardTrain(q, ctx); // [T, H·D]
      k = this.kNorm!.forwardTrain(k, ctx); // [T, Hkv·D]
    }
    q = reshape(q, [T, H, D]); // [T, H, D]
    k = reshape(k, [T, Hkv, D]); // [T, Hkv, D]
    if (qkNorm === "per_head") {
      q = this.qNorm!.forwardTrain(q, ctx); // [T, H, D]
      k = this.kNorm!.forwardTrain(k, ctx); // [T, Hkv, D]
    }
    if (S === T) {
      q = ropeV(q, 0, { theta }); // [T, H, D]
      k = ropeV(k, 0, { theta }); // [T, Hkv, D]
      const o = attentionV(q, k, v, { pos: 0 }); // [T, H, D] over [T, Hkv, D]
      return this.oProj.forwardTrain(reshape(o, [T, H * D]), ctx); // [T, H·D] -> [T, C]
    }
    // T / S sequences of S tokens, packed: positions restart at each segment, attention stays inside it.
    const positions = ctx.tape.keep(
      Tensor.fromArray(x.value.device, Int32Array.from({ length: T }, (_, i) => i % S), [T], {
        dtype: "i32",
      }),
    ); // [T]
    q = ropeV(q, positions, { theta }); // [T, H, D]
    k = ropeV(k, positions, { theta }); // [T, Hkv, D]
    const parts: Var[] = [];
    for (let s0 = 0; s0 < T; s0 += S) {
      // [S, H, D] over [S, Hkv, D]
      parts.push(attentionV(sliceRows(q, s0, S), sliceRows(k, s0, S), sliceRows(v, s0, S), { pos: 0 }));
    }
    const o = concatRows(parts); // [T, H, D]
    return this.oProj.forwardTrain(reshape(o, [T, H * D]), ctx); // [T, H·D] -> [T, C]
  }

  /** `q_proj.*`, `k_proj.*`, `v_proj.*`, `o_proj.*` and, when present, `q_norm.weight`, `k_norm.weight`. */
  parameters(): NamedParameters {
    const p: NamedParameters = new Map();
    addPrefixed(p, "q_proj", this.qProj.parameters());
    addPrefixed(p, "k_proj", this.kProj.parameters());
    addPrefixed(p, "v_proj", this.vProj.parameters());
    addPrefixed(p, "o_proj", this.oProj.parameters());
    if (this.qNorm) addPrefixed(p, "q_norm", this.qNorm.parameters());
    if (this.kNorm) addPrefixed(p, "k_norm", this.kNorm.parameters());
    return p;
  }

  dispose(): void {
    for (const m of [this.qProj, this.kProj, this.vProj, this.oProj, this.qNorm, this.kNorm]) m?.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
