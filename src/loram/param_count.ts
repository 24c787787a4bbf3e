/**
 * LoRAM's parameter accounting from a model config alone ([LoRAM](https://arxiv.org/abs/2502.13533)
 * appendix Tables 4–6; ALGORITHMS.md B.7): exact parameter counts of the original and the pruned
 * model, the LoRAM and QLoRAM reduction ratios and the parameter memory in GiB.
 *
 * Counts are exact for the config (biases, tied embeddings and per-layer sizes included): they sum
 * the shapes of {@link parameterSpecs}, which is also what `loadModel` allocates, so a run's ledger
 * can be checked against them. For the structured plans (`rand`, `stru`) each layer in the range
 * keeps `d_ff' = d_ff − ⌈p·d_ff⌉` channels and `Hkv' = Hkv − ⌊p·Hkv⌋` KV heads with their query
 * groups (`H' = ⌊H·(1 − p)⌋` when `H = Hkv`), as {@link keptCounts}; for `semi` (2:4, `p` = 0.5) and
 * `unst` the shapes stay and `⌊p·out·in⌋` weights of each decoder Linear in the range are counted as
 * removed (the paper's "theoretical" ratio: the zeros are stored, so memory is not saved).
 *
 * The paper's figures:
 *
 * ```
 * loram_reduction  = N / N_P                 loram_gib  = 2·N_P / 2³⁰      (bf16)
 * qloram_reduction = 4·N / N_P               qloram_gib = 2·(N_P/4) / 2³⁰  (NF4 metadata ignored)
 * ```
 *
 * and the exact QLoRAM storage as bitsandbytes lays it out (`qloram_nf4_*`): every decoder Linear
 * weight of the pruned model in NF4 codes (4 bits, rows padded to `u32` words as Ferry packs them)
 * plus double-quantized metadata (one 8-bit absmax code per block of 64, one f32 scale per 256 blocks,
 * one f32 offset per tensor); embeddings, norms, biases and `lm_head` stay bf16.
 *
 * @example LLaMA-2-13B at p = 0.65 (paper Table 4: 6,005,662,720 parameters, 2.17×, 11.19 GiB)
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseModelConfig } from "../models/config.ts";
 * import { loramParamCounts } from "./param_count.ts";
 * const config = parseModelConfig({
 *   model_type: "llama", vocab_size: 32000, hidden_size: 5120, intermediate_size: 13824,
 *   num_hidden_layers: 40, num_attention_heads: 40, num_key_value_heads: 40,
 * });
 * const c = loramParamCounts(config, { method: "stru", ratio: 0.65 });
 * assert.equal(c.params, 13_015_864_320);
 * assert.equal(c.pruned_params, 6_005_662_720);
 * assert.equal(c.loram_reduction.toFixed(2), "2.17");
 * assert.equal(c.loram_gib.toFixed(2), "11.19");
 * ```
 * @module
 */
import { keptCounts, planDimsOf } from "../compressors/prune/pruning_plan.ts";
import { loramLayerRange } from "../compressors/prune/structured.ts";
import type { LayerSizes, ModelConfig } from "../models/config.ts";
import { layerSizesAt } from "../models/config.ts";
import { parameterSpecs } from "../models/weights.ts";
import { nf4LinearBytes } from "./qloram.ts";

/** LoRAM's pruning variants (B.2): structured random / first-order, 2:4, unstructured. */
export const LORAM_METHODS = ["rand", "stru", "semi", "unst"] as const;
/** One of {@link LORAM_METHODS}. */
export type LoramMethod = typeof LORAM_METHODS[number];

/** Whether a method gives a physically smaller model (`rand`, `stru`) or masked dense weights. */
export function isStructured(method: LoramMethod): boolean {
  return method === "rand" || method === "stru";
}

/** Options of {@link loramParamCounts}. */
export interface ParamCountOptions {
  method: LoramMethod;
  /** Pruning ratio `p` in (0, 1); `semi` (2:4) takes 0.5 only. */
  ratio: number;
  /** Half-open decoder layer range `[start, end)`; default LoRAM's `[4, L−2)`. */
  layers?: readonly [number, number];
}

/** What {@link loramParamCounts} returns (snake_case: it is the JSON of `ferry loram plan`). */
export interface LoramParamCounts {
  model_type: string;
  method: LoramMethod;
  ratio: number;
  /** The pruned layer range `[start, end)`. */
  layers: [number, number];
  /** Sizes of a pruned layer (structured) or of every layer (semi/unst). */
  kept: { intermediate: number; heads: number; kv_heads: number };
  /** Parameters of the original model `N`. */
  params: number;
  /** Parameters of the pruned model `N_P` (semi/unst: non-zero weights). */
  pruned_params: number;
  /** `N / N_P`. */
  loram_reduction: number;
  /** `4·N / N_P` (the paper's, NF4 metadata ignored). */
  qloram_reduction: number;
  /** `2·N_P / 2³⁰`: the pruned model's bf16 parameters. */
  loram_gib: number;
  /** `2·N_P / 4 / 2³⁰`. */
  qloram_gib: number;
  /** Exact bytes of the pruned model with NF4 + double-quant decoder Linears, the rest bf16. */
  qloram_nf4_bytes: number;
  /** {@link qloram_nf4_bytes} in GiB. */
  qloram_nf4_gib: number;
  /** `2·N / qloram_nf4_bytes`: the QLoRAM reduction with metadata counted. */
  qloram_nf4_reduction: number;
  /** Structured only: whether memory is really saved during training (false for semi/unst). */
  saves_memory: boolean;
}

