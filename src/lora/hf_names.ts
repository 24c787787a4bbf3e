/**
 * The Linear modules of a {@link CausalLM} under the module names Hugging Face transformers gives
 * them for the model's family, so that LoRA targets and PEFT adapter keys are the ones HF PEFT
 * uses for that architecture ([LoRA](https://arxiv.org/abs/2106.09685)):
 *
 * | Ferry module | HF module name (Llama/Qwen2/Qwen-MoE/OLMoE) | Mixtral |
 * | --- | --- | --- |
 * | `layers[i].attention.qProj` | `model.layers.{i}.self_attn.q_proj` | same |
 * | `layers[i].mlp.gateProj` (dense) | `model.layers.{i}.mlp.gate_proj` | — |
 * | `layers[i].mlp.router` | `model.layers.{i}.mlp.gate` | `model.layers.{i}.block_sparse_moe.gate` |
 * | expert `j` of `mlp.experts.gateProj` | `model.layers.{i}.mlp.experts.{j}.gate_proj` | `….block_sparse_moe.experts.{j}.w1` |
 * | expert `j` of `upProj` / `downProj` | `….experts.{j}.up_proj` / `down_proj` | `w3` / `w2` |
 * | `mlp.sharedExpert.*`, `mlp.sharedExpertGate` | `….mlp.shared_expert.gate_proj`, `….mlp.shared_expert_gate` | — |
 * | `lmHead` (untied only) | `lm_head` | same |
 *
 * The names come from `models/weights.ts` (`checkpointTensors`), the same table the loader uses.
 * A tied `lm_head` is not listed: it is the embedding matrix, which LoRA cannot adapt here.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "../models/load.ts";
 * import { loraSites } from "./hf_names.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/mixtral-top2-f32", { device });
 * const names = loraSites(model).map((s) => s.name);
 * assert.ok(names.includes("model.layers.0.block_sparse_moe.experts.3.w1"));
 * ```
 * @module
 */
import type { CausalLM } from "../models/causal_lm.ts";
import { checkpointTensors } from "../models/weights.ts";
import { asDenseExperts, type SwiGLUExperts } from "../nn/experts.ts";
import type { Linear } from "../nn/linear.ts";
import { asDenseLinear, type LinearLike } from "../nn/linear_like.ts";
import type { ExpertAdapterKey, LoraAdapter } from "../nn/lora_adapter.ts";
import { SparseMoE } from "../nn/sparse_moe.ts";
import type { SwiGLU } from "../nn/swiglu.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { QuantizedLinear } from "../nn/quantized_linear.ts";
import { linearModules } from "./targets.ts";

/** A stacked expert projection, by Ferry name. */
export type ExpertProjection = "gate_proj" | "up_proj" | "down_proj";

/** Where an adapter can go: one Linear module under its HF name, with weight `[out, in]`. */
export type LoraSite =
  & { readonly name: string; readonly inFeatures: number; readonly outFeatures: number }
  & (
    | { readonly kind: "linear"; readonly linear: Linear | QuantizedLinear }
    | {
      readonly kind: "expert";
      readonly experts: SwiGLUExperts;
      readonly projection: ExpertProjection;
      /** The expert `j`: the slot along the stacked tensor's first axis. */
      readonly index: number;
    }
  );

/**
 * Every Linear module of `model` (embeddings, norms and a tied head excluded), by HF module name,
 * in the order of the HF checkpoint.
 */
