/**
 * `loadModel`: a Hugging Face checkpoint folder (`config.json` plus `model.safetensors` or shards
 * with `model.safetensors.index.json`) onto a device, as a {@link CausalLM}.
 *
 * Every tensor is checked before any is read: all missing names are reported together, every
 * shape is compared with the config, and a malformed or truncated shard surfaces the safetensors
 * `FormatError` naming the file. F16/BF16 weights are widened to f32 exactly. Routed experts are
 * stacked into one `[E, ·, ·]` tensor per layer and projection (ledger category `"experts"`); all
 * other weights go under `"weights"`. Reads are one tensor at a time, so host memory stays at
 * about one tensor.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "./load.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/mixtral-top2-f32", { device });
 * assert.ok(model.config.family === "moe" && device.ledger.current("experts") > 0);
 * ```
 * @module
 */
import { isNotFound, readTextFile } from "../host/runtime.ts";
import { z } from "zod";
import { parseConfig } from "../config.ts";
import type { Device } from "../device/device.ts";
import { FormatError } from "../errors.ts";
import { f32ToF16 } from "../io/dtype_convert.ts";
import { ShardedCheckpoint } from "../io/sharded.ts";
import { Tensor } from "../tensor/tensor.ts";
import { CausalLM } from "./causal_lm.ts";
import { parseModelConfig } from "./config.ts";
import { checkpointTensors, parameterSpecs } from "./weights.ts";

/** Options of {@link loadModel} (besides the device). */
export const LoadModelOptionsSchema = z.strictObject({
  /**
   * Storage of the projection weights on the device: `"f32"` (default) or `"f16"` (inference
   * only: every `*_proj` weight, the embeddings, `lm_head` and loaded expert stacks stay at 16
   * bits and the ops widen them in registers; norms, biases and routers stay f32).
   */
  dtype: z.enum(["f32", "f16"]).default("f32"),
  /**
   * `"load"` (default): the routed experts go to the device; `"skip"`: they are neither read nor
   * allocated, and each MoE layer holds `DetachedExperts` (an offloading runtime keeps them on the host).
   */
  experts: z.enum(["load", "skip"]).default("load"),
});

/** Options of {@link loadModel}. */
export interface LoadModelOptions extends z.input<typeof LoadModelOptionsSchema> {
  /** Where the weights go (their bytes are counted by its ledger). */
  device: Device;
}

const FLOAT_DTYPES = new Set(["F32", "F16", "BF16"]);
/** Checkpoint tensors transformers itself ignores. */
const IGNORED = /(^|\.)rotary_emb\.inv_freq$/;

const join = (dir: string, name: string) => `${dir.replace(/[\\/]+$/, "")}/${name}`;

/**
 * Reads `dir/config.json` as a JSON object.
 * @throws {FormatError} when the file is missing or is not a JSON object
 */
export async function readHfConfig(dir: string): Promise<Record<string, unknown>> {
  const path = join(dir, "config.json");
  let text: string;
  try {
    text = await readTextFile(path);
  } catch (e) {
    if (isNotFound(e)) {
      throw new FormatError(
        `Cannot load model from ${dir}: config.json is missing; pass a Hugging Face checkpoint folder`,
        path,
      );
    }
    throw e;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FormatError(
      `Cannot load model from ${dir}: config.json is not valid JSON (${(e as Error).message})`,
      path,
    );
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new FormatError(`Cannot load model from ${dir}: config.json must hold a JSON object`, path);
  }
  return json as Record<string, unknown>;
}

/** Whether `loadModel({ dtype: "f16" })` keeps Ferry parameter `name` at 16 bits. */
export function isHalfParameter(name: string): boolean {
  return /_proj\.weight$/.test(name) || name === "lm_head.weight" || name === "model.embed_tokens.weight" ||
    /\.mlp\.experts\.\w+$/.test(name);
}

/**
 * Loads a Hugging Face checkpoint folder onto `device`.
 *
 * @param dir folder with `config.json` and the safetensors weights
 * @param options `device`, `dtype` (`"f32"`, or `"f16"` projection weights for inference) and
 *   `experts` (`"load"` or `"skip"`)
 * @returns the model; dispose it to return its weights to the ledger
 * @throws {FormatError} when config.json is missing or invalid JSON, when tensors are missing
 *   (all listed), have the wrong shape or a non-float dtype, or a shard is malformed
 * @throws {ConfigError} for an unsupported `model_type` or an invalid config
 * @throws {OutOfBudgetError} when the weights do not fit the device's budget
 */
