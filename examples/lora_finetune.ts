/**
 * LoRA fine-tune of the embedded dense model on one Brown genre, the way PEFT does it: attach
 * r = 8 adapters to every linear but the head, train only them with Ferry's {@linkcode Trainer},
 * and show that the genre's validation perplexity drops while the other genres barely move.
 * The adapters are saved as a PEFT folder, loaded back onto a fresh copy of the base model (the
 * round trip must reproduce the perplexity), and merged into the weights (merged and unmerged
 * must agree).
 *
 * Run (a few minutes on two CPU cores):
 * ```sh
 * deno run -A examples/lora_finetune.ts --genre cn --steps 100
 * ```
 * Writes the adapter folder (`examples/adapters/brown-dense-lora-<genre>/`) with `eval.json` (the
 * figures and the command) and `training_log.arrow`.
 * @module
 */
import { parseArgs } from "node:util";
import {
  applyLora,
  BROWN_GENRE_NAMES,
  BROWN_GENRES,
  type BrownDocument,
  type BrownGenre,
  type CausalLM,
  causalLmTask,
  createDevice,
  loadBrown,
  loadLoraAdapter,
  loadModel,
  perplexity,
  runtime,
  saveLoraAdapter,
  splitDocuments,
  tokenizeAndPack,
  Tokenizer,
  Trainer,
  writeFileAtomic,
} from "../src/mod.ts";

const { values: args } = parseArgs({
  args: runtime.args(),
  options: {
    model: { type: "string", default: "examples/models/brown-dense" },
    genre: { type: "string", default: "cn" },
    backend: { type: "string", default: "cpu" },
    steps: { type: "string", default: "100" },
    r: { type: "string", default: "8" },
    alpha: { type: "string", default: "16" },
    lr: { type: "string", default: "1e-3" },
    batch: { type: "string", default: "4" },
    block: { type: "string", default: "128" },
    out: { type: "string" },
    "run-dir": { type: "string" },
  },
});
const genre = args.genre as BrownGenre;
if (!BROWN_GENRES.includes(genre)) {
  throw new TypeError(`--genre must be one of ${BROWN_GENRES.join(", ")}: received ${args.genre}`);
}
const out = args.out ?? `examples/adapters/brown-dense-lora-${genre}`;
const runDir = args["run-dir"] ?? `runs/lora-brown-dense-${genre}`;
const T = Number(args.block);
const steps = Number(args.steps);

const tokenizer = await Tokenizer.fromDir(args.model!);
const splits = splitDocuments(await loadBrown());
const ofGenre = (docs: BrownDocument[], g: string) => docs.filter((d) => d.genre === g);
const train = tokenizeAndPack(ofGenre(splits.train, genre), tokenizer, { blockSize: T + 1, stride: T });
console.log(
  `genre ${genre} (${BROWN_GENRE_NAMES[genre]}): ${train.blocks.length} train blocks of ${T + 1} ids`,
);

// Validation ids per genre (the fine-tuned one and every other one).
const validIds = new Map<string, Int32Array>();
for (const g of BROWN_GENRES) {
  const docs = ofGenre(splits.validation, g);
  if (docs.length) validIds.set(g, tokenizeAndPack(docs, tokenizer, { blockSize: 1, addEos: true }).data);
}
const pplOf = async (model: CausalLM, g: string) =>
  (await perplexity(model, validIds.get(g)!, { blockSize: T })).perplexity;
const others = [...validIds.keys()].filter((g) => g !== genre);
/** Validation ids per other genre that the side-effect check reads (keeps the run short). */
const OTHER_GENRE_TOKENS = 2048;
/**
 * Perplexity on the genre's whole validation split, and over the other genres (the first
 * `OTHER_GENRE_TOKENS` validation ids of each, pooled token-weighted).
 */
