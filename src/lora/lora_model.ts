/**
 * `applyLora(model, config)`: LoRA adapters ([Hu et al., arXiv:2106.09685](https://arxiv.org/abs/2106.09685))
 * attached to a Ferry {@link CausalLM}, as PEFT's `get_peft_model(model, LoraConfig(...))` does:
 *
 * - Targets resolve against the model's Linear modules under the **HF module names of its family**
 *   (`hf_names.ts`), with PEFT's matching (`targets.ts`), so PEFT keys are the ones PEFT writes:
 *   `model.layers.0.self_attn.q_proj`, Mixtral `model.layers.0.block_sparse_moe.experts.3.w1`,
 *   Qwen2-MoE `model.layers.0.mlp.experts.3.gate_proj`.
 * - `"all-linear"` is PEFT's: every Linear except the output layer `lm_head`. That **includes
 *   the MoE router** (`gate`, an `nn.Linear` in transformers) and Qwen2-MoE's
 *   `shared_expert_gate`; list the projections, or set `excludeModules: ["gate"]`, to leave them out.
 *   With `"all-linear"` (or `null`, PEFT's `["q_proj", "v_proj"]`) the config is rewritten, as
 *   PEFT does, to the list of leaf names it stands for, so saved configs list them.
 * - Adapters (`A` `[r, in]`, `B` `[out, r]`, ledger category `"lora"`) start as PEFT initialises
 *   them (`lora_init.ts`), seeded; `rankPattern`, `alphaPattern`, `layersToTransform` apply.
 * - Only `bias: "none"` is supported, and neither `fanInFanOut` nor `modulesToSave`.
 *
 * `merge()` / `unmerge()` / `mergeAndUnload()` fold the adapters into the weights (`merge.ts`).
 * `saveLoraAdapter` / `loadLoraAdapter` (`adapter_io.ts`) read and write PEFT folders.
 *
 * @example Attach, check that a fresh adapter changes nothing, merge and unload
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "../models/load.ts";
 * import { applyLora } from "./lora_model.ts";
 * const device = await createDevice({ backend: "cpu" });
 * const model = await loadModel("test/fixtures/models/llama-gqa-tied-f32", { device });
 * const lora = applyLora(model, { r: 4, loraAlpha: 8, targetModules: ["q_proj", "v_proj"] }, { seed: 1 });
 * assert.ok(lora.modules.length === 4); // 2 layers × (q_proj, v_proj)
 * assert.ok(lora.trainableParameters().has("model.layers.0.self_attn.q_proj.lora_A.weight"));
 * using plain = await lora.mergeAndUnload(); // B = 0: the weights are unchanged
 * ```
 * @module
 */
import { ConfigError } from "../errors.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import type { LoraAdapter } from "../nn/lora_adapter.ts";
import { mulberry32 } from "../tensor/random.ts";
import { Tensor } from "../tensor/tensor.ts";
import { attachAdapter, attachedAdapter, detachAdapter, loraSites } from "./hf_names.ts";
import { type LoraConfig, loraConfig, type LoraConfigInput } from "./lora_config.ts";
import { checkLoraInit, initLoraFactors } from "./lora_init.ts";
import { type AdapterEntry, mergeAdapters, type MergeOptions, unmergeAdapters } from "./merge.ts";
import type { LoraFactors } from "./peft_io.ts";
import { resolveTargets } from "./targets.ts";

/** Options of {@link applyLora}. */
export interface ApplyLoraOptions {
  /** Seed of the factors' initialisation. Default 0. */
  seed?: number;
}

/** A model with LoRA adapters attached. Owns the adapters, not the model. */
export class LoraModel {
  /** The base model (its Linear layers carry the adapters). */
  readonly model: CausalLM;
  readonly config: LoraConfig;
  /** The adapted modules (HF names), in checkpoint order: what PEFT prints as targets. */
  readonly modules: readonly string[];
  readonly #entries: readonly AdapterEntry[];
  readonly #byName: ReadonlyMap<string, AdapterEntry>;
  #merged = false;
  #disposed = false;

