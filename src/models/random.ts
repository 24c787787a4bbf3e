/**
 * Random checkpoints in Hugging Face layout, like transformers' "tiny-random" test models:
 * every tensor a config implies, under its HF name, with seeded normal weights (norm weights 1).
 * Benchmarks and tests use them where no trained checkpoint of the wanted size exists.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeRandomCheckpoint } from "./random.ts";
 * const dir = await Deno.makeTempDir();
 * await writeRandomCheckpoint(dir, {
 *   model_type: "llama", vocab_size: 32, hidden_size: 16, intermediate_size: 24, num_hidden_layers: 1,
 *   num_attention_heads: 2, num_key_value_heads: 1,
 * });
 * assert.ok((await Deno.readTextFile(`${dir}/config.json`)).includes('"llama"'));
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import { mkdir } from "../host/runtime.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { type LazyTensorInput, writeShardedLazy, type WriteShardedResult } from "../io/sharded.ts";
import { f32ToBf16, f32ToF16 } from "../io/dtype_convert.ts";
import { randn } from "../tensor/random.ts";
import { parseModelConfig } from "./config.ts";
import { checkpointTensors } from "./weights.ts";

/** Options for {@link writeRandomCheckpoint}. */
export interface RandomCheckpointOptions {
  seed?: number;
  /** Standard deviation of matrix entries (default 0.02, as HF's `initializer_range`). */
  std?: number;
  /** Storage dtype (default `"f32"`). */
  dtype?: "f32" | "bf16" | "f16";
  /** Largest shard in bytes (default 5 GB, HF's); only one shard's weights are in memory at a time. */
  maxShardBytes?: number;
}

/**
 * Writes `config.json` and seeded random weights for `hfConfig` into `dir` (created if needed).
 * Weights are made shard by shard, so a checkpoint larger than memory can be written; each file
 * is written atomically and `config.json` goes last.
 *
 * @returns the safetensors files written and their total tensor bytes
 * @throws {ConfigError} when `hfConfig` is not a supported model config
 */
export async function writeRandomCheckpoint(
  dir: string,
  hfConfig: Record<string, unknown>,
  { seed = 0, std = 0.02, dtype = "f32", maxShardBytes }: RandomCheckpointOptions = {},
): Promise<WriteShardedResult> {
  const config = parseModelConfig(hfConfig);
  const tensors = new Map<string, LazyTensorInput>();
  for (const [i, t] of checkpointTensors(config).entries()) {
    const n = t.shape.reduce((a, b) => a * b, 1);
    const make = () => {
      const data = /norm\.weight$/.test(t.hfName)
        ? new Float32Array(n).fill(1)
        : randn(n, seed * 100_003 + i, std);
      return dtype === "f32" ? data : dtype === "bf16" ? f32ToBf16(data) : f32ToF16(data);
    };
    tensors.set(t.hfName, {
      dtype: dtype === "f32" ? "F32" : dtype === "bf16" ? "BF16" : "F16",
      shape: t.shape,
      data: make,
    });
  }
  await mkdir(dir, { recursive: true });
  const written = await writeShardedLazy(dir, tensors, { maxShardBytes });
  const torchDtype = { f32: "float32", bf16: "bfloat16", f16: "float16" }[dtype];
  await writeFileAtomic(
    `${dir}/config.json`,
    JSON.stringify({ ...hfConfig, torch_dtype: torchDtype }, null, 2) + "\n",
  );
  return written;
}
