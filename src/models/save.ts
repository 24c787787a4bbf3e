/**
 * `saveModel`: writes a {@link CausalLM} as a Hugging Face checkpoint folder that transformers
 * (and {@link loadModel}) loads unchanged: `config.json` (the original JSON, `torch_dtype`
 * updated) and `model.safetensors` or shards with `model.safetensors.index.json`, under HF names
 * with the stacked experts split back into one tensor per expert. Every file is written
 * atomically (temporary name, then rename).
 *
 * @example Save in bfloat16 and load back
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "./load.ts";
 * import { saveModel } from "./save.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/llama-gqa-tied-f32", { device });
 * const dir = await Deno.makeTempDir();
 * await saveModel(model, dir, { dtype: "bf16" });
 * using again = await loadModel(dir, { device });
 * assert.ok(again.config.hidden === model.config.hidden);
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import { z } from "zod";
import { parseConfig } from "../config.ts";
import { f32ToBf16, f32ToF16 } from "../io/dtype_convert.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import type { TensorInput } from "../io/safetensors.ts";
import { DEFAULT_MAX_SHARD_BYTES, writeShardedCheckpoint } from "../io/sharded.ts";
import type { CausalLM } from "./causal_lm.ts";
import { checkpointTensors } from "./weights.ts";

/** Options of {@link saveModel}. */
export const SaveModelOptionsSchema = z.strictObject({
  /** Stored dtype of every weight (rounded to nearest even from f32). */
  dtype: z.enum(["f32", "bf16", "f16"]).default("f32"),
  /** Largest shard in bytes (HF's `max_shard_size`); default 5 GB. */
  maxShardBytes: z.number().int().positive().default(DEFAULT_MAX_SHARD_BYTES),
});

const STORED = {
  f32: { safetensors: "F32", torch: "float32" },
  bf16: { safetensors: "BF16", torch: "bfloat16" },
  f16: { safetensors: "F16", torch: "float16" },
} as const;

const join = (dir: string, name: string) => `${dir.replace(/[\\/]+$/, "")}/${name}`;

/**
 * Writes `model` to `dir` as a Hugging Face checkpoint.
 *
 * @param model the model to save (its weights are read back from the device)
 * @param dir destination folder, created when missing; earlier shards there are replaced
 * @param options `dtype` (`"f32"`, `"bf16"`, `"f16"`; default `"f32"`) and `maxShardBytes`
 * @throws {ConfigError} on invalid options
 */
export async function saveModel(
  model: CausalLM,
  dir: string,
  options: z.input<typeof SaveModelOptionsSchema> = {},
): Promise<void> {
  const { dtype, maxShardBytes } = parseConfig("saveModel", SaveModelOptionsSchema, options);
  const params = model.parameters();
  const stored = STORED[dtype];
  const tensors = new Map<string, TensorInput>();
  const host = new Map<string, Float32Array>();
  for (const e of checkpointTensors(model.config)) {
    let data = host.get(e.param);
    if (!data) {
      data = await params.get(e.param)!.toArray() as Float32Array;
      host.set(e.param, data);
    }
    const n = e.shape.reduce((a, b) => a * b, 1);
    const values = e.expert === undefined ? data : data.subarray(e.expert * n, (e.expert + 1) * n);
    const out = dtype === "f32" ? values : dtype === "bf16" ? f32ToBf16(values) : f32ToF16(values);
    tensors.set(e.hfName, { dtype: stored.safetensors, shape: e.shape, data: out });
  }
  await writeShardedCheckpoint(dir, tensors, { maxShardBytes });
  const config: Record<string, unknown> = { ...model.hfConfig, torch_dtype: stored.torch };
  if ("dtype" in model.hfConfig) config.dtype = stored.torch;
  await writeFileAtomic(join(dir, "config.json"), JSON.stringify(config, null, 2) + "\n");
}
