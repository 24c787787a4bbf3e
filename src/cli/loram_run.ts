/**
 * `ferry loram run`: LoRAM end to end on a dense checkpoint and one Brown genre (`loramRun`):
 * `OUT/plan.json`, `OUT/pruned/`, `OUT/pruned-adapter/`, `OUT/adapter/`, `OUT/merged/`,
 * `OUT/eval.json` and `OUT/training_log.arrow`. Rerunning the same command resumes a killed run.
 * @module
 */
import { isTerminal } from "../host/runtime.ts";
import { checkOut } from "./_out.ts";
import { BROWN_GENRES, type BrownGenre } from "../data/brown.ts";
import { Tokenizer } from "../io/tokenizer.ts";
import { brownLoramData } from "../loram/data.ts";
import { loramParamCounts } from "../loram/param_count.ts";
import type { DomainPpl } from "../loram/eval.ts";
import { type LoramEval, loramRun } from "../loram/pipeline.ts";
import { centralClaim } from "../loram/tables.ts";
import type { LoramRunOptions } from "../loram/run_config.ts";
import {
  noPositionals,
  openDevice,
  parseBackend,
  parseFlags,
  parseInteger,
  parseNumber,
  readModelDir,
  required,
  str,
  UsageError,
  writeErr,
} from "./_common.ts";
import { parseLayerRange, parseMethod, parseRatio } from "./loram_args.ts";

export const LORAM_RUN_USAGE =
  `  loram run            LoRAM: prune, (align), train LoRA on the pruned model, recover, merge, evaluate
      --model DIR          dense HF checkpoint folder (llama, mistral, qwen2) with tokenizer.json
      --method M           rand | stru | semi | unst
      --ratio P            pruning ratio in (0, 1) (semi: 0.5)
      --genre G            in-domain Brown genre (training data); out-of-domain: the other genres
                           and the State of the Union addresses (validation splits)
      --steps N            LoRA training steps
      --out OUT            output folder (plan.json, pruned/, pruned-adapter/, adapter/, merged/, eval.json)
      --align-steps N      continual pre-training of the pruned model first, LM head frozen (default 0)
      --recover R          zeroA (default) | normA
      --nf4                QLoRAM: the pruned model's projections in NF4 + double quant while LoRA trains
      --layers START:END   pruned decoder layers (default [4, L-2))
      --criterion C        semi/unst scores: wanda (default) | magnitude
      --plan FILE          use this plan.json (rand/stru) instead of building one
      --eval-docs N        held-out documents per domain, evenly spaced (default 16)
      --eval-tokens N      tokens scored per held-out document (default 512)
      --lr X / --align-lr X, --batch N, --block T, --seed N, --backend B`;

const FLAGS = {
  model: { type: "string" },
  method: { type: "string" },
  ratio: { type: "string" },
  genre: { type: "string" },
  steps: { type: "string" },
  out: { type: "string" },
  "align-steps": { type: "string" },
  recover: { type: "string" },
  nf4: { type: "boolean" },
  layers: { type: "string" },
  criterion: { type: "string" },
  plan: { type: "string" },
  lr: { type: "string" },
  "align-lr": { type: "string" },
  batch: { type: "string" },
  block: { type: "string" },
  seed: { type: "string" },
  "eval-tokens": { type: "string" },
  "eval-docs": { type: "string" },
  backend: { type: "string" },
} as const;