  /**
   * Wraps adapters built from `factors` around `model`; use {@link applyLora} or `loadLoraAdapter`.
   *
   * @param factors module (HF name) → `A` `[r, in]`, `B` `[out, r]`, for exactly the modules to adapt
   * @throws {TypeError} when a module is unknown, a factor has the wrong length, or a module already
   *   carries an adapter
   */
  constructor(model: CausalLM, config: LoraConfig, factors: ReadonlyMap<string, LoraFactors>) {
    const sites = new Map(loraSites(model).map((s) => [s.name, s]));
    for (const [name, { A, B }] of factors) {
      const site = sites.get(name);
      if (!site) throw new TypeError(`Cannot attach LoRA: the model has no Linear module "${name}"`);
      const r = config.rank(name);
      if (A.length !== r * site.inFeatures || B.length !== site.outFeatures * r) {
        throw new TypeError(
          `Cannot attach LoRA to "${name}": expected A [${r}, ${site.inFeatures}] and B [${site.outFeatures}, ${r}] ` +
            `(${r * site.inFeatures} and ${
              site.outFeatures * r
            } values): received ${A.length} and ${B.length}`,
        );
      }
      if (attachedAdapter(site)) {
        throw new TypeError(
          `Cannot attach LoRA to "${name}": it already carries an adapter; dispose() the other LoraModel first`,
        );
      }
    }
    const upload = (name: string, data: Float32Array, shape: number[], factor: "A" | "B") =>
      Tensor.fromArray(model.device, data, shape, { category: "lora", label: `${name}.lora_${factor}` });
    const entries: AdapterEntry[] = [];
    try {
      for (const [name, site] of sites) {
        const f = factors.get(name);
        if (!f) continue;
        const r = config.rank(name);
        const a = upload(name, f.A, [r, site.inFeatures], "A"); // [r, in]
        let b: Tensor;
        try {
          b = upload(name, f.B, [site.outFeatures, r], "B"); // [out, r]
        } catch (err) {
          a.dispose();
          throw err;
        }
        const adapter: LoraAdapter = { a, b, scaling: config.scaling(name), dropout: config.loraDropout };
        attachAdapter(site, adapter);
        entries.push({ name, site, adapter });
      }
    } catch (err) {
      for (const { site, adapter } of entries) {
        detachAdapter(site);
        adapter.a.dispose();
        adapter.b.dispose();
      }
      throw err;
    }
    this.model = model;
    this.config = config;
    this.modules = Object.freeze(entries.map((e) => e.name));
    this.#entries = entries;
    this.#byName = new Map(entries.map((e) => [e.name, e]));
  }

  /** True while the adapters are folded into the weights (and detached). */
  get merged(): boolean {
    return this.#merged;
  }

  /** The adapter of `module` (HF name), or undefined. */
  adapter(module: string): LoraAdapter | undefined {
    return this.#byName.get(module)?.adapter;
  }

  /**
   * The LoRA factors by PEFT name without the `base_model.model.` prefix:
   * `{module}.lora_A.weight` `[r, in]` and `{module}.lora_B.weight` `[out, r]`, in module order.
   * The tensors stay owned by this object.
   */
  trainableParameters(): Map<string, Tensor> {
    this.#alive("list parameters");
    const out = new Map<string, Tensor>();
    for (const { name, adapter } of this.#entries) {
      out.set(`${name}.lora_A.weight`, adapter.a);
      out.set(`${name}.lora_B.weight`, adapter.b);
    }
    return out;
  }

  /** Number of trainable (adapter) parameters. */
  numTrainableParameters(): number {
    return this.#entries.reduce((n, { adapter }) => n + adapter.a.size + adapter.b.size, 0);
  }

  /**
   * PEFT's `print_trainable_parameters()` line plus the adapted modules, e.g.
   * `trainable params: 1,024 || all params: 101,376 || trainable%: 1.0101` and one module per line.
   */
  summary(): string {
    const trainable = this.numTrainableParameters();
    const all = this.model.numParameters().total + trainable;
    const fmt = (n: number) => n.toLocaleString("en-US");
    return `trainable params: ${fmt(trainable)} || all params: ${fmt(all)} || ` +
      `trainable%: ${(100 * trainable / all).toFixed(4)}\n` + this.modules.map((m) => `  ${m}`).join("\n");
  }