const GIB = 2 ** 30;

/**
 * LoRAM's parameter accounting of `config` (see the module doc).
 *
 * @throws {TypeError} for a MoE config (LoRAM prunes dense Llama-family models) or a pruned one
 * @throws {RangeError} for a ratio outside (0, 1), `semi` with a ratio other than 0.5, a layer
 *   range outside the model, or a ratio that leaves no channel or head
 */
export function loramParamCounts(config: ModelConfig, options: ParamCountOptions): LoramParamCounts {
  const { method, ratio } = options;
  if (!(LORAM_METHODS as readonly string[]).includes(method)) {
    throw new RangeError(
      `Cannot count LoRAM parameters: unknown method ${JSON.stringify(method)}: expected one of ${
        LORAM_METHODS.join(", ")
      }`,
    );
  }
  const dims = planDimsOf(config); // throws for MoE
  if (config.layerSizes) {
    throw new TypeError(
      "Cannot count LoRAM parameters: the config is already structurally pruned; pass the original model's config",
    );
  }
  checkRatio(ratio);
  if (method === "semi" && ratio !== 0.5) {
    throw new RangeError(
      `Cannot count LoRAM parameters: semi (2:4) prunes exactly half of the weights: ratio must be 0.5: received ${ratio}`,
    );
  }
  const layers = checkLayerRange(config.layers, options.layers);
  const params = countParams(config);
  let prunedConfig = config;
  let removed = 0;
  let kept: LayerSizes = layerSizesAt(config, 0);
  if (isStructured(method)) {
    const k = keptCounts(dims, ratio);
    kept = {
      intermediate: k.intermediate,
      kvHeads: k.kvHeads,
      heads: k.kvHeads * (dims.heads / dims.kvHeads),
    };
    const sizes = Array.from(
      { length: config.layers },
      (_, i) => i >= layers[0] && i < layers[1] ? kept : layerSizesAt(config, i),
    );
    prunedConfig = { ...config, layerSizes: sizes };
  } else {
    for (const { rows, cols, layer } of decoderLinearShapes(config)) {
      if (layer >= layers[0] && layer < layers[1]) removed += Math.floor(ratio * rows * cols);
    }
  }
  const pruned = countParams(prunedConfig) - removed;
  const nf4 = nf4Bytes(prunedConfig); // semi/unst: the zeros are stored, so the bytes do not shrink
  return {
    model_type: config.modelType,
    method,
    ratio,
    layers,
    kept: { intermediate: kept.intermediate, heads: kept.heads, kv_heads: kept.kvHeads },
    params,
    pruned_params: pruned,
    loram_reduction: params / pruned,
    qloram_reduction: (4 * params) / pruned,
    loram_gib: (2 * pruned) / GIB,
    qloram_gib: (2 * pruned) / 4 / GIB,
    qloram_nf4_bytes: nf4,
    qloram_nf4_gib: nf4 / GIB,
    qloram_nf4_reduction: (2 * params) / nf4,
    saves_memory: isStructured(method),
  };
}

/** Total parameters of a config (exact, as `loadModel` allocates them). */
export function countParams(config: ModelConfig): number {
  let n = 0;
  for (const s of parameterSpecs(config)) n += s.shape.reduce((a, b) => a * b, 1);
  return n;
}

/**
 * Bytes of `config`'s parameters with every decoder Linear weight in NF4 + double quantisation and
 * everything else in bf16 (see the module doc).
 */
export function nf4Bytes(config: ModelConfig): number {
  const linear = new Set(decoderLinearShapes(config).map((s) => s.name));
  let bytes = 0;
  for (const s of parameterSpecs(config)) {
    if (!linear.has(s.name)) {
      bytes += 2 * s.shape.reduce((a, b) => a * b, 1);
      continue;
    }
    bytes += nf4LinearBytes(s.shape[0], s.shape[1]); // bitsandbytes: flat blocks of 64
  }
  return bytes;
}

/** Every decoder Linear weight of a dense config: name, `[rows, cols]` and layer. */
export function decoderLinearShapes(
  config: ModelConfig,
): { name: string; rows: number; cols: number; layer: number }[] {
  const out: { name: string; rows: number; cols: number; layer: number }[] = [];
  for (const s of parameterSpecs(config)) {
    const m = /^model\.layers\.(\d+)\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.weight$/.exec(
      s.name,
    );
    if (m) out.push({ name: s.name, rows: s.shape[0], cols: s.shape[1], layer: Number(m[1]) });
  }
  return out;
}

/** @throws {RangeError} unless `ratio` is in (0, 1) */
export function checkRatio(ratio: number): void {
  if (!(ratio > 0 && ratio < 1)) {
    throw new RangeError(`Cannot plan LoRAM pruning: the ratio must be in (0, 1): received ${ratio}`);
  }
}

/**
 * The layer range `[start, end)`, default LoRAM's `[4, L−2)`.
 * @throws {RangeError} when it is empty or outside the model's `L` layers
 */
export function checkLayerRange(L: number, layers?: readonly [number, number]): [number, number] {
  const [start, end] = layers ?? loramLayerRange(L);
  if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start < end && end <= L)) {
    throw new RangeError(
      `Cannot plan LoRAM pruning: layer range [${start}, ${end}) is empty or outside the model's ${L} layers; ` +
        `pass START:END with 0 ≤ START < END ≤ ${L}${layers ? "" : " (the default [4, L−2) needs L ≥ 7)"}`,
    );
  }
  return [start, end];
}
