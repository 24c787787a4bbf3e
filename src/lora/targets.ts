/**
 * Which modules a {@link LoraConfig} adapts, with PEFT's `check_target_module_exists`
 * (`peft/tuners/tuners_utils.py`) semantics, plus {@linkcode linearModules} to list a model's
 * Linear modules from its parameters.
 *
 * Matching, per module name, in PEFT's order:
 * 1. `excludeModules` (regex: full match; list: exact or `.`-suffix match) → skipped.
 * 2. `modulesToSave` entries `m` with `re.match(rf"(^|.*\.){m}($|\..*)", name)` → skipped.
 * 3. `targetModules` as a string: `re.fullmatch`. `"all-linear"` (any case): the leaf names of
 *    all given Linear modules except the output layer `lm_head`, then matched as a list.
 * 4. As a list: `name` in the list (no layer filter), or `name.endsWith("." + key)` for some key,
 *    then, with `layersToTransform`, the layer index from PEFT's regex
 *    `.*\.{layersPattern}\.(\d+)\.` (or `.*\.[^.]*\.(\d+)\.` without a pattern, which is greedy:
 *    it takes the **last** `.name.N.` in the name, so set `layersPattern: "layers"` when experts
 *    are numbered too) must be in `layersToTransform`.
 *
 * Ferry is stricter than PEFT in one way: a list entry or regex that matches no module is a
 * `ConfigError` naming the closest module names, instead of being silently ignored.
 *
 * **MoE experts.** Ferry stores each layer's experts stacked (`model.layers.{i}.mlp.experts.gate_proj`
 * of shape `[E, F, C]`). {@linkcode linearModules} expands such a parameter into PEFT's per-expert
 * module names `model.layers.{i}.mlp.experts.{j}.gate_proj` (j < E), as Qwen2-MoE/OLMoE name
 * their per-expert `nn.Linear`s, so targets such as `"gate_proj"` or
 * `"model\\.layers\\.\\d+\\.mlp\\.experts\\.\\d+\\.down_proj"` resolve per expert, and adapter files
 * use the keys PEFT would. Each result carries `expert: { parameter, index }` to find the slice.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loraConfig } from "./lora_config.ts";
 * import { resolveTargets } from "./targets.ts";
 * const names = [0, 1].flatMap((i) => ["q_proj", "k_proj", "v_proj"].map((p) => `model.layers.${i}.self_attn.${p}`));
 * const config = loraConfig({ targetModules: ["q_proj", "v_proj"], layersToTransform: [1] });
 * assert.ok(resolveTargets(config, names).join() === "model.layers.1.self_attn.q_proj,model.layers.1.self_attn.v_proj");
 * ```
 * @module
 */
import { ConfigError } from "../errors.ts";
import { type LoraConfigData, pythonRegex } from "./lora_config.ts";

/** One Linear module: PEFT name and `weight` shape `[outFeatures, inFeatures]`. */
export interface LinearModule {
  readonly name: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** For an expert of a stacked `[E, out, in]` parameter: that parameter and the expert index. */
  readonly expert?: { readonly parameter: string; readonly index: number };
}

/** Leaf names that are embeddings, not Linear layers (PEFT `EMBEDDING_LAYER_NAMES` minus `lm_head`). */
const EMBEDDINGS = new Set(["embed_tokens", "wte", "wpe", "word_embeddings", "embed_positions"]);

/**
 * The Linear modules behind a model's parameters: every 2-D `X.weight` (except embeddings) is
 * module `X`; every 3-D stacked-expert parameter `…experts.P` of shape `[E, out, in]` is the `E`
 * modules `…experts.{j}.P`.
 *
 * @param parameters Name → anything with a `shape` (e.g. `model.parameters()`).
 */
export function linearModules(
  parameters: Iterable<readonly [string, { readonly shape: readonly number[] }]>,
): LinearModule[] {
  const out: LinearModule[] = [];
  for (const [name, { shape }] of parameters) {
    if (shape.length === 2 && name.endsWith(".weight")) {
      const module = name.slice(0, -".weight".length);
      if (!EMBEDDINGS.has(leaf(module))) {
        out.push({ name: module, outFeatures: shape[0], inFeatures: shape[1] });
      }
    } else if (shape.length === 3 && /(^|\.)experts\.[^.]+$/.test(name)) {
      const cut = name.lastIndexOf(".");
      for (let j = 0; j < shape[0]; j++) {
        out.push({
          name: `${name.slice(0, cut)}.${j}${name.slice(cut)}`,
          outFeatures: shape[1],
          inFeatures: shape[2],
          expert: { parameter: name, index: j },
        });
      }
    }
  }
  return out;
}

