/**
 * Model configs: Hugging Face `config.json` schemas for the decoder-only families Ferry runs, and
 * their normalisation into one typed {@link ModelConfig}.
 *
 * Families: dense `llama`, `mistral`, `qwen2`; sparse MoE `mixtral`, `qwen2_moe`, `qwen3_moe`,
 * `olmoe`. HF configs carry many keys a forward pass never reads (token ids, dropout, versions), so
 * these schemas are loose: unknown keys are ignored, and the original JSON is kept by the model for
 * saving. Keys that are missing take the default of the transformers config class.
 *
 * Structurally pruned models carry per-layer sizes in a `ferry_pruning` record: see `layer_sizes.ts`.
 *
 * @example Normalise a config.json
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseModelConfig } from "./config.ts";
 * const config = parseModelConfig({
 *   model_type: "qwen2", vocab_size: 64, hidden_size: 32, intermediate_size: 64,
 *   num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, architectures: ["Qwen2ForCausalLM"],
 * });
 * assert.equal(config.headDim, 8); // hidden / heads
 * assert.equal(config.attentionBias, true); // Qwen2 has q/k/v biases
 * assert.equal(config.family, "dense");
 * ```
 * @module
 */
import { z } from "zod";
import { parseConfig } from "../config.ts";
import { ConfigError } from "../errors.ts";
import { prunedSizes } from "./layer_sizes.ts";
import { type ModelConfig, type ModelType, SUPPORTED_MODEL_TYPES } from "./model_config.ts";

export { layerSizesAt } from "./layer_sizes.ts";
export {
  type LayerSizes,
  type ModelConfig,
  type ModelType,
  type QkNorm,
  SUPPORTED_MODEL_TYPES,
} from "./model_config.ts";

const int = z.number().int().positive();
const nullableInt = int.nullable().optional();

/** Keys every family shares, with transformers' `LlamaConfig` defaults where they agree. */
const BASE = {
  model_type: z.string(),
  vocab_size: int,
  hidden_size: int,
  intermediate_size: int,
  num_hidden_layers: int,
  num_attention_heads: int,
  num_key_value_heads: nullableInt,
  head_dim: nullableInt,
  hidden_act: z.literal("silu", { error: 'only "silu" (SwiGLU) is supported' }).default("silu"),
  max_position_embeddings: int.default(2048),
  rms_norm_eps: z.number().positive().default(1e-6),
  rope_theta: z.number().positive().default(10000),
  rope_scaling: z.unknown().optional(),
  rope_parameters: z.unknown().optional(),
  tie_word_embeddings: z.boolean().default(false),
  /** Ferry's per-layer sizes of a structurally pruned model (see the module doc). */
  ferry_pruning: z.strictObject({
    intermediate_sizes: z.array(int),
    num_key_value_heads: z.array(int),
  }).optional(),
};

const SLIDING = {
  sliding_window: nullableInt,
  use_sliding_window: z.boolean().default(false),
};

const QWEN_MOE = {
  num_experts: int,
  num_experts_per_tok: int,
  moe_intermediate_size: int,
  norm_topk_prob: z.boolean().default(false),
  decoder_sparse_step: int.default(1),
  mlp_only_layers: z.array(z.number().int().nonnegative()).nullable().default([]),
};

