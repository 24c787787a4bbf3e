/**
 * Trains Ferry's embedded demo models from scratch on the Brown corpus with Ferry's own
 * {@linkcode Trainer}, then writes each as a Hugging Face folder under `examples/models/`:
 *
 * - `brown-moe`: Mixtral layout (SwiGLU experts, 8 experts, top-2, load-balancing loss): FloE's
 *   test bed.
 * - `brown-dense`: Llama layout with grouped-query attention: LoRAM's test bed.
 *
 * Both share the byte-level BPE tokenizer in `examples/models/tokenizer/` (4096 ids, trained on
 * Brown's train split by `examples/train_tokenizer.ts`). Training reads the train split only;
 * validation perplexity per genre is measured at the end and written to `eval.json` next to the
 * weights, with the unigram baseline it must beat.
 *
 * The larger test beds (`--model dense-10m`, `moe-28m`: 12 and 8 layers, so LoRAM's layer range and
 * FloE's channel sparsity have room; `dense-10m` has two KV heads per layer, so structured pruning at
 * p = 0.5 drops a whole KV group) train on Brown plus the State of the Union addresses
 * (`--data brown+sotu`, train splits of both) for `--epochs` passes; their validation perplexity is
 * reported per Brown genre and for SOTU. They are saved in bf16 (`--dtype`, default bf16 for them and
 * f32 for the small ones), and `eval.json` scores the saved weights, reloaded. Rerunning a finished
 * run resumes at its last step, so it only saves and evaluates again.
 *
 * Reproduce (one model per command; the run folder keeps checkpoints, so a killed run resumes):
 * ```sh
 * deno run -A examples/pretrain.ts --model dense --backend webgpu --steps 1500
 * deno run -A examples/pretrain.ts --model moe --backend webgpu --steps 1500
 * ```
 * @module
 */
import { parseArgs } from "node:util";
import {
  BROWN_GENRE_NAMES,
  BROWN_GENRES,
  type BrownDocument,
  createDevice,
  loadBrown,
  loadModel,
  loadSotu,
  MetricLog,
  perplexity,
  runtime,
  saveModel,
  splitDocuments,
  type TextDocument,
  tokenizeAndPack,
  Tokenizer,
  writeFileAtomic,
  writeRandomCheckpoint,
} from "../src/mod.ts";
import { causalLmTask } from "../src/lora/causal_lm_task.ts";
import { Trainer } from "../src/lora/trainer.ts";

const TOKENIZER_DIR = "examples/models/tokenizer";

/** The two architectures (HF `config.json` fields). Vocabulary: the shared tokenizer's. */
const ARCHS: Record<string, Record<string, unknown>> = {
  dense: {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: 192,
    intermediate_size: 512,
    num_hidden_layers: 8,
    num_attention_heads: 6,
    num_key_value_heads: 2,
  },
  // 12 layers and GQA 8:2, so LoRAM's structured pruning of [4, 10) at p = 0.5 drops whole KV groups.
  "dense-10m": {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: 256,
    intermediate_size: 768,
    num_hidden_layers: 12,
    num_attention_heads: 8,
    num_key_value_heads: 2,
  },
  "moe-28m": {
    architectures: ["MixtralForCausalLM"],
    model_type: "mixtral",
    hidden_size: 256,
    intermediate_size: 512,
    num_hidden_layers: 8,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    num_local_experts: 8,
    num_experts_per_tok: 2,
    router_aux_loss_coef: 0.01,
    output_router_logits: false,
  },
  moe: {
    architectures: ["MixtralForCausalLM"],
    model_type: "mixtral",
    hidden_size: 256,
    intermediate_size: 256,
    num_hidden_layers: 4,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    num_local_experts: 8,
    num_experts_per_tok: 2,
    router_aux_loss_coef: 0.01,
    output_router_logits: false,
  },
};

const { values: args } = parseArgs({
  args: runtime.args(),
  options: {
    model: { type: "string", default: "dense" },
    backend: { type: "string", default: "auto" },
    steps: { type: "string", default: "1500" },
    epochs: { type: "string" },
    data: { type: "string", default: "brown" },
    block: { type: "string", default: "128" },
    batch: { type: "string", default: "4" },
    lr: { type: "string", default: "2e-3" },
    out: { type: "string" },
    "run-dir": { type: "string" },
    seed: { type: "string", default: "0" },
    dtype: { type: "string" },
  },
});
const arch = ARCHS[args.model!];
if (!arch) {
  throw new TypeError(`--model must be one of ${Object.keys(ARCHS).join(", ")}: received ${args.model}`);
}
const name = `brown-${args.model}`;
const out = args.out ?? `examples/models/${name}`;
const runDir = args["run-dir"] ?? `runs/pretrain-${name}`;
const T = Number(args.block);
if (args.data !== "brown" && args.data !== "brown+sotu") {
  throw new TypeError(`--data must be brown or brown+sotu: received ${args.data}`);
}
const withSotu = args.data === "brown+sotu";
// The saved weights' dtype: bf16 for the larger test beds (committed at half the bytes), f32 for the small ones.
const saveDtype = args.dtype ?? (args.model!.includes("-") ? "bf16" : "f32");
if (saveDtype !== "f32" && saveDtype !== "bf16") {
  throw new TypeError(`--dtype must be f32 or bf16: received ${args.dtype}`);
}

const tokenizer = await Tokenizer.fromDir(TOKENIZER_DIR);
const hf = {
  ...arch,
  vocab_size: 4096,
  bos_token_id: tokenizer.eosTokenId,
  eos_token_id: tokenizer.eosTokenId,
  max_position_embeddings: 1024,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: true,
  hidden_act: "silu",
  initializer_range: 0.02,
};

