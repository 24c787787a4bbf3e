/**
 * PEFT adapter folders: `adapter_config.json` + `adapter_model.safetensors`, byte-compatible with
 * `PeftModel.save_pretrained` / `PeftModel.from_pretrained` (`peft/utils/save_and_load.py`).
 *
 * - Keys: `base_model.model.{module}.lora_A.weight` (`[r, in]`) and `….lora_B.weight` (`[out, r]`),
 *   without the adapter name, as PEFT saves them. Loading also accepts `.lora_A.default.weight`.
 * - The safetensors metadata is `{ format: "pt" }`; the config JSON is PEFT's (snake_case, every
 *   field, sorted keys, indent 2) with `inference_mode: true`, as `save_pretrained` writes it.
 * - Both files are written atomically (temporary name, then rename); the config goes last.
 *
 * @example Save, then load
 * ```ts
 * import assert from "node:assert/strict";
 * import { loraConfig } from "./lora_config.ts";
 * import { loadAdapter, saveAdapter } from "./peft_io.ts";
 * const dir = await Deno.makeTempDir();
 * const config = loraConfig({ r: 2, loraAlpha: 4, targetModules: ["q_proj"] });
 * const A = new Float32Array(2 * 3).fill(0.5); // [r, in] = [2, 3]
 * const B = new Float32Array(4 * 2); // [out, r] = [4, 2]
 * await saveAdapter(dir, config, new Map([["model.layers.0.self_attn.q_proj", { A, B }]]));
 * const loaded = await loadAdapter(dir);
 * const q = loaded.tensors.get("model.layers.0.self_attn.q_proj")!;
 * assert.ok(loaded.config.loraAlpha === 4 && q.inFeatures === 3 && q.outFeatures === 4);
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import { mkdir, readTextFile } from "../host/runtime.ts";
import { ConfigError, FormatError } from "../errors.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { SafetensorsFile, type TensorInput, writeSafetensors } from "../io/safetensors.ts";
import { fromPeftJson, type LoraConfig, toPeftJson } from "./lora_config.ts";

/** PEFT's file names. */
export const ADAPTER_CONFIG_NAME = "adapter_config.json";
export const ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors";

/** Prefix PEFT puts before module names in saved keys (`PeftModelForCausalLM.base_model.model`). */
export const PEFT_KEY_PREFIX = "base_model.model.";

/** One module's LoRA factors, row-major: `A` is `[r, in]`, `B` is `[out, r]` (`ΔW = scaling·B·A`). */
export interface LoraFactors {
  readonly A: Float32Array;
  readonly B: Float32Array;
}

/** Factors as loaded, with their dimensions. */
export interface LoadedFactors extends LoraFactors {
  readonly r: number;
  readonly inFeatures: number;
  readonly outFeatures: number;
}

/** A loaded adapter folder. */
export interface LoadedAdapter {
  config: LoraConfig;
  /** Module name (no PEFT prefix) → factors, in file order. */
  tensors: Map<string, LoadedFactors>;
  /** Tensors that are not LoRA factors (e.g. `modules_to_save` weights), under their file keys, as f32. */
  extra: Map<string, { shape: number[]; data: Float32Array }>;
}

/** Options of {@link saveAdapter}. */
export interface SaveAdapterOptions {
  /** Storage dtype; PEFT keeps the training dtype. Default `"F32"`. */
  dtype?: "F32";
}

/** PEFT's saved key of one factor. */
export function peftKey(module: string, factor: "A" | "B"): string {
  return `${PEFT_KEY_PREFIX}${module}.lora_${factor}.weight`;
}

/**
 * Writes a PEFT adapter folder (created if missing).
 *
 * @param dir Folder to write into.
 * @param config The adapter's config; `rank(module)` gives each module's `r`.
 * @param tensors Module name → `{ A: [r, in], B: [out, r] }`.
 * @throws {TypeError} When a factor's length is not a multiple of the module's rank, or `A` and
 *   `B` disagree.
 */
