/**
 * `CausalLM`: a decoder-only language model, dense (Llama, Mistral, Qwen2) or sparse MoE
 * (Mixtral, Qwen2-MoE, Qwen3-MoE, OLMoE), computing what transformers' `*ForCausalLM` computes:
 *
 * ```
 * x = embed(ids)                                    // [T] -> [T, C]
 * x = DecoderLayer(x) × L                           // RMSNorm → attention → + → RMSNorm → MLP/MoE → +
 * logits = lm_head(rmsNorm(x))                      // [T, C] -> [T, V]; tied: the embedding matrix
 * ```
 *
 * A forward step records every op into the device's pending batch and returns tensors; on
 * WebGPU the whole step is one submit, made when the caller reads the logits back.
 *
 * Legend: `T` tokens, `C` hidden, `V` vocabulary, `E` experts, `K` experts per token, `L` layers.
 *
 * @example Load a checkpoint and score a prompt, then decode one token through the cache
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "./load.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/llama-gqa-tied-f32", { device });
 * using cache = model.createCache(16);
 * const { logits } = model.forward(Int32Array.of(1, 5, 9), { cache }); // [T=3, V]
 * const next = model.forward(Int32Array.of(7), { cache }).logits; // [1, V] at position 3
 * assert.ok(logits.shape[1] === model.config.vocabSize && next.shape[0] === 1 && cache.position === 4);
 * ```
 * @module
 */
import type { TrainContext } from "../autograd/train_context.ts";
import type { Device } from "../device/device.ts";
import { Attention } from "../nn/attention.ts";
import { DecoderLayer } from "../nn/decoder_layer.ts";
import { Embedding } from "../nn/embedding.ts";
import { SwiGLUExperts } from "../nn/experts.ts";
import { DetachedExperts } from "../nn/detached_experts.ts";
import { Linear } from "../nn/linear.ts";
import { addPrefixed, countParameters, type NamedParameters } from "../nn/module.ts";
import { RMSNorm } from "../nn/rms_norm.ts";
import { SparseMoE } from "../nn/sparse_moe.ts";
import { SwiGLU } from "../nn/swiglu.ts";
import { Tensor } from "../tensor/tensor.ts";
import { layerSizesAt, type ModelConfig } from "./config.ts";
import { ModelCache } from "./model_cache.ts";
import {
  forwardTrain,
  lossTrain,
  type LossTrainOptions,
  type LossTrainResult,
  type TrainForwardResult,
} from "./train_forward.ts";
import { parameterSpecs } from "./weights.ts";

export type { LossTrainOptions, LossTrainResult, TrainForwardResult };

/** Options of {@link CausalLM.forward}. */
export interface ForwardOptions {
  /** Continue the sequence in this cache: tokens sit at `cache.position`, which advances by `T`. */
  cache?: ModelCache;
  /** Also return each MoE layer's router logits and selected experts. */
  collectRouter?: boolean;
}

/** What {@link CausalLM.forward} returns; the caller owns (and disposes) every tensor. */
export interface ForwardResult {
  /** `[T, V]` next-token logits for every input position. */
  logits: Tensor<"f32">;
  /** With `collectRouter`: `[T, E]` router logits per MoE layer, in the order of {@link CausalLM.moeLayers}. */
  routerLogits?: Tensor<"f32">[];
  /** With `collectRouter`: `[T, K]` i32 selected experts per MoE layer, same order. */
  selected?: Tensor<"i32">[];
}

/** Parameter counts by component (tied embeddings count once, under `embedding`). */
export interface ParameterCounts {
  embedding: number;
  /** q/k/v/o projections with biases and q/k norms. */
  attention: number;
  /** Input, post-attention and final RMSNorms. */
  norms: number;
  /** Dense SwiGLU MLPs. */
  mlp: number;
  /** MoE routers. */
  router: number;
  /** Routed experts. */
  experts: number;
  /** Qwen2-MoE shared experts and their gates. */
  sharedExpert: number;
  /** 0 when tied. */
  lmHead: number;
  total: number;
  /** NamedParameters one token uses: `total` with the experts scaled by `K / E`. */
  active: number;
}