const splits = splitDocuments(await loadBrown());
const sotu = withSotu ? splitDocuments(await loadSotu()) : undefined;
const trainDocs: TextDocument[] = [...splits.train, ...(sotu?.train ?? [])];
const train = tokenizeAndPack(trainDocs, tokenizer, { blockSize: T + 1, stride: T });
const valid = tokenizeAndPack(splits.validation, tokenizer, { blockSize: T + 1, stride: T });
const batch = Number(args.batch);
const steps = args.epochs === undefined
  ? Number(args.steps)
  : Math.ceil((Number(args.epochs) * train.blocks.length) / batch);
console.log(
  `${name}: ${train.blocks.length} train blocks of ${T + 1} ids (${train.nTokens} tokens, ${args.data}), ` +
    `${valid.blocks.length} validation blocks; ${steps} steps of ${batch} blocks ` +
    `(${((steps * batch) / train.blocks.length).toFixed(2)} epochs)`,
);

const device = await createDevice({ backend: args.backend as "auto" });
console.log(`device: ${device.info.backend} (${device.info.adapter})`);
const init = await runtime.makeTempDir("ferry-pretrain-");
await writeRandomCheckpoint(init, hf, { seed: Number(args.seed), std: 0.02 });
using model = await loadModel(init, { device });
await runtime.remove(init, { recursive: true });
const counts = model.numParameters();
console.log(
  `parameters: ${(counts.total / 1e6).toFixed(2)}M total, ${(counts.active / 1e6).toFixed(2)}M active`,
);

const lr = Number(args.lr);
using trainer = new Trainer(causalLmTask(model), {
  optimizer: { lr, weightDecay: 0.1, betas: [0.9, 0.95] },
  schedule: { totalSteps: steps, warmupSteps: Math.min(100, Math.floor(steps / 10)), minLr: lr / 10 },
  batch,
  accumulation: 1,
  maxGradNorm: 1,
  evalEvery: 250,
  checkpointEvery: 50,
  keepCheckpoints: 2,
  runDir,
  seed: Number(args.seed),
});
const evalData = valid.blocks.slice(0, 16);
const fit = await trainer.fit(train.blocks, { evalData });
// A run resumed at its last step trains nothing: its final losses come from the run's metrics.
let { loss: trainLoss, evalLoss } = fit;
if (!Number.isFinite(trainLoss)) {
  const rows = (await MetricLog.load(`${fit.runDir}/metrics.arrow`)).table.toArray().map((r) => r.toJSON());
  trainLoss = rows.findLast((r) => r.split === "train")?.loss ?? NaN;
  evalLoss = rows.findLast((r) => r.split === "eval")?.eval_loss ?? undefined;
}
console.log(
  `trained ${fit.step} steps: train loss ${trainLoss.toFixed(3)}, eval loss ${evalLoss?.toFixed(3)}`,
);

// The weights as saved (bf16 rounds them), then validation perplexity of the saved model per genre, next to
// the unigram baseline it must beat.
await saveModel(model, out, { dtype: saveDtype });
for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
  await runtime.copyFile(`${TOKENIZER_DIR}/${f}`, `${out}/${f}`);
}
using saved = await loadModel(out, { device });
const unigram = JSON.parse(await runtime.readTextFile(`${TOKENIZER_DIR}/unigram_baseline.json`));
const perGenre: Record<string, unknown>[] = [];
const byGenre = new Map<string, BrownDocument[]>();
for (const d of splits.validation) byGenre.set(d.genre, [...byGenre.get(d.genre) ?? [], d]);
for (const genre of [...BROWN_GENRES, "all"]) {
  const docs = genre === "all" ? splits.validation : byGenre.get(genre);
  if (!docs?.length) continue;
  const ids = tokenizeAndPack(docs, tokenizer, { blockSize: 1, addEos: true }).data;
  const r = await perplexity(saved, ids, { blockSize: T });
  const base = genre === "all" ? unigram.validation.overall : unigram.validation.genres[genre];
  perGenre.push({
    genre,
    name: genre === "all" ? "all genres" : BROWN_GENRE_NAMES[genre as keyof typeof BROWN_GENRE_NAMES],
    tokens: r.tokens,
    perplexity: r.perplexity,
    unigram_perplexity: base?.perplexity ?? null,
  });
  console.log(`${genre.padEnd(4)} ppl ${r.perplexity.toFixed(1).padStart(8)}  (${r.tokens} tokens)`);
}

if (sotu) {
  const ids = tokenizeAndPack(sotu.validation, tokenizer, { blockSize: 1, addEos: true }).data;
  const r = await perplexity(saved, ids, { blockSize: T });
  perGenre.push({ genre: "sotu", name: "State of the Union", tokens: r.tokens, perplexity: r.perplexity });
  console.log(`sotu ppl ${r.perplexity.toFixed(1).padStart(8)}  (${r.tokens} tokens)`);
}

await runtime.copyFile(`${fit.runDir}/metrics.arrow`, `${out}/training_log.arrow`);
await writeFileAtomic(
  `${out}/eval.json`,
  JSON.stringify(
    {
      model: name,
      command: `deno run -A examples/pretrain.ts ${runtime.args().join(" ")}`.trim(),
      device: device.info,
      parameters: counts,
      steps: fit.step,
      dtype: saveDtype,
      block: T,
      batch,
      data: args.data,
      train_tokens_seen: fit.step * batch * T,
      train_loss: trainLoss,
      eval_loss: evalLoss,
      validation: perGenre,
    },
    null,
    2,
  ) + "\n",
);
console.log(`wrote ${out}`);