export async function saveAdapter(
  dir: string,
  config: LoraConfig,
  tensors: ReadonlyMap<string, LoraFactors> | Readonly<Record<string, LoraFactors>>,
  _options: SaveAdapterOptions = {},
): Promise<void> {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const out = new Map<string, TensorInput>();
  for (const [module, { A, B }] of entries) {
    const r = config.rank(module);
    if (
      !(A instanceof Float32Array) || !(B instanceof Float32Array) || A.length % r !== 0 || B.length % r !== 0
    ) {
      throw new TypeError(
        `Cannot save LoRA adapter: "${module}" needs Float32Array A [${r}, in] and B [out, ${r}]: ` +
          `received lengths ${A?.length} and ${B?.length}`,
      );
    }
    out.set(peftKey(module, "A"), { dtype: "F32", shape: [r, A.length / r], data: A });
    out.set(peftKey(module, "B"), { dtype: "F32", shape: [B.length / r, r], data: B });
  }
  await mkdir(dir, { recursive: true });
  await writeSafetensors(`${dir}/${ADAPTER_WEIGHTS_NAME}`, out, { format: "pt" });
  const json = toPeftJson({ ...config, inferenceMode: true });
  await writeFileAtomic(`${dir}/${ADAPTER_CONFIG_NAME}`, JSON.stringify(json, null, 2));
}

const KEY = /^base_model\.model\.(.+)\.lora_([AB])(?:\.default)?\.weight$/;

/**
 * Reads a PEFT adapter folder (written by PEFT or by {@link saveAdapter}); F16/BF16 factors are
 * widened to f32.
 *
 * @throws {FormatError} When a file is missing or malformed, the config is invalid, a module
 *   lacks `lora_A` or `lora_B`, or a shape disagrees with the module's rank.
 */
export async function loadAdapter(dir: string): Promise<LoadedAdapter> {
  const configPath = `${dir}/${ADAPTER_CONFIG_NAME}`;
  let text: string;
  try {
    text = await readTextFile(configPath);
  } catch (err) {
    throw new FormatError(
      `Cannot load LoRA adapter: cannot read ${configPath}: ${(err as Error).message}`,
      configPath,
    );
  }
  let config: LoraConfig;
  try {
    config = fromPeftJson(JSON.parse(text));
  } catch (err) {
    if (!(err instanceof SyntaxError || err instanceof ConfigError)) throw err;
    throw new FormatError(`Cannot load LoRA adapter: ${configPath} is invalid: ${err.message}`, configPath);
  }
  const weightsPath = `${dir}/${ADAPTER_WEIGHTS_NAME}`;
  let file: SafetensorsFile;
  try {
    file = await SafetensorsFile.open(weightsPath);
  } catch (err) {
    if (err instanceof FormatError) throw err;
    throw new FormatError(
      `Cannot load LoRA adapter: cannot open ${weightsPath}: ${(err as Error).message}`,
      weightsPath,
    );
  }
  using st = file;
  const halves = new Map<string, { A?: [number[], Float32Array]; B?: [number[], Float32Array] }>();
  const extra = new Map<string, { shape: number[]; data: Float32Array }>();
  const bad = (msg: string) =>
    new FormatError(`Cannot load LoRA adapter from ${weightsPath}: ${msg}`, weightsPath);
  for (const key of st.names) {
    const info = st.info(key);
    if (!["F32", "F16", "BF16"].includes(info.dtype)) {
      throw bad(`"${key}" has unsupported dtype ${info.dtype}`);
    }
    const data = await st.readF32(key);
    const m = KEY.exec(key);
    if (!m) {
      extra.set(key, { shape: [...info.shape], data });
      continue;
    }
    const [, module, factor] = m as unknown as [string, string, "A" | "B"];
    const entry = halves.get(module) ?? {};
    if (entry[factor]) throw bad(`"${module}" has two lora_${factor} tensors`);
    entry[factor] = [[...info.shape], data];
    halves.set(module, entry);
  }
  const tensors = new Map<string, LoadedFactors>();
  for (const [module, { A, B }] of halves) {
    if (!A || !B) throw bad(`"${module}" has lora_${A ? "A" : "B"} but no lora_${A ? "B" : "A"}`);
    const r = config.rank(module);
    const [[ra, inFeatures], [outFeatures, rb]] = [A[0], B[0]];
    if (A[0].length !== 2 || B[0].length !== 2 || ra !== r || rb !== r) {
      throw bad(
        `"${module}" must have lora_A [${r}, in] and lora_B [out, ${r}] for r=${r}: ` +
          `received [${A[0]}] and [${B[0]}]`,
      );
    }
    tensors.set(module, { A: A[1], B: B[1], r, inFeatures, outFeatures });
  }
  return { config, tensors, extra };
}
