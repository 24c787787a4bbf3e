/**
 * PEFT adapter folders for a {@link LoraModel} ([LoRA](https://arxiv.org/abs/2106.09685)):
 * `saveLoraAdapter` writes what `PeftModel.save_pretrained` writes for the same model and targets
 * (`adapter_config.json` + `adapter_model.safetensors`, f32, keys
 * `base_model.model.{module}.lora_A.weight`), and `loadLoraAdapter` attaches a folder written
 * by PEFT or by Ferry to a model, after checking every key against the model's modules.
 *
 * @example Save, load into another copy of the model, same logits
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "../models/load.ts";
 * import { loadLoraAdapter, saveLoraAdapter } from "./adapter_io.ts";
 * import { applyLora } from "./lora_model.ts";
 * const device = await createDevice({ backend: "cpu" });
 * const path = "test/fixtures/models/llama-gqa-tied-f32";
 * using model = await loadModel(path, { device });
 * using lora = applyLora(model, { r: 2, targetModules: ["q_proj"], initLoraWeights: false });
 * const dir = await Deno.makeTempDir();
 * await saveLoraAdapter(dir, lora, { baseModelNameOrPath: path });
 * using copy = await loadModel(path, { device });
 * using loaded = await loadLoraAdapter(dir, copy);
 * assert.ok(loaded.modules.join() === lora.modules.join() && loaded.config.baseModelNameOrPath === path);
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import { ConfigError, FormatError } from "../errors.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import { loraSites } from "./hf_names.ts";
import { fromPeftJson, toPeftJson } from "./lora_config.ts";
import { LoraModel, resolveModelTargets } from "./lora_model.ts";
import { ADAPTER_WEIGHTS_NAME, loadAdapter, type LoraFactors, peftKey, saveAdapter } from "./peft_io.ts";

/** Options of {@link saveLoraAdapter}. */
export interface SaveLoraAdapterOptions {
  /**
   * `base_model_name_or_path` to record (e.g. the checkpoint folder or hub id). Default: the
   * config's, else the folder `loadModel` read the model from, else the checkpoint's `_name_or_path`,
   * else null.
   */
  baseModelNameOrPath?: string;
}

/**
 * Writes `lora`'s adapters as a PEFT folder (created if missing; files written atomically).
 *
 * @param dir the folder
 * @param lora the adapters (merged or not: the factors are the same)
 */
export async function saveLoraAdapter(
  dir: string,
  lora: LoraModel,
  options: SaveLoraAdapterOptions = {},
): Promise<void> {
  const factors = new Map<string, LoraFactors>();
  for (const name of lora.modules) {
    const { a, b } = lora.adapter(name)!;
    factors.set(name, { A: await a.toArray() as Float32Array, B: await b.toArray() as Float32Array });
  }
  const fromCheckpoint = lora.model.hfConfig._name_or_path;
  const base = options.baseModelNameOrPath ?? lora.config.baseModelNameOrPath ?? lora.model.nameOrPath ??
    (typeof fromCheckpoint === "string" && fromCheckpoint !== "" ? fromCheckpoint : null);
  const config = fromPeftJson({ ...toPeftJson(lora.config), base_model_name_or_path: base });
  await saveAdapter(dir, config, factors);
}

/**
 * Reads a PEFT adapter folder and attaches it to `model` (PEFT `PeftModel.from_pretrained`).
 *
 * @param dir a folder with `adapter_config.json` and `adapter_model.safetensors`
 * @param model the base model (modified: adapters attached)
 * @throws {FormatError} when the folder is malformed, a key names no Linear module of the model
 *   (with close names), a factor's shape does not fit its module (naming the key and the expected
 *   shape), the file holds other tensors (e.g. `modules_to_save`), or the config's targets select
 *   other modules than the file holds
 */
export async function loadLoraAdapter(dir: string, model: CausalLM): Promise<LoraModel> {
  const { config, tensors, extra } = await loadAdapter(dir);
  const where = `${dir.replace(/[\\/]+$/, "")}/${ADAPTER_WEIGHTS_NAME}`;
  const fail = (msg: string) => new FormatError(`Cannot load LoRA adapter from ${where}: ${msg}`, where);
  if (extra.size > 0) {
    throw fail(
      `it holds tensors that are not LoRA factors (modules_to_save or trainable tokens are not supported): ` +
        [...extra.keys()].slice(0, 5).join(", "),
    );
  }
  const sites = new Map(loraSites(model).map((s) => [s.name, s]));
  for (const [module, f] of tensors) {
    const site = sites.get(module);
    if (!site) {
      throw fail(
        `"${peftKey(module, "A")}" names no Linear module of this ${model.config.modelType} model` +
          `${closeNames(module, [...sites.keys()])}; was the adapter trained on another architecture?`,
      );
    }
    if (f.inFeatures !== site.inFeatures) {
      throw fail(
        `"${
          peftKey(module, "A")
        }" must have shape [${f.r}, ${site.inFeatures}] (r, in_features of ${module}): ` +
          `received [${f.r}, ${f.inFeatures}]; was it trained on a model of another size?`,
      );
    }
    if (f.outFeatures !== site.outFeatures) {
      throw fail(
        `"${
          peftKey(module, "B")
        }" must have shape [${site.outFeatures}, ${f.r}] (out_features of ${module}, r): ` +
          `received [${f.outFeatures}, ${f.r}]; was it trained on a model of another size?`,
      );
    }
  }
  let resolved: string[];
  try {
    resolved = resolveModelTargets(model, config, [...sites.keys()]);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw fail(`its adapter_config.json does not fit this model: ${err.message}`);
  }
  const missing = resolved.filter((m) => !tensors.has(m));
  const unexpected = [...tensors.keys()].filter((m) => !resolved.includes(m));
  if (missing.length + unexpected.length > 0) {
    const list = (xs: string[]) => xs.slice(0, 5).join(", ") + (xs.length > 5 ? ", ..." : "");
    throw fail(
      `the config's target_modules select other modules than the file holds` +
        (missing.length ? `; missing: ${list(missing)}` : "") +
        (unexpected.length ? `; not targeted: ${list(unexpected)}` : ""),
    );
  }
  return new LoraModel(model, config, tensors);
}

/** ` (closest: a, b, c)`: the module names sharing the longest prefix plus suffix with `name`. */
function closeNames(name: string, names: string[]): string {
  const common = (a: string, b: string) => {
    let i = 0;
    while (i < a.length && a[i] === b[i]) i++;
    return i;
  };
  const reverse = (s: string) => [...s].reverse().join("");
  const score = (n: string) => common(name, n) + common(reverse(name), reverse(n));
  const best = names.map((n) => [score(n), n] as const).sort((x, y) => y[0] - x[0]).slice(0, 3);
  return best.length ? ` (closest: ${best.map(([, n]) => n).join(", ")})` : "";
}