const SCHEMAS = {
  llama: z.object({
    ...BASE,
    attention_bias: z.boolean().default(false),
    mlp_bias: z.boolean().default(false),
  }),
  mistral: z.object({
    ...BASE,
    num_key_value_heads: nullableInt.default(8),
    sliding_window: nullableInt.default(4096),
  }),
  qwen2: z.object({ ...BASE, ...SLIDING, num_key_value_heads: nullableInt.default(32) }),
  mixtral: z.object({
    ...BASE,
    num_key_value_heads: nullableInt.default(8),
    rms_norm_eps: z.number().positive().default(1e-5),
    rope_theta: z.number().positive().default(1e6),
    sliding_window: nullableInt,
    num_local_experts: int.default(8),
    num_experts_per_tok: int.default(2),
  }),
  qwen2_moe: z.object({
    ...BASE,
    ...SLIDING,
    ...QWEN_MOE,
    num_key_value_heads: nullableInt.default(16),
    shared_expert_intermediate_size: int,
    qkv_bias: z.boolean().default(true),
  }),
  qwen3_moe: z.object({
    ...BASE,
    ...SLIDING,
    ...QWEN_MOE,
    num_key_value_heads: nullableInt.default(4),
    attention_bias: z.boolean().default(false),
  }),
  olmoe: z.object({
    ...BASE,
    rms_norm_eps: z.number().positive().default(1e-5),
    num_experts: int.default(64),
    num_experts_per_tok: int.default(8),
    norm_topk_prob: z.boolean().default(false),
    attention_bias: z.boolean().default(false),
    clip_qkv: z.number().nullable().optional(),
  }),
} as const;

type Parsed<M extends ModelType> = z.output<(typeof SCHEMAS)[M]>;

/**
 * Validates an HF `config.json` object and normalises it.
 *
 * @param json The parsed `config.json`.
 * @returns The normalised, frozen config.
 * @throws {ConfigError} for an unsupported or missing `model_type` (listing the supported ones), a
 *   missing or mistyped key, `rope_scaling` (not supported yet), OLMoE's `clip_qkv`, or sizes that
 *   do not fit together (heads not a multiple of kv heads, an odd head dim, top-k above the experts).
 */
export function parseModelConfig(json: unknown): ModelConfig {
  const type = typeof json === "object" && json !== null
    ? (json as Record<string, unknown>).model_type
    : undefined;
  if (!(SUPPORTED_MODEL_TYPES as readonly unknown[]).includes(type)) {
    const problem = type === undefined
      ? "config.json has no model_type"
      : `unsupported model_type ${JSON.stringify(type)}`;
    throw new ConfigError(
      `Cannot load model config: ${problem}: expected one of ${SUPPORTED_MODEL_TYPES.join(", ")}`,
    );
  }
  const modelType = type as ModelType;
  const raw = parseConfig(modelType, SCHEMAS[modelType], json) as Parsed<ModelType>;
  const config = normalise(modelType, raw);
  checkRope(modelType, raw);
  checkSizes(modelType, config);
  const layerSizes = prunedSizes(modelType, config, raw.ferry_pruning);
  return Object.freeze({
    ...config,
    moeLayers: Object.freeze([...config.moeLayers]),
    ...(layerSizes ? { layerSizes } : {}),
  });
}

function normalise(modelType: ModelType, raw: Parsed<ModelType>): ModelConfig {
  const r = raw as Partial<Parsed<"qwen2_moe"> & Parsed<"mixtral"> & Parsed<"llama"> & Parsed<"olmoe">>;
  const heads = raw.num_attention_heads;
  const layers = raw.num_hidden_layers;
  let moeLayers = new Array<boolean>(layers).fill(false);
  let numExperts = 0;
  let topK = 0;
  let normTopkProb = false;
  let moeIntermediate = 0;
  if (modelType === "mixtral" || modelType === "olmoe") {
    moeLayers.fill(true);
    numExperts = (modelType === "mixtral" ? r.num_local_experts : r.num_experts)!;
    topK = r.num_experts_per_tok!;
    normTopkProb = modelType === "mixtral" ? true : r.norm_topk_prob!;
    moeIntermediate = raw.intermediate_size;
  } else if (modelType === "qwen2_moe" || modelType === "qwen3_moe") {
    numExperts = r.num_experts!;
    topK = r.num_experts_per_tok!;
    normTopkProb = r.norm_topk_prob!;
    moeIntermediate = r.moe_intermediate_size!;
    const dense = new Set(r.mlp_only_layers ?? []);
    moeLayers = moeLayers.map((_, i) => !dense.has(i) && (i + 1) % r.decoder_sparse_step! === 0);
  }
  const usesWindow = modelType === "mistral" || modelType === "mixtral" || r.use_sliding_window === true;
  const family = moeLayers.some((m) => m) ? "moe" : "dense";
  return {
    modelType,
    family,
    vocabSize: raw.vocab_size,
    hidden: raw.hidden_size,
    intermediate: raw.intermediate_size,
    layers,
    heads,
    kvHeads: raw.num_key_value_heads ?? heads,
    headDim: raw.head_dim ?? raw.hidden_size / heads,
    ropeTheta: ropeTheta(raw),
    rmsNormEps: raw.rms_norm_eps,
    tieWordEmbeddings: raw.tie_word_embeddings,
    attentionBias: modelType === "qwen2" ||
      (modelType === "qwen2_moe" ? r.qkv_bias! : r.attention_bias ?? false),
    oProjBias: modelType === "llama" && r.attention_bias === true,
    mlpBias: modelType === "llama" && r.mlp_bias === true,
    qkNorm: modelType === "qwen3_moe" ? "per_head" : modelType === "olmoe" ? "full" : "none",
    slidingWindow: usesWindow ? r.sliding_window ?? null : null,
    maxPositionEmbeddings: raw.max_position_embeddings,
    moeLayers,
    numExperts: family === "moe" ? numExperts : 0,
    topK: family === "moe" ? topK : 0,
    normTopkProb,
    moeIntermediate: family === "moe" ? moeIntermediate : 0,
    sharedExpertIntermediate: family === "moe" && modelType === "qwen2_moe"
      ? r.shared_expert_intermediate_size!
      : 0,
  };
}