export async function loadModel(dir: string, options: LoadModelOptions): Promise<CausalLM> {
  const { device, ...rest } = options;
  const { experts, dtype } = parseConfig("loadModel", LoadModelOptionsSchema, rest);
  const skip = experts === "skip";
  const hfConfig = await readHfConfig(dir);
  const config = parseModelConfig(hfConfig);
  using ckpt = await ShardedCheckpoint.open(dir);
  const entries = checkpointTensors(config);
  checkTensors(dir, ckpt, entries, config.tieWordEmbeddings);

  const params = new Map<string, Tensor>();
  try {
    for (const spec of parameterSpecs(config)) {
      if (skip && spec.category === "experts") continue;
      const half = dtype === "f16" && isHalfParameter(spec.name);
      const opts = {
        category: spec.category,
        label: spec.name,
        dtype: half ? "f16" as const : "f32" as const,
      };
      params.set(spec.name, Tensor.empty(device, spec.shape, opts));
    }
    for (const e of entries) {
      if (skip && e.expert !== undefined) continue;
      const t = params.get(e.param)!;
      const f32 = await ckpt.readF32(e.hfName); // F32 / F16 / BF16 -> f32
      const data = t.dtype === "f16" ? f32ToF16(f32) : f32; // exact for an F16 checkpoint
      if (t.dtype === "f16" && e.expert !== undefined && data.byteLength % 4 !== 0) {
        throw new FormatError(
          `Cannot load ${e.hfName} as f16: one expert's matrix has an odd number of elements (${data.length}), ` +
            "which 16-bit expert stacks cannot hold; load with dtype f32",
          dir,
        );
      }
      if (data.length > 0) device.upload(t.storage, data, (e.expert ?? 0) * data.byteLength);
    }
    const model = CausalLM.fromParameters(config, params, hfConfig, { detachedExperts: skip });
    model.nameOrPath = dir; // like transformers' name_or_path: PEFT records it as the adapter's base
    return model;
  } catch (err) {
    for (const t of params.values()) t.dispose();
    throw err;
  }
}

/** Checks names, shapes and dtypes of every expected tensor before anything is read; warns about extras. */
function checkTensors(
  dir: string,
  ckpt: ShardedCheckpoint,
  entries: readonly { hfName: string; shape: readonly number[] }[],
  tied: boolean,
): void {
  const known = new Set(entries.map((e) => e.hfName));
  const extra = ckpt.names.filter((n) =>
    !known.has(n) && !IGNORED.test(n) && !(tied && n === "lm_head.weight")
  );
  const missing = entries.filter((e) => !ckpt.has(e.hfName)).map((e) => e.hfName);
  if (missing.length > 0) {
    // Unused names next to missing ones usually mean another naming scheme (not Hugging Face's).
    const unused = extra.length === 0
      ? ""
      : `; the checkpoint has ${extra.length} tensor${extra.length > 1 ? "s" : ""} the model does not use (${
        firstNames(extra)
      }): are its names in Hugging Face's layout?`;
    throw new FormatError(
      `Cannot load model from ${dir}: ${missing.length} tensor${
        missing.length > 1 ? "s are" : " is"
      } missing ` +
        `from the checkpoint: ${firstNames(missing)}; check that config.json matches the weights${unused}`,
      dir,
    );
  }
  const problems: string[] = [];
  for (const e of entries) {
    const info = ckpt.info(e.hfName);
    if (info.shape.length !== e.shape.length || info.shape.some((d, i) => d !== e.shape[i])) {
      problems.push(`${e.hfName}: expected shape [${e.shape}], received [${info.shape}]`);
    } else if (!FLOAT_DTYPES.has(info.dtype)) {
      problems.push(`${e.hfName}: expected F32, F16 or BF16, received ${info.dtype}`);
    }
  }
  if (problems.length > 0) {
    throw new FormatError(
      `Cannot load model from ${dir}: tensors do not match config.json:\n${
        problems.map((p) => `  ${p}`).join("\n")
      }\nCheck that config.json belongs to these weights`,
      dir,
    );
  }
  if (extra.length > 0) {
    console.warn(
      `loadModel(${dir}): ignoring ${extra.length} unexpected tensor${extra.length > 1 ? "s" : ""}: ${
        firstNames(extra)
      }`,
    );
  }
}

/** Up to 12 names, then how many more: an error about 200 tensors stays readable. */
function firstNames(names: readonly string[], n = 12): string {
  return names.slice(0, n).join(", ") + (names.length > n ? `, … (${names.length - n} more)` : "");
}
