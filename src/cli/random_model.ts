/**
 * `ferry random-model`: a Hugging Face folder of seeded random weights (Llama or Mixtral layout),
 * sharded past `--max-shard-bytes` (default 2 GiB), for systems measurements only: a model big
 * enough to be transfer-bound without downloading one. The reference systems model is
 * Mixtral-8x7B at a quarter of its width and full depth (about 5.6 GB of f16 experts):
 *
 * ```sh
 * deno task ferry random-model --family mixtral --hidden 1024 --intermediate 3584 --layers 32 \
 *   --experts 8 --top-k 2 --heads 16 --kv-heads 4 --vocab 4096 --dtype f16 --seed 0 --out runs/mixtral-q
 * ```
 *
 * Weights are made one shard at a time (memory holds one shard), every file is written atomically,
 * and `config.json` goes last, so an interrupted run leaves no folder that loads.
 * @module
 */
import { isNotFound, readDir } from "../host/runtime.ts";
import { formatBytes } from "../device/ledger.ts";
import { parseModelConfig } from "../models/config.ts";
import { checkpointTensors } from "../models/weights.ts";
import { writeRandomCheckpoint } from "../models/random.ts";
import {
  noPositionals,
  parseChoice,
  parseFlags,
  parseInteger,
  required,
  str,
  UsageError,
} from "./_common.ts";
import { checkOut } from "./_out.ts";

export const RANDOM_MODEL_USAGE =
  `  random-model         write an HF folder of seeded random weights (systems measurements only)
      --family F           llama | mixtral
      --hidden C           hidden size
      --intermediate F     SwiGLU width (of each expert for mixtral)
      --layers L           decoder layers
      --experts E          experts per layer (mixtral only)
      --top-k K            experts per token (mixtral only)
      --heads H            query heads (C must divide by H; C/H even for RoPE)
      --kv-heads Hkv       key/value heads (H must divide by Hkv; default H)
      --vocab V            vocabulary size
      --dtype D            f16 | bf16 | f32 (default f16)
      --seed N             weight seed (default 0)
      --max-shard-bytes B  largest shard in bytes (default 2147483648 = 2 GiB)
      --out DIR            a new or empty folder (created when missing)`;

const FLAGS = {
  family: { type: "string" },
  hidden: { type: "string" },
  intermediate: { type: "string" },
  layers: { type: "string" },
  experts: { type: "string" },
  "top-k": { type: "string" },
  heads: { type: "string" },
  "kv-heads": { type: "string" },
  vocab: { type: "string" },
  dtype: { type: "string" },
  seed: { type: "string" },
  "max-shard-bytes": { type: "string" },
  out: { type: "string" },
} as const;

/** Default largest shard: 2 GiB. */
export const RANDOM_MODEL_SHARD_BYTES = 2 ** 31;

/** Whether `dir` is an existing folder with something in it. */
async function nonEmptyFolder(dir: string): Promise<boolean> {
  try {
    return (await readDir(dir)).length > 0;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/** The HF `config.json` fields of a random model from the parsed flags. */
function hfConfigOf(
  cmd: string,
  values: Record<string, string | boolean | undefined>,
): Record<string, unknown> {
  const int = (name: string, min: number) => parseInteger(cmd, name, required(cmd, values, name, "N"), min);
  const family = parseChoice(cmd, "family", required(cmd, values, "family", "llama|mixtral"), [
    "llama",
    "mixtral",
  ]);
  const hidden = int("hidden", 2);
  const heads = int("heads", 1);
  const kvText = str(values, "kv-heads");
  const kvHeads = kvText === undefined ? heads : parseInteger(cmd, "kv-heads", kvText, 1);
  if (hidden % heads !== 0 || (hidden / heads) % 2 !== 0) {
    throw new UsageError(
      `${cmd}: --hidden ${hidden} must be a multiple of --heads ${heads} with an even head size (RoPE); ` +
        `for example --hidden ${heads * Math.max(2, 2 * Math.round(hidden / heads / 2))}`,
    );
  }
  if (heads % kvHeads !== 0) {
    throw new UsageError(`${cmd}: --heads ${heads} must be a multiple of --kv-heads ${kvHeads}`);
  }
  const base: Record<string, unknown> = {
    model_type: family,
    architectures: [family === "llama" ? "LlamaForCausalLM" : "MixtralForCausalLM"],
    vocab_size: int("vocab", 2),
    hidden_size: hidden,
    intermediate_size: int("intermediate", 1),
    num_hidden_layers: int("layers", 1),
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    tie_word_embeddings: false,
  };
  if (family === "llama") {
    for (const flag of ["experts", "top-k"]) {
      if (str(values, flag) !== undefined) {
        throw new UsageError(`${cmd}: --${flag} is for --family mixtral; a llama model has no experts`);
      }
    }
    return base;
  }
  const experts = int("experts", 1);
  const topK = int("top-k", 1);
  if (topK > experts) {
    throw new UsageError(`${cmd}: --top-k ${topK} must be at most --experts ${experts}`);
  }
  return { ...base, num_local_experts: experts, num_experts_per_tok: topK };
}

/** Runs `ferry random-model`. */
export async function randomModelCommand(args: string[]): Promise<number> {
  const cmd = "random-model";
  const { values, positionals } = parseFlags(cmd, args, FLAGS);
  if (values.help) {
    console.log(
      `usage: deno task ferry random-model --family llama|mixtral ... --out DIR\n\n${RANDOM_MODEL_USAGE}`,
    );
    return 0;
  }
  noPositionals(cmd, positionals);
  const hfConfig = hfConfigOf(cmd, values);
  const dtype = parseChoice(cmd, "dtype", str(values, "dtype") ?? "f16", ["f16", "bf16", "f32"]);
  const seed = parseInteger(cmd, "seed", str(values, "seed") ?? "0");
  const maxShardBytes = parseInteger(
    cmd,
    "max-shard-bytes",
    str(values, "max-shard-bytes") ?? String(RANDOM_MODEL_SHARD_BYTES),
    1,
  );
  const out = required(cmd, values, "out", "DIR");
  await checkOut(cmd, out, "folder");
  if (await nonEmptyFolder(out)) {
    throw new UsageError(
      `${cmd}: --out ${out} is not empty; pass a new or empty folder (nothing is overwritten)`,
    );
  }
  const config = parseModelConfig(hfConfig); // ConfigError on anything the model layer refuses
  const bytesPer = dtype === "f32" ? 4 : 2;
  let expertBytes = 0;
  for (const t of checkpointTensors(config)) {
    if (t.expert !== undefined) expertBytes += t.shape.reduce((a, b) => a * b, 1) * bytesPer;
  }
  const { files, totalSize } = await writeRandomCheckpoint(out, hfConfig, { seed, dtype, maxShardBytes });
  console.log(
    `wrote ${out}: ${hfConfig.model_type} ${dtype}, ${formatBytes(totalSize)} in ${files.length} file(s)` +
      (expertBytes > 0 ? `, experts ${formatBytes(expertBytes)}` : ""),
  );
  return 0;
}