/** Runs `ferry loram run`. */
export async function loramRunCommand(args: string[]): Promise<number> {
  const cmd = "loram run";
  const { values, positionals } = parseFlags(cmd, args, FLAGS);
  if (values.help) {
    console.log(
      `usage: deno task ferry loram run --model DIR --method M --ratio P --genre G --steps N --out OUT\n\n${LORAM_RUN_USAGE}`,
    );
    return 0;
  }
  noPositionals(cmd, positionals);
  const model = required(cmd, values, "model", "DIR");
  const method = parseMethod(cmd, required(cmd, values, "method", "rand|stru|semi|unst"));
  const ratio = parseRatio(cmd, required(cmd, values, "ratio", "P"));
  const genre = required(cmd, values, "genre", "G");
  if (!(BROWN_GENRES as readonly string[]).includes(genre)) {
    throw new UsageError(
      `${cmd}: --genre must be a Brown genre code, one of ${BROWN_GENRES.join(", ")}: received ${genre}`,
    );
  }
  const steps = parseInteger(cmd, "steps", required(cmd, values, "steps", "N"), 1);
  const out = required(cmd, values, "out", "OUT");
  const recover = str(values, "recover") ?? "zeroA";
  if (recover !== "zeroA" && recover !== "normA") {
    throw new UsageError(`${cmd}: --recover must be zeroA or normA: received ${recover}`);
  }
  const criterion = str(values, "criterion") ?? "wanda";
  if (criterion !== "wanda" && criterion !== "magnitude") {
    throw new UsageError(`${cmd}: --criterion must be wanda or magnitude: received ${criterion}`);
  }
  const int = (flag: string, def: number, min = 1) => {
    const v = str(values, flag);
    return v === undefined ? def : parseInteger(cmd, flag, v, min);
  };
  const num = (flag: string, def: number) => {
    const v = str(values, flag);
    return v === undefined ? def : parseNumber(cmd, flag, v, { min: 0, max: Infinity, minExclusive: true });
  };
  const layersText = str(values, "layers");
  const block = int("block", 128, 2);
  const options: LoramRunOptions = {
    model,
    out,
    method,
    ratio,
    ...(layersText === undefined ? {} : { layers: parseLayerRange(cmd, layersText) }),
    criterion,
    recover,
    nf4: values.nf4 === true,
    seed: int("seed", 0, 0),
    align: { steps: int("align-steps", 0, 0), lr: num("align-lr", 1e-4), batch: int("batch", 4) },
    train: {
      steps,
      lr: num("lr", 1e-3),
      batch: int("batch", 4),
      evalEvery: Math.max(1, Math.floor(steps / 10)),
    },
    evalTokens: int("eval-tokens", 512, 2),
    evalBlock: block,
  };
  // Refuse what the model does not allow before reading any data or writing anything.
  const { config } = await readModelDir(cmd, model);
  try {
    loramParamCounts(config, { method, ratio, layers: options.layers });
  } catch (err) {
    if (err instanceof RangeError || err instanceof TypeError) throw new UsageError(`${cmd}: ${err.message}`);
    throw err;
  }
  await checkOut(cmd, out, "folder", [{ flag: "--model", path: model }]);
  const device = await openDevice(parseBackend(cmd, values));
  const tokenizer = await Tokenizer.fromDir(model);
  writeErr(`loading Brown (${genre} in-domain)...\n`);
  const data = await brownLoramData(tokenizer, genre as BrownGenre, {
    block,
    evalTokens: options.evalTokens,
    evalDocs: int("eval-docs", 16),
  });
  const result = await loramRun(device, options, data, {
    progress: isTerminal("stderr"),
    planFile: str(values, "plan"),
    log: (line) => writeErr(`${line}\n`),
  });
  console.log(evalTable(result));
  return 0;
}

/**
 * The perplexity table of a run: in-domain, out-of-domain Brown (other genres) and SOTU, then the
 * parameters, the training figures and the central claim with its paired intervals over documents.
 */
export function evalTable(r: LoramEval): string {
  const rows: [string, DomainPpl | null][] = [
    ["large w/o FT (original)", r.ppl.original],
    ["small w/o FT (pruned)", r.ppl.pruned],
    ["small aligned", r.ppl.pruned_aligned],
    ["small + LoRA (infer pruned)", r.ppl.pruned_lora],
    [`LoRAM-${r.config.method} (infer original)`, r.ppl.loram],
  ];
  const cell = (v: number | null | undefined) =>
    (v === null || v === undefined ? "-" : v.toFixed(2)).padStart(10);
  const lines = rows.filter(([, p]) => p !== null).map(([k, p]) =>
    `${k.padEnd(32)} ${cell(p!.in_domain)} ${cell(p!.out_of_domain)} ${cell(p!.out_of_domain_sotu)}`
  );
  const p = r.params;
  return [
    `${"perplexity".padEnd(32)} ${"in-domain".padStart(10)} ${"out: Brown".padStart(10)} ${
      "out: SOTU".padStart(10)
    }`,
    ...lines,
    `parameters ${p.params} -> ${p.pruned_params} (LoRAM ${p.loram_reduction.toFixed(2)}x); ` +
    `weights in training: ledger ${p.measured_weight_bytes} bytes, formula ${p.formula_weight_bytes}`,
    `trainable ${r.train.trainable_params}; ${r.train.tokens} tokens at ${
      r.train.tokens_per_s.toFixed(0)
    } tokens/s`,
    centralClaim(r).text,
  ].join("\n");
}