/** `rope_theta`, or transformers 5's `rope_parameters.rope_theta`. */
function ropeTheta(raw: Parsed<ModelType>): number {
  const params = raw.rope_parameters as { rope_theta?: unknown } | undefined;
  return typeof params?.rope_theta === "number" ? params.rope_theta : raw.rope_theta;
}

function isDefaultRope(value: unknown): boolean {
  if (value === undefined || value === null) return true;
  if (typeof value !== "object") return false;
  const v = value as Record<string, unknown>;
  const type = v.rope_type ?? v.type ?? "default";
  return type === "default";
}

function checkRope(modelType: ModelType, raw: Parsed<ModelType>): void {
  for (const key of ["rope_scaling", "rope_parameters"] as const) {
    if (!isDefaultRope(raw[key])) {
      throw new ConfigError(
        `Invalid ${modelType} config:\n  ${key}: RoPE scaling is not supported yet (received ${
          JSON.stringify(raw[key])
        }); Ferry implements the default rotary embedding only`,
      );
    }
  }
  const clip = (raw as Partial<Parsed<"olmoe">>).clip_qkv;
  if (clip !== undefined && clip !== null) {
    throw new ConfigError(
      `Invalid ${modelType} config:\n  clip_qkv: clipping q/k/v is not supported yet (received ${clip}); ` +
        `use a checkpoint with clip_qkv null`,
    );
  }
}

function checkSizes(modelType: ModelType, c: ModelConfig): void {
  const problems: string[] = [];
  if (c.heads % c.kvHeads !== 0) {
    problems.push(
      `num_key_value_heads: must divide num_attention_heads = ${c.heads} (received ${c.kvHeads})`,
    );
  }
  if (!Number.isInteger(c.headDim)) {
    problems.push(
      `head_dim: hidden_size ${c.hidden} is not a multiple of num_attention_heads ${c.heads}; set head_dim`,
    );
  } else if (c.headDim % 2 !== 0) {
    problems.push(`head_dim: must be even for rotary embeddings (received ${c.headDim})`);
  }
  if (c.qkNorm === "full" && c.heads * c.headDim !== c.hidden) {
    problems.push(
      `head_dim: OLMoE needs num_attention_heads · head_dim = hidden_size (received ${c.headDim})`,
    );
  }
  if (c.family === "moe" && c.topK > c.numExperts) {
    problems.push(`num_experts_per_tok: must be at most the ${c.numExperts} experts (received ${c.topK})`);
  }
  if (problems.length > 0) {
    throw new ConfigError(`Invalid ${modelType} config:\n${problems.map((p) => `  ${p}`).join("\n")}`);
  }
}