/**
 * The subset of `moduleNames` (Linear modules, e.g. `linearModules(…).map((m) => m.name)`) that
 * `config` adapts, in input order.
 *
 * @throws {ConfigError} When a target entry or regex matches no module name, listing close names
 *   and the available leaf names, or when the layer filter leaves nothing.
 */
export function resolveTargets(config: LoraConfigData, moduleNames: readonly string[]): string[] {
  let targets = config.targetModules ?? ["q_proj", "v_proj"];
  if (typeof targets === "string" && targets.toLowerCase() === "all-linear") {
    targets = [...new Set(moduleNames.map(leaf))].filter((n) => n !== "lm_head");
  }
  const candidates = moduleNames.filter((name) => !excluded(config, name));
  if (typeof targets === "string") {
    const re = pythonRegex(targets, "^$");
    const found = candidates.filter((name) => re.test(name));
    if (!moduleNames.some((name) => re.test(name))) {
      throw unmatched(`regex ${JSON.stringify(targets)}`, targets, moduleNames);
    }
    return found;
  }
  const list = targets;
  for (const key of list) {
    if (!moduleNames.some((name) => name === key || name.endsWith(`.${key}`))) {
      throw unmatched(`entry ${JSON.stringify(key)}`, key, moduleNames);
    }
  }
  const found = candidates.filter((name) => matchesList(config, list, name));
  if (found.length === 0) {
    throw new ConfigError(
      `Cannot resolve LoRA targets: layersToTransform ${JSON.stringify(config.layersToTransform)} ` +
        `(layersPattern ${
          JSON.stringify(config.layersPattern)
        }) leaves no module among ${moduleNames.length}`,
    );
  }
  return found;
}

function matchesList(config: LoraConfigData, list: readonly string[], name: string): boolean {
  if (list.includes(name)) return true;
  if (!list.some((key) => name.endsWith(`.${key}`))) return false;
  const layers = config.layersToTransform;
  if (layers === null || (Array.isArray(layers) && layers.length === 0)) return true;
  const index = layerIndex(name, config.layersPattern);
  if (index === undefined) return false;
  return typeof layers === "number" ? index === layers : layers.includes(index);
}

/** PEFT's layer index of `name` (see the module doc), or undefined. */
export function layerIndex(
  name: string,
  layersPattern: string | readonly string[] | null,
): number | undefined {
  const patterns = layersPattern === null || layersPattern.length === 0
    ? [null]
    : typeof layersPattern === "string"
    ? [layersPattern]
    : layersPattern;
  for (const p of patterns) {
    const m = pythonRegex(p === null ? String.raw`.*\.[^.]*\.(\d+)\.` : String.raw`.*\.${p}\.(\d+)\.`, "^")
      .exec(name);
    if (m) return Number(m[1]);
  }
  return undefined;
}

function excluded(config: LoraConfigData, name: string): boolean {
  const ex = config.excludeModules;
  if (typeof ex === "string" && pythonRegex(ex, "^$").test(name)) return true;
  if (Array.isArray(ex) && ex.some((key) => name === key || name.endsWith(`.${key}`))) return true;
  return (config.modulesToSave ?? []).some((m) =>
    pythonRegex(String.raw`(^|.*\.)${m}($|\..*)`, "^").test(name)
  );
}

function leaf(name: string): string {
  return name.slice(name.lastIndexOf(".") + 1);
}

function unmatched(what: string, key: string, names: readonly string[]): ConfigError {
  const leaves = [...new Set(names.map(leaf))];
  const k = key.toLowerCase();
  const limit = Math.max(2, Math.floor(key.length / 3));
  const distances = leaves.map((l) => editDistance(k, l.toLowerCase()));
  const best = Math.min(...distances);
  // The nearest leaves by edit distance (if close enough), plus leaves containing the key or inside it.
  const close = leaves.filter((l, i) => {
    const lower = l.toLowerCase();
    return (distances[i] === best && best <= limit) ||
      (k.length >= 2 && (lower.includes(k) || k.includes(lower)));
  });
  const closeNames = names.filter((n) => close.includes(leaf(n))).slice(0, 5);
  const hint = close.length > 0
    ? ` Did you mean ${close.map((c) => JSON.stringify(c)).join(" or ")} (e.g. ${closeNames.join(", ")})?`
    : "";
  return new ConfigError(
    `Cannot resolve LoRA targets: ${what} matches no module.${hint} ` +
      `Available leaf names: ${leaves.join(", ") || "(none)"}`,
  );
}

/** Levenshtein distance (small strings only). */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}