async function evaluate(model: CausalLM): Promise<{ genre: number; others: number }> {
  let nll = 0, n = 0;
  for (const g of others) {
    const ids = validIds.get(g)!.subarray(0, OTHER_GENRE_TOKENS);
    const r = await perplexity(model, ids, { blockSize: T });
    nll += Math.log(r.perplexity) * r.tokens;
    n += r.tokens;
  }
  return { genre: await pplOf(model, genre), others: Math.exp(nll / n) };
}

const device = await createDevice({ backend: args.backend as "auto" });
console.log(`device: ${device.info.backend} (${device.info.adapter})`);
using model = await loadModel(args.model!, { device });
const before = await evaluate(model);
console.log(`before: ${genre} ppl ${before.genre.toFixed(1)}, other genres ${before.others.toFixed(1)}`);

const lora = applyLora(model, {
  r: Number(args.r),
  loraAlpha: Number(args.alpha),
  loraDropout: 0.05,
  targetModules: "all-linear",
});
console.log(`${lora.summary().split("\n")[0]} (${lora.modules.length} modules)`);
const lr = Number(args.lr);
using trainer = new Trainer(causalLmTask(model, { lora }), {
  optimizer: { lr, weightDecay: 0 },
  schedule: { totalSteps: steps, warmupSteps: Math.floor(steps / 10), minLr: lr / 10 },
  batch: Number(args.batch),
  evalEvery: 50,
  checkpointEvery: 25,
  runDir,
});
const validBlocks = tokenizeAndPack(ofGenre(splits.validation, genre), tokenizer, {
  blockSize: T + 1,
  stride: T,
}).blocks;
const fit = await trainer.fit(train.blocks, { evalData: validBlocks.slice(0, 16) });
const after = await evaluate(model);
console.log(`after:  ${genre} ppl ${after.genre.toFixed(1)}, other genres ${after.others.toFixed(1)}`);

// PEFT folder round trip: a fresh base model plus the saved adapters gives the same perplexity.
await saveLoraAdapter(out, lora, { baseModelNameOrPath: args.model });
using fresh = await loadModel(args.model!, { device });
using reloaded = await loadLoraAdapter(out, fresh);
const reloadedPpl = await pplOf(fresh, genre);
console.log(
  `reloaded from ${out}: ${genre} ppl ${reloadedPpl.toFixed(3)} (trained ${after.genre.toFixed(3)})`,
);
await reloaded.merge();
const mergedPpl = await pplOf(fresh, genre);
console.log(`merged into the weights: ${genre} ppl ${mergedPpl.toFixed(3)}`);
const rel = (a: number, b: number) => Math.abs(a - b) / b;
if (rel(reloadedPpl, after.genre) > 1e-5 || rel(mergedPpl, after.genre) > 1e-4) {
  throw new Error("The PEFT round trip or the merge changed the perplexity: see the figures above");
}

await runtime.copyFile(`${fit.runDir}/metrics.arrow`, `${out}/training_log.arrow`);
await writeFileAtomic(
  `${out}/eval.json`,
  JSON.stringify(
    {
      base_model: args.model,
      genre,
      genre_name: BROWN_GENRE_NAMES[genre],
      command: `deno run -A examples/lora_finetune.ts ${runtime.args().join(" ")}`.trim(),
      device: device.info,
      lora: {
        r: Number(args.r),
        alpha: Number(args.alpha),
        targets: "all-linear",
        modules: lora.modules.length,
      },
      steps: fit.step,
      train_blocks: train.blocks.length,
      validation_perplexity: {
        genre_before: before.genre,
        genre_after: after.genre,
        other_genres_tokens_each: OTHER_GENRE_TOKENS,
        other_genres_before: before.others,
        other_genres_after: after.others,
        genre_reloaded_from_peft: reloadedPpl,
        genre_merged: mergedPpl,
      },
    },
    null,
    2,
  ) + "\n",
);
lora.dispose();
console.log(`wrote ${out}`);
