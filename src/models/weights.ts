/**
 * The tensors of a {@link ModelConfig}: Ferry's parameter names and shapes, and how each maps onto
 * Hugging Face checkpoint names. Shared by the loader and the saver.
 *
 * Ferry names every parameter as Llama/Qwen checkpoints do (`model.layers.3.self_attn.q_proj.weight`)
 * for every family, with two exceptions that HF stores otherwise:
 * - the routed experts of a MoE layer are stacked, one `[E, ·, ·]` tensor per projection:
 *   `model.layers.{i}.mlp.experts.gate_proj` `[E, F, C]` (HF: `…mlp.experts.{j}.gate_proj.weight`),
 *   likewise `up_proj` `[E, F, C]` and `down_proj` `[E, C, F]`;
 * - Mixtral's `block_sparse_moe.gate` / `experts.{j}.w1|w3|w2` are Ferry's `mlp.gate` /
 *   `mlp.experts.gate_proj|up_proj|down_proj`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseModelConfig } from "./config.ts";
 * import { checkpointTensors } from "./weights.ts";
 * const config = parseModelConfig({
 *   model_type: "mixtral", vocab_size: 16, hidden_size: 8, intermediate_size: 12, num_hidden_layers: 1,
 *   num_attention_heads: 2, num_key_value_heads: 1, num_local_experts: 2, num_experts_per_tok: 1,
 * });
 * const w1 = checkpointTensors(config).find((t) => t.hfName === "model.layers.0.block_sparse_moe.experts.1.w1.weight");
 * assert.deepEqual(w1, { hfName: "model.layers.0.block_sparse_moe.experts.1.w1.weight", param: "model.layers.0.mlp.experts.gate_proj", shape: [12, 8], expert: 1 });
 * ```
 * @module
 */
import type { MemoryCategory } from "../device/ledger.ts";
import { layerSizesAt, type ModelConfig } from "./config.ts";

/** One Ferry parameter. */
export interface ParameterSpec {
  /** Ferry name (see the module doc). */
  readonly name: string;
  readonly shape: readonly number[];
  /** Ledger category: `"experts"` for stacked routed experts, `"weights"` otherwise. */
  readonly category: MemoryCategory;
}

/** One tensor of an HF checkpoint, and where it lives among Ferry's parameters. */
export interface CheckpointTensor {
  /** The name in the safetensors files. */
  readonly hfName: string;
  /** The Ferry parameter it fills. */
  readonly param: string;
  /** Its shape in the checkpoint. */
  readonly shape: readonly number[];
  /** For stacked experts: the slot `j` along the parameter's first axis. */
  readonly expert?: number;
}

/** The projections of a stacked expert tensor: Ferry name, Mixtral name, and whether `[C, F]`. */
const EXPERT_PROJ = [["gate_proj", "w1", false], ["up_proj", "w3", false], [
  "down_proj",
  "w2",
  true,
]] as const;

/**
 * Every Ferry parameter of `config`, in HF `state_dict` order. Layer shapes follow
 * {@link layerSizesAt} (per-layer for a structurally pruned model).
 */
export function parameterSpecs(config: ModelConfig): ParameterSpec[] {
  const { hidden: C, headDim: D, vocabSize: V } = config;
  const specs: ParameterSpec[] = [];
  const w = (name: string, shape: number[], category: MemoryCategory = "weights") =>
    specs.push({ name, shape, category });
  const linear = (name: string, out: number, inp: number, bias: boolean) => {
    w(`${name}.weight`, [out, inp]);
    if (bias) w(`${name}.bias`, [out]);
  };
  w("model.embed_tokens.weight", [V, C]);
  for (let i = 0; i < config.layers; i++) {
    const p = `model.layers.${i}`;
    const { heads: H, kvHeads: Hkv, intermediate: I } = layerSizesAt(config, i);
    linear(`${p}.self_attn.q_proj`, H * D, C, config.attentionBias);
    linear(`${p}.self_attn.k_proj`, Hkv * D, C, config.attentionBias);
    linear(`${p}.self_attn.v_proj`, Hkv * D, C, config.attentionBias);
    linear(`${p}.self_attn.o_proj`, C, H * D, config.oProjBias);
    if (config.qkNorm !== "none") {
      const full = config.qkNorm === "full";
      w(`${p}.self_attn.q_norm.weight`, [full ? H * D : D]);
      w(`${p}.self_attn.k_norm.weight`, [full ? Hkv * D : D]);
    }
    if (config.moeLayers[i]) {
      const { numExperts: E, moeIntermediate: F, sharedExpertIntermediate: S } = config;
      w(`${p}.mlp.gate.weight`, [E, C]);
      for (const [proj, , down] of EXPERT_PROJ) {
        w(`${p}.mlp.experts.${proj}`, down ? [E, C, F] : [E, F, C], "experts");
      }
      if (S > 0) {
        linear(`${p}.mlp.shared_expert.gate_proj`, S, C, false);
        linear(`${p}.mlp.shared_expert.up_proj`, S, C, false);
        linear(`${p}.mlp.shared_expert.down_proj`, C, S, false);
        w(`${p}.mlp.shared_expert_gate.weight`, [1, C]);
      }
    } else {
      linear(`${p}.mlp.gate_proj`, I, C, config.mlpBias);
      linear(`${p}.mlp.up_proj`, I, C, config.mlpBias);
      linear(`${p}.mlp.down_proj`, C, I, config.mlpBias);
    }
    w(`${p}.input_layernorm.weight`, [C]);
    w(`${p}.post_attention_layernorm.weight`, [C]);
  }
  w("model.norm.weight", [C]);
  if (!config.tieWordEmbeddings) w("lm_head.weight", [V, C]);
  return specs;
}

/** Every tensor of an HF checkpoint of `config` (experts unstacked), in HF `state_dict` order. */
export function checkpointTensors(config: ModelConfig): CheckpointTensor[] {
  const mixtral = config.modelType === "mixtral";
  const out: CheckpointTensor[] = [];
  for (const spec of parameterSpecs(config)) {
    const m = /^(model\.layers\.\d+)\.mlp\.(gate\.weight|experts\.(\w+))$/.exec(spec.name);
    if (!m) {
      out.push({ hfName: spec.name, param: spec.name, shape: spec.shape });
      continue;
    }
    const block = `${m[1]}.${mixtral ? "block_sparse_moe" : "mlp"}`;
    if (m[3] === undefined) {
      out.push({ hfName: `${block}.gate.weight`, param: spec.name, shape: spec.shape });
      continue;
    }
    const [, mixtralName] = EXPERT_PROJ.find(([proj]) => proj === m[3])!;
    const [E, ...shape] = spec.shape;
    for (let j = 0; j < E; j++) {
      const hfName = `${block}.experts.${j}.${mixtral ? mixtralName : m[3]}.weight`;
      out.push({ hfName, param: spec.name, shape, expert: j });
    }
  }
  return out;
}