/** The modules of a {@link CausalLM}; ownership passes to it. */
export interface CausalLMParts {
  embedTokens: Embedding;
  layers: DecoderLayer[];
  norm: RMSNorm;
  /** Left out when the embeddings are tied: the head then reads `embedTokens.weight`. */
  lmHead?: Linear;
}

/** Options of {@link CausalLM.fromParameters}. */
export interface FromParametersOptions {
  /**
   * Build every MoE layer's routed experts as {@link DetachedExperts} (no weights; the stacked
   * expert parameters are not needed), for code that keeps the experts off the device.
   */
  detachedExperts?: boolean;
}

/** A decoder-only LM. Owns its modules; `dispose()` returns every weight to the ledger. */
export class CausalLM {
  readonly config: ModelConfig;
  readonly device: Device;
  /** The checkpoint's `config.json`, kept so a save writes it back. */
  readonly hfConfig: Readonly<Record<string, unknown>>;
  readonly embedTokens: Embedding;
  readonly layers: readonly DecoderLayer[];
  readonly norm: RMSNorm;
  /** `[V, C]`; shares the embedding matrix when tied. */
  readonly lmHead: Linear;
  /** Indices of the MoE layers (the order of `routerLogits` / `selected`). */
  readonly moeLayers: readonly number[];
  /** The folder (or hub id) the weights came from; `loadModel` sets it, `null` for built models. */
  nameOrPath: string | null = null;

  constructor(config: ModelConfig, parts: CausalLMParts, hfConfig: Readonly<Record<string, unknown>>) {
    if (parts.layers.length !== config.layers) {
      throw new TypeError(
        `Cannot create CausalLM: config has ${config.layers} layers: received ${parts.layers.length}`,
      );
    }
    if (!config.tieWordEmbeddings && !parts.lmHead) {
      throw new TypeError("Cannot create CausalLM: lmHead is required unless tieWordEmbeddings");
    }
    this.config = config;
    this.device = parts.embedTokens.weight.device;
    this.hfConfig = hfConfig;
    this.embedTokens = parts.embedTokens;
    this.layers = parts.layers;
    this.norm = parts.norm;
    this.lmHead = config.tieWordEmbeddings ? new Linear(parts.embedTokens.weight) : parts.lmHead!;
    this.moeLayers = parts.layers.flatMap((l, i) => l.isMoe ? [i] : []);
  }