export function loraSites(model: CausalLM): LoraSite[] {
  // Ferry parameter -> owner; a packed projection (QLoRA's NF4 base) takes an adapter as a Linear does.
  const owners = new Map<string, Linear | QuantizedLinear | [SwiGLUExperts, ExpertProjection]>();
  const lin = (name: string, l: LinearLike) =>
    owners.set(
      `${name}.weight`,
      l instanceof QuantizedLinear ? l : asDenseLinear(l, `attach LoRA to ${name}`),
    );
  const swiglu = (p: string, m: SwiGLU) => {
    lin(`${p}.gate_proj`, m.gateProj);
    lin(`${p}.up_proj`, m.upProj);
    lin(`${p}.down_proj`, m.downProj);
  };
  model.layers.forEach((layer, i) => {
    const p = `model.layers.${i}`;
    const a = layer.attention;
    lin(`${p}.self_attn.q_proj`, a.qProj);
    lin(`${p}.self_attn.k_proj`, a.kProj);
    lin(`${p}.self_attn.v_proj`, a.vProj);
    lin(`${p}.self_attn.o_proj`, a.oProj);
    const mlp = layer.mlp;
    if (mlp instanceof SparseMoE) {
      lin(`${p}.mlp.gate`, mlp.router);
      for (const proj of ["gate_proj", "up_proj", "down_proj"] as const) {
        owners.set(`${p}.mlp.experts.${proj}`, [asDenseExperts(mlp.experts, "attach LoRA to experts"), proj]);
      }
      if (mlp.sharedExpert) swiglu(`${p}.mlp.shared_expert`, mlp.sharedExpert);
      if (mlp.sharedExpertGate) lin(`${p}.mlp.shared_expert_gate`, mlp.sharedExpertGate);
    } else {
      swiglu(`${p}.mlp`, mlp);
    }
  });
  if (!model.config.tieWordEmbeddings) lin("lm_head", model.lmHead);

  const tensors = checkpointTensors(model.config);
  const byHfName = new Map(tensors.map((t) => [t.hfName, t]));
  return linearModules(tensors.map((t) => [t.hfName, t] as const)).map((m): LoraSite => {
    const t = byHfName.get(`${m.name}.weight`)!;
    const owner = owners.get(t.param);
    const dims = { name: m.name, inFeatures: m.inFeatures, outFeatures: m.outFeatures };
    if (owner === undefined) {
      throw new Error(`Internal error: no module of the model owns parameter ${t.param} (${m.name})`);
    }
    return Array.isArray(owner)
      ? { ...dims, kind: "expert", experts: owner[0], projection: owner[1], index: t.expert! }
      : { ...dims, kind: "linear", linear: owner };
  });
}

/** The key of an expert site in `SwiGLUExperts.adapters`, e.g. `"down_proj.3"`. */
export function expertKey(site: LoraSite & { kind: "expert" }): ExpertAdapterKey {
  return `${site.projection}.${site.index}`;
}

/** The adapter attached at `site`, if any. */
export function attachedAdapter(site: LoraSite): LoraAdapter | undefined {
  return site.kind === "linear" ? site.linear.adapter : site.experts.adapters.get(expertKey(site));
}

/** Attaches `adapter` at `site` (the layer applies it in its forward; it does not own it). */
export function attachAdapter(site: LoraSite, adapter: LoraAdapter): void {
  if (site.kind === "linear") site.linear.adapter = adapter;
  else site.experts.adapters.set(expertKey(site), adapter);
}

/** Detaches whatever adapter is attached at `site`. */
export function detachAdapter(site: LoraSite): void {
  if (site.kind === "linear") site.linear.adapter = undefined;
  else site.experts.adapters.delete(expertKey(site));
}

/** The weight a site's adapter updates: a `[out, in]` tensor, or row `index` of a stacked `[E, out, in]` one. */
export function siteWeight(site: LoraSite): { tensor: Tensor; index: number | undefined } {
  if (site.kind === "linear") {
    if (site.linear instanceof QuantizedLinear) {
      throw new TypeError(
        `Cannot merge into ${site.name}: its weight is packed (${site.linear.weight.method}); an adapter trained ` +
          "on a quantized base merges into the full-precision model (LoRAM: recover it, then merge into the original)",
      );
    }
    return { tensor: site.linear.weight, index: undefined };
  }
  const { gateProj, upProj, downProj } = site.experts;
  const tensor = site.projection === "gate_proj"
    ? gateProj
    : site.projection === "up_proj"
    ? upProj
    : downProj;
  return { tensor, index: site.index };
}
