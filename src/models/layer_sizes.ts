/**
 * Per-layer sizes of structurally pruned models.
 *
 * Structurally pruned models (LoRAM / LLM-Pruner style, `src/compressors/prune/`) have per-layer
 * sizes, which stock HF configs cannot express. Ferry's convention: `config.json` keeps every
 * original field (`intermediate_size`, `num_attention_heads`, `num_key_value_heads` are the
 * *unpruned* sizes) plus one extra record,
 *
 * ```json
 * "ferry_pruning": { "intermediate_sizes": [512, 256, …], "num_key_value_heads": [2, 1, …] }
 * ```
 *
 * with one entry per layer: that layer's SwiGLU width and its KV heads. Its query heads are
 * `num_key_value_heads[i] · (num_attention_heads / num_key_value_heads)` (whole GQA groups are
 * pruned); `head_dim` is unchanged. Dense families only. It becomes {@link ModelConfig.layerSizes};
 * read a layer's sizes with {@link layerSizesAt}. Like LLM-Pruner's checkpoints, such a folder does
 * not load in stock transformers (its tensors are smaller than the config's uniform sizes).
 *
 * @module
 */
import { ConfigError } from "../errors.ts";
import type { LayerSizes, ModelConfig, ModelType } from "./model_config.ts";

export type { LayerSizes };

/**
 * The sizes of layer `i`: its `ferry_pruning` entry for a pruned model, else the config's uniform
 * `intermediate`, `heads` and `kvHeads`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseModelConfig } from "./config.ts";
 * import { layerSizesAt } from "./layer_sizes.ts";
 * const config = parseModelConfig({
 *   model_type: "llama", vocab_size: 64, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2,
 *   num_attention_heads: 4, num_key_value_heads: 2,
 *   ferry_pruning: { intermediate_sizes: [64, 32], num_key_value_heads: [2, 1] },
 * });
 * assert.deepEqual(layerSizesAt(config, 1), { intermediate: 32, heads: 2, kvHeads: 1 });
 * ```
 */
export function layerSizesAt(config: ModelConfig, i: number): LayerSizes {
  return config.layerSizes?.[i] ??
    { intermediate: config.intermediate, heads: config.heads, kvHeads: config.kvHeads };
}

/** `ferry_pruning` → frozen per-layer sizes, checked against the uniform (unpruned) ones. */
export function prunedSizes(
  modelType: ModelType,
  c: ModelConfig,
  record: { intermediate_sizes: number[]; num_key_value_heads: number[] } | undefined,
): readonly LayerSizes[] | undefined {
  if (record === undefined) return undefined;
  const { intermediate_sizes: sizes, num_key_value_heads: kv } = record;
  const problems: string[] = [];
  if (c.family !== "dense") {
    problems.push("ferry_pruning: per-layer sizes are supported for dense models only");
  }
  for (const [name, list] of [["intermediate_sizes", sizes], ["num_key_value_heads", kv]] as const) {
    if (list.length !== c.layers) {
      problems.push(
        `ferry_pruning.${name}: needs one entry per layer (${c.layers}) (received ${list.length})`,
      );
    }
  }
  sizes.forEach((s, i) => {
    if (s > c.intermediate) {
      problems.push(
        `ferry_pruning.intermediate_sizes[${i}]: at most intermediate_size ${c.intermediate} (received ${s})`,
      );
    }
  });
  kv.forEach((h, i) => {
    if (h > c.kvHeads) {
      problems.push(
        `ferry_pruning.num_key_value_heads[${i}]: at most num_key_value_heads ${c.kvHeads} (received ${h})`,
      );
    }
  });
  if (problems.length > 0) {
    throw new ConfigError(`Invalid ${modelType} config:\n${problems.map((p) => `  ${p}`).join("\n")}`);
  }
  const group = c.heads / c.kvHeads;
  return Object.freeze(
    sizes.map((intermediate, i) => Object.freeze({ intermediate, heads: kv[i] * group, kvHeads: kv[i] })),
  );
}