  /**
   * Builds the modules from Ferry-named parameters (see `weights.ts`); ownership of the tensors
   * passes to the model.
   *
   * @throws {TypeError} when a parameter is missing or has the wrong shape
   */
  static fromParameters(
    config: ModelConfig,
    params: ReadonlyMap<string, Tensor>,
    hfConfig: Readonly<Record<string, unknown>>,
    options: FromParametersOptions = {},
  ): CausalLM {
    const detached = options.detachedExperts === true;
    for (const spec of parameterSpecs(config)) {
      if (detached && spec.category === "experts") continue;
      const t = params.get(spec.name);
      if (!t || t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i])) {
        throw new TypeError(
          `Cannot create CausalLM: parameter ${spec.name} must have shape [${spec.shape}]: received ${
            t ? `[${t.shape}]` : "nothing"
          }`,
        );
      }
    }
    const get = (name: string) => params.get(name)!;
    const opt = (name: string) => params.get(name);
    const linear = (name: string) => new Linear(get(`${name}.weight`), opt(`${name}.bias`));
    const norm = (name: string) => new RMSNorm(get(`${name}.weight`), config.rmsNormEps);
    const swiglu = (p: string) =>
      new SwiGLU(linear(`${p}.gate_proj`), linear(`${p}.up_proj`), linear(`${p}.down_proj`));
    const layers: DecoderLayer[] = [];
    for (let i = 0; i < config.layers; i++) {
      const p = `model.layers.${i}`;
      const qk = config.qkNorm !== "none";
      const attention = new Attention({
        qProj: linear(`${p}.self_attn.q_proj`),
        kProj: linear(`${p}.self_attn.k_proj`),
        vProj: linear(`${p}.self_attn.v_proj`),
        oProj: linear(`${p}.self_attn.o_proj`),
        ...(qk ? { qNorm: norm(`${p}.self_attn.q_norm`), kNorm: norm(`${p}.self_attn.k_norm`) } : {}),
      }, {
        heads: layerSizesAt(config, i).heads,
        kvHeads: layerSizesAt(config, i).kvHeads,
        headDim: config.headDim,
        ropeTheta: config.ropeTheta,
        qkNorm: config.qkNorm,
      });
      let mlp: SwiGLU | SparseMoE;
      if (config.moeLayers[i]) {
        const e = `${p}.mlp.experts`;
        const shared = config.sharedExpertIntermediate > 0;
        mlp = new SparseMoE({
          router: linear(`${p}.mlp.gate`),
          experts: detached
            ? new DetachedExperts(i, {
              numExperts: config.numExperts,
              hidden: config.hidden,
              intermediate: config.moeIntermediate,
            })
            : new SwiGLUExperts(get(`${e}.gate_proj`), get(`${e}.up_proj`), get(`${e}.down_proj`)),
          ...(shared
            ? {
              sharedExpert: swiglu(`${p}.mlp.shared_expert`),
              sharedExpertGate: linear(`${p}.mlp.shared_expert_gate`),
            }
            : {}),
        }, { topK: config.topK, normTopkProb: config.normTopkProb });
      } else {
        mlp = swiglu(`${p}.mlp`);
      }
      layers.push(
        new DecoderLayer({
          inputNorm: norm(`${p}.input_layernorm`),
          attention,
          postNorm: norm(`${p}.post_attention_layernorm`),
          mlp,
        }),
      );
    }
    return new CausalLM(config, {
      embedTokens: new Embedding(get("model.embed_tokens.weight")),
      layers,
      norm: norm("model.norm"),
      ...(config.tieWordEmbeddings ? {} : { lmHead: linear("lm_head") }),
    }, hfConfig);
  }

  /**
   * Runs the model on `ids`: a whole sequence (no cache), or the next `T` tokens of the cached
   * sequence (prefill when the cache is empty, decode when `T = 1`). Records ops only: nothing is
   * read back, so on WebGPU the step is one submit when the caller reads `logits`.
   *
   * @param ids `[T]` token ids, `T ≥ 1`, each in `0..V-1`
   * @returns `logits [T, V]`, and with `collectRouter` the router logits `[T, E]` and selections `[T, K]`
   * @throws {RangeError} on an empty input, an id outside the vocabulary, a full cache, or a sequence
   *   longer than the model's sliding window
   * @throws {TypeError} when the cache was made for a different model shape
   */
  forward(ids: Int32Array | readonly number[], options: ForwardOptions = {}): ForwardResult {
    const { cache, collectRouter = false } = options;
    const T = ids.length;
    const V = this.config.vocabSize;
    if (T === 0) {
      throw new RangeError("Cannot run CausalLM.forward: ids is empty: pass at least one token id");
    }
    for (let i = 0; i < T; i++) {
      if (!(Number.isInteger(ids[i]) && ids[i] >= 0 && ids[i] < V)) {
        throw new RangeError(
          `Cannot run CausalLM.forward: ids[${i}] = ${ids[i]} is outside the vocabulary (0..${V - 1})`,
        );
      }
    }
    const pos = cache ? this.#checkCache(cache, T) : 0;
    const window = this.config.slidingWindow;
    if (window !== null && pos + T > window) {
      throw new RangeError(
        `Cannot run CausalLM.forward: ${pos + T} tokens exceed the sliding window of ${window}; ` +
          `sliding-window attention is not supported yet, so keep sequences within the window`,
      );
    }
    const routerLogits: Tensor<"f32">[] = [];
    const selected: Tensor<"i32">[] = [];
    using idsT = Tensor.fromArray(this.device, Int32Array.from(ids), [T], { dtype: "i32" }); // [T]
    let x = this.embedTokens.forward(idsT); // [T] -> [T, C]
    for (let i = 0; i < this.layers.length; i++) {
      using prev = x;
      const out = this.layers[i].forward(prev, { cache: cache?.layers[i], layer: i }); // [T, C] -> [T, C]
      x = out.x;
      if (out.router) {
        out.router.weights.dispose();
        if (collectRouter) {
          routerLogits.push(out.router.routerLogits); // [T, E]
          selected.push(out.router.selected); // [T, K]
        } else {
          out.router.routerLogits.dispose();
          out.router.selected.dispose();
        }
      }
    }
    using _x = x;
    using h = this.norm.forward(x); // [T, C]
    const logits = this.lmHead.forward(h); // [T, C] x [V, C]ᵀ -> [T, V]
    return collectRouter ? { logits, routerLogits, selected } : { logits };
  }

  /**
   * The training forward: the same logits as {@link CausalLM.forward} on one sequence at positions
   * `0..T-1` (no cache), recorded on `ctx.tape` with every weight taken through `ctx.v` (see
   * `train_forward.ts`). Async: MoE layers read their expert choice back to the host.
   *
   * @param ctx the step's {@link TrainContext} (which weights train, dropout on/off and its seed)
   * @param ids `[T]` token ids
   * @returns `logits [T, V]` and, for MoE models, the unweighted load-balancing `auxLoss []`
   * @throws {RangeError} on an empty input, an id outside the vocabulary, or `T` above the sliding window
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { createDevice } from "../device/create_device.ts";
   * import { Tape, TrainContext } from "../autograd/mod.ts";
   * import { loadModel } from "./load.ts";
   * const device = await createDevice({ backend: "cpu" });
   * using model = await loadModel("test/fixtures/models/mixtral-top2-f32", { device });
   * using tape = new Tape();
   * const ctx = new TrainContext(tape, new Set([model.layers[0].postNorm.weight]));
   * const { logits, auxLoss } = await model.forwardTrain(ctx, Int32Array.of(1, 5, 9)); // [T=3, V]
   * assert.ok(logits.shape[1] === model.config.vocabSize && auxLoss!.shape.length === 0);
   * ```
   */
  forwardTrain(ctx: TrainContext, ids: Int32Array): Promise<TrainForwardResult> {
    return forwardTrain(this, ctx, ids);
  }

  /**
   * The training loss of one sequence: next-token cross-entropy of `ids[0..T-1] → ids[1..T]`
   * (mean over non-ignored targets) plus `routerAuxLossCoef · auxLoss` for MoE models, as HF's
   * `*ForCausalLM(input_ids=ids, labels=ids)`. All `T + 1` ids run through the model (the last
   * one's logits predict nothing, but its routing counts in the aux loss, as in HF).
   *
   * Given a batch of blocks of one length, it runs them as one packed forward (each block attends
   * only within itself) and the loss is the mean over all the batch's targets, as HF's batched call.
   *
   * @param ctx the step's {@link TrainContext}
   * @param ids `[T + 1]` token ids, at least 2; or a batch of such blocks, all of one length
   * @param options `routerAuxLossCoef` (default: config.json's `router_aux_loss_coef`, else 0),
   *   `ignoreIndex` (targets equal to it are skipped; default −100)
   * @returns `loss`, `lmLoss`, `auxLoss` (MoE) as `[]` Vars and the number of counted targets
   * @throws {RangeError} on fewer than 2 ids, blocks of different lengths, an id outside the vocabulary, or a
   *   negative coefficient
   * @example One gradient of the final norm
   * ```ts
   * import assert from "node:assert/strict";
   * import { createDevice } from "../device/create_device.ts";
   * import { Tape, TrainContext } from "../autograd/mod.ts";
   * import { loadModel } from "./load.ts";
   * const device = await createDevice({ backend: "cpu" });
   * using model = await loadModel("test/fixtures/models/llama-gqa-tied-f32", { device });
   * using tape = new Tape();
   * const ctx = new TrainContext(tape, new Set([model.norm.weight]));
   * const { loss, tokens } = await model.lossTrain(ctx, Int32Array.of(1, 5, 9, 2));
   * tape.backward(loss);
   * assert.ok(tokens === 3 && ctx.grad(model.norm.weight)!.shape[0] === model.config.hidden);
   * ```
   */
  lossTrain(
    ctx: TrainContext,
    ids: Int32Array | readonly Int32Array[],
    options: LossTrainOptions = {},
  ): Promise<LossTrainResult> {
    return lossTrain(this, ctx, ids, options);
  }

  /**
   * A KV cache for one sequence of up to `maxSeq` tokens (ledger category `"kv"`:
   * `L · 2 · maxSeq · Hkv · D · 4` bytes; per layer's own `Hkv` for a pruned model).
   */
  createCache(maxSeq: number): ModelCache {
    const { layers, headDim } = this.config;
    return new ModelCache(this.device, { layers, maxSeq, kvHeads: this.#kvHeadsPerLayer(), headDim });
  }

  #kvHeadsPerLayer(): number[] {
    return Array.from({ length: this.config.layers }, (_, i) => layerSizesAt(this.config, i).kvHeads);
  }

  /** Every parameter by Ferry name (HF names, experts stacked; see `weights.ts`). Tied heads are not repeated. */
  parameters(): NamedParameters {
    const p: NamedParameters = new Map();
    addPrefixed(p, "model.embed_tokens", this.embedTokens.parameters());
    this.layers.forEach((l, i) => addPrefixed(p, `model.layers.${i}`, l.parameters()));
    addPrefixed(p, "model.norm", this.norm.parameters());
    if (!this.config.tieWordEmbeddings) addPrefixed(p, "lm_head", this.lmHead.parameters());
    return p;
  }

  /** Parameter counts by component. */
  numParameters(): ParameterCounts {
    const c: ParameterCounts = {
      embedding: 0,
      attention: 0,
      norms: 0,
      mlp: 0,
      router: 0,
      experts: 0,
      sharedExpert: 0,
      lmHead: 0,
      total: 0,
      active: 0,
    };
    for (const [name, t] of this.parameters()) c[componentOf(name)] += t.size;
    c.total = countParameters(this.parameters());
    const { numExperts: E, topK: K } = this.config;
    c.active = c.total - c.experts + (E > 0 ? Math.round(c.experts * K / E) : 0);
    return c;
  }

  /** Returns every weight to the ledger. */
  dispose(): void {
    this.embedTokens.dispose();
    for (const l of this.layers) l.dispose();
    this.norm.dispose();
    this.lmHead.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #checkCache(cache: ModelCache, T: number): number {
    const { layers, kvHeads, headDim } = this.config;
    const perLayer = this.#kvHeadsPerLayer();
    if (
      !(cache instanceof ModelCache) || cache.layers.length !== layers ||
      cache.kvHeadsPerLayer.some((h, i) => h !== perLayer[i]) || cache.headDim !== headDim
    ) {
      throw new TypeError(
        `Cannot run CausalLM.forward: the cache does not fit this model (${layers} layers, ${kvHeads} kv heads, ` +
          `head dim ${headDim}); create it with model.createCache(maxSeq)`,
      );
    }
    const pos = cache.position;
    if (pos + T > cache.maxSeq) {
      throw new RangeError(
        `Cannot run CausalLM.forward: the cache holds ${cache.maxSeq} tokens, ${pos} are used and ${T} more ` +
          `were passed; create the cache with a larger maxSeq or reset() it`,
      );
    }
    return pos;
  }
}

function componentOf(name: string): Exclude<keyof ParameterCounts, "total" | "active"> {
  if (name.startsWith("model.embed_tokens")) return "embedding";
  if (name.startsWith("lm_head")) return "lmHead";
  if (name.includes(".self_attn.")) return "attention";
  if (name.includes(".mlp.experts.")) return "experts";
  if (name.includes(".mlp.shared_expert")) return "sharedExpert";
  if (name.includes(".mlp.gate.")) return "router";
  if (name.includes(".mlp.")) return "mlp";
  return "norms";
}