  /**
   * Folds every adapter into its weight (`W += scaling·B·A`) and detaches it. Merging twice warns
   * and does nothing.
   *
   * @throws {RangeError} with `safeMerge` (default), when a merged weight would not be finite;
   *   nothing is modified
   */
  async merge(options: MergeOptions = {}): Promise<void> {
    this.#alive("merge");
    if (this.#merged) {
      console.warn("LoraModel.merge(): already merged. Nothing to do.");
      return;
    }
    await mergeAdapters(this.#entries, options);
    this.#merged = true;
  }

  /** Subtracts the adapters from the weights again and re-attaches them. Warns when not merged. */
  unmerge(): void {
    this.#alive("unmerge");
    if (!this.#merged) {
      console.warn("LoraModel.unmerge(): already unmerged. Nothing to do.");
      return;
    }
    unmergeAdapters(this.#entries);
    this.#merged = false;
  }

  /**
   * Merges (if not merged yet), frees the adapters and returns the plain base model, which keeps
   * the merged weights. This object is unusable afterwards.
   */
  async mergeAndUnload(options: MergeOptions = {}): Promise<CausalLM> {
    if (!this.#merged) await this.merge(options);
    this.dispose();
    return this.model;
  }

  /** Detaches and frees the adapters without merging (after `unmerge` if merged); returns the base model. */
  unload(): CausalLM {
    if (this.#merged) this.unmerge();
    this.dispose();
    return this.model;
  }

  /**
   * Detaches and frees the adapters. The model stays usable; if merged, it keeps the merged
   * weights (as {@link mergeAndUnload}). Disposing twice is a no-op.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const { site, adapter } of this.#entries) {
      if (attachedAdapter(site) === adapter) detachAdapter(site);
      adapter.a.dispose();
      adapter.b.dispose();
    }
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #alive(what: string): void {
    if (this.#disposed) throw new TypeError(`Cannot ${what}: this LoraModel was disposed or unloaded`);
  }
}

/**
 * Attaches fresh LoRA adapters to `model` (PEFT `get_peft_model`).
 *
 * @param model the base model; it is modified (adapters attached), not copied
 * @param config a {@link LoraConfig} or its options
 * @returns the {@link LoraModel}; `modules` lists the adapted modules
 * @throws {ConfigError} for invalid options, targets that match no module (with close names),
 *   an unsupported `bias`/`fanInFanOut`/`modulesToSave`/`initLoraWeights`, or a tied `lm_head` target
 * @throws {TypeError} when a target already carries an adapter
 */
export function applyLora(
  model: CausalLM,
  config: LoraConfig | LoraConfigInput,
  options: ApplyLoraOptions = {},
): LoraModel {
  let cfg = isLoraConfig(config) ? config : loraConfig(config);
  checkLoraInit(cfg.initLoraWeights);
  const sites = loraSites(model);
  const modules = resolveModelTargets(model, cfg, sites.map((s) => s.name));
  // As PEFT, record what the spec stood for: the default's names, or all-linear's leaf names.
  if (cfg.targetModules === null) cfg = withTargets(cfg, ["q_proj", "v_proj"]);
  else if (typeof cfg.targetModules === "string" && cfg.targetModules.toLowerCase() === "all-linear") {
    const leaves = [...new Set(sites.map((s) => s.name.slice(s.name.lastIndexOf(".") + 1)))];
    cfg = withTargets(cfg, leaves.filter((l) => l !== "lm_head"));
  }
  const next = mulberry32(options.seed ?? 0);
  const factors = new Map<string, LoraFactors>();
  const wanted = new Set(modules);
  for (const site of sites) {
    if (!wanted.has(site.name)) continue;
    factors.set(site.name, initLoraFactors(cfg.initLoraWeights, { ...site, r: cfg.rank(site.name) }, next));
  }
  return new LoraModel(model, cfg, factors);
}

/**
 * `resolveTargets` against `moduleNames` of `model`, after Ferry's checks of what it supports.
 *
 * @throws {ConfigError} see {@link applyLora}
 */
export function resolveModelTargets(model: CausalLM, config: LoraConfig, moduleNames: string[]): string[] {
  const fail = (msg: string) => new ConfigError(`Cannot apply LoRA: ${msg}`);
  if (config.bias !== "none") {
    throw fail(`bias ${JSON.stringify(config.bias)} is not supported: Ferry supports bias "none" only`);
  }
  if (config.fanInFanOut) {
    throw fail("fanInFanOut is for GPT-2 Conv1D weights; Ferry's Linear weights are [out, in]: set it false");
  }
  if (config.modulesToSave !== null && config.modulesToSave.length > 0) {
    throw fail(`modulesToSave ${JSON.stringify(config.modulesToSave)} is not supported yet: leave it null`);
  }
  const t = config.targetModules;
  if (model.config.tieWordEmbeddings && Array.isArray(t) && t.includes("lm_head")) {
    throw fail(
      "lm_head is tied to embed_tokens in this model, and Ferry does not adapt a tied head " +
        "(merging would change the embeddings too): remove lm_head from targetModules",
    );
  }
  return resolveTargets(config, moduleNames);
}

function isLoraConfig(c: LoraConfig | LoraConfigInput): c is LoraConfig {
  return typeof (c as LoraConfig).scaling === "function";
}

/** `config` with `targetModules` replaced (the rest unchanged). */
function withTargets(config: LoraConfig, targetModules: string[]): LoraConfig {
  const { rank: _r, alpha: _a, scaling: _s, ...data } = config;
  return loraConfig({ ...data, targetModules });
}
