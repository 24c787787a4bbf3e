/**
 * The normalised model config's types ({@link ModelConfig}, {@link LayerSizes}), apart from their
 * parsing (`config.ts`) so that `layer_sizes.ts` and `config.ts` both import them without a cycle.
 * `config.ts` re-exports everything here.
 * @module
 */

/** The sizes of one decoder layer (differ between layers only in a structurally pruned model). */
export interface LayerSizes {
  /** Width of the dense SwiGLU MLP. */
  readonly intermediate: number;
  /** Query heads. */
  readonly heads: number;
  /** Key/value heads. */
  readonly kvHeads: number;
}

/** The `model_type` values Ferry loads. */
export const SUPPORTED_MODEL_TYPES = [
  "llama",
  "mistral",
  "qwen2",
  "mixtral",
  "qwen2_moe",
  "qwen3_moe",
  "olmoe",
] as const;

/** One of {@link SUPPORTED_MODEL_TYPES}. */
export type ModelType = typeof SUPPORTED_MODEL_TYPES[number];

/**
 * Query/key normalisation before RoPE: none (Llama, Qwen2, Mixtral, Qwen2-MoE), an RMSNorm over
 * each head's `D` dims (Qwen3-MoE), or over the whole projection (OLMoE: q over `H·D`, k over `Hkv·D`).
 */
export type QkNorm = "none" | "per_head" | "full";

/** A decoder-only LM's architecture, normalised across families. Plain JSON. */
export interface ModelConfig {
  readonly modelType: ModelType;
  /** `"moe"` when at least one layer is a sparse MoE block. */
  readonly family: "dense" | "moe";
  /** Vocabulary `V`. */
  readonly vocabSize: number;
  /** Hidden size `C`. */
  readonly hidden: number;
  /** Width of the dense SwiGLU MLP (dense layers only; unused where every layer is MoE). */
  readonly intermediate: number;
  /** Decoder layers `L`. */
  readonly layers: number;
  /** Query heads `H`. */
  readonly heads: number;
  /** Key/value heads `Hkv` (GQA when below `H`). */
  readonly kvHeads: number;
  /** Head dim `D` (`head_dim`, else `hidden / heads`). */
  readonly headDim: number;
  readonly ropeTheta: number;
  readonly rmsNormEps: number;
  /** The LM head reuses the embedding matrix. */
  readonly tieWordEmbeddings: boolean;
  /** q/k/v projections have biases (Qwen2, Qwen2-MoE; Llama/OLMoE/Qwen3-MoE with `attention_bias`). */
  readonly attentionBias: boolean;
  /** The output projection has a bias (Llama's `attention_bias` only). */
  readonly oProjBias: boolean;
  /** Dense MLP projections have biases (Llama's `mlp_bias`). */
  readonly mlpBias: boolean;
  readonly qkNorm: QkNorm;
  /** Sliding-window length; sequences longer than this are refused. `null`: full attention. */
  readonly slidingWindow: number | null;
  readonly maxPositionEmbeddings: number;
  /** Per layer: `true` for a sparse MoE block, `false` for the dense MLP. */
  readonly moeLayers: readonly boolean[];
  /** Routed experts `E` (0 for dense models). */
  readonly numExperts: number;
  /** Experts per token `K` (0 for dense models). */
  readonly topK: number;
  /** Renormalise the top-k routing weights to sum to 1 (always for Mixtral). */
  readonly normTopkProb: boolean;
  /** Width `F` of each routed expert. */
  readonly moeIntermediate: number;
  /** Width of the Qwen2-MoE shared expert; 0 when there is none. */
  readonly sharedExpertIntermediate: number;
  /**
   * Structurally pruned models only (config.json `ferry_pruning`, see the module doc): each layer's
   * sizes. Absent for a model with uniform layers; read through {@link layerSizesAt}.
   */
  readonly layerSizes?: readonly LayerSizes[];
}
