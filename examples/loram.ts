/**
 * LoRAM's quality table, ablation and training curves on the dense test bed (brown-dense-10m)
 * ([LoRAM](https://arxiv.org/abs/2502.13533) Table 1, Fig. 6; ALGORITHMS.md D.2): LoRA on the
 * original model (large + LoRA) and LoRAM-{Rand, Stru, Semi, Unst} and QLoRAM-{Rand, Stru}, all on
 * one Brown genre, plus LoRAM-Rand with alignment; in-domain = the genre, out-of-domain = the
 * other genres and the State of the Union addresses (validation splits). Every model is scored on
 * whole validation documents (the first `--eval-tokens` of each, at most `--eval-docs` per domain,
 * evenly spaced), so the tables carry 95% bootstrap intervals over documents and the central claim
 * holds only when the paired intervals exclude no change. Every run folder resumes when killed, and
 * a rerun of a finished table only rebuilds the tables.
 *
 * The default in-domain genre is `cj` (learned: science and scholarship): at split seed 0 it has the
 * most validation documents of any genre (10; `ca` and `cf` 7, `ce`, `cg`, `ck` 4, `cn` only 1, so an
 * interval over `cn`'s documents cannot exist) and the most training documents (63, with `cg`).
 * The other genres then give 35 validation documents (16 scored) and SOTU 23 (16 scored).
 *
 * ```sh
 * deno run -A examples/loram.ts --steps 50   # defaults: --genre cj --layers 1:L-1 --ratio 0.65
 * ```
 * Writes `OUT/<run>/…` (see `ferry loram run`), `OUT/table.json`, `OUT/quality.arrow`,
 * `OUT/summary.md` (one row per run: the README's LoRAM table) and `OUT/report.html` (tables and
 * eval-perplexity curves).
 * @module
 */
import { parseArgs } from "node:util";
import * as arrow from "apache-arrow";
import {
  ablationRows,
  type BrownGenre,
  brownLoramData,
  centralClaim,
  createDevice,
  type CurveRow,
  domainPerplexity,
  formatDomainPpl,
  type LargeLoraResult,
  loadModel,
  type LoramEval,
  type LoramMethod,
  loramRun,
  markdownTable,
  memoryRows,
  parseLoramRunConfig,
  parseModelConfig,
  qualityRows,
  readHfConfig,
  runLabel,
  runtime,
  summaryRows,
  Tokenizer,
  trainingCurveRows,
  trainingCurvesFigure,
  trainLora,
  writeFileAtomic,
  writeReport,
} from "../src/mod.ts";

const { values: args } = parseArgs({
  args: runtime.args(),
  options: {
    model: { type: "string", default: "examples/models/brown-dense-10m" },
    genre: { type: "string", default: "cj" },
    steps: { type: "string", default: "40" },
    "align-steps": { type: "string", default: "40" },
    ratio: { type: "string", default: "0.65" },
    layers: { type: "string" }, // START:END; default: every layer but the first and the last
    lr: { type: "string", default: "1e-3" },
    "eval-tokens": { type: "string", default: "256" },
    "eval-docs": { type: "string", default: "16" },
    runs: { type: "string", default: "large,rand,stru,semi,unst,qrand,qstru,rand+align" },
    out: { type: "string", default: "runs/loram-table" },
    backend: { type: "string", default: "cpu" },
  },
});
const steps = Number(args.steps);
const L = parseModelConfig(await readHfConfig(args.model!)).layers;
const [start, end] = args.layers ? args.layers.split(":").map(Number) : [1, L - 1];
const device = await createDevice({ backend: args.backend as "cpu" });
const tokenizer = await Tokenizer.fromDir(args.model!);
const data = await brownLoramData(tokenizer, args.genre as BrownGenre, {
  evalTokens: Number(args["eval-tokens"]),
  evalDocs: Number(args["eval-docs"]),
  evalBlocks: 8,
});
const common = {
  model: args.model!,
  layers: [start, end] as [number, number],
  train: {
    steps,
    lr: Number(args.lr),
    batch: 4,
    evalEvery: Math.max(1, Math.floor(steps / 8)),
    checkpointEvery: 10,
  },
  evalTokens: Number(args["eval-tokens"]),
};
const log = (line: string) => console.log(line);
const runs: LoramEval[] = [];
let large: LargeLoraResult | undefined;
const curves: CurveRow[] = [];

for (const name of args.runs!.split(",")) {
  if (name === "large") {
    large = await largeLora();
    curves.push(...await trainingCurveRows("large + LoRA", `${args.out}/large/training_log.arrow`));
    continue;
  }
  const nf4 = name.startsWith("q");
  const method = name.replace(/^q/, "").replace("+align", "") as LoramMethod;
  const out = `${args.out}/${name}`;
  console.log(`\n== ${name} ==`);
  const e = await loramRun(
    device,
    {
      ...common,
      out,
      method,
      ratio: method === "semi" ? 0.5 : Number(args.ratio),
      nf4,
      align: { steps: name.endsWith("+align") ? Number(args["align-steps"]) : 0, lr: 1e-4 },
    },
    data,
    { progress: false, log },
  );
  runs.push(e);
  curves.push(...await trainingCurveRows(runLabel(e), `${out}/training_log.arrow`));
}

/** LoRA on the original model with the same data and settings (the upper reference). */
async function largeLora(): Promise<LargeLoraResult> {
  const dir = `${args.out}/large`;
  try {
    return JSON.parse(await runtime.readTextFile(`${dir}/eval.json`));
  } catch { /* not run yet */ }
  console.log("\n== large + LoRA ==");
  // The LoRA, training and evaluation settings of the LoRAM runs (method and ratio are not read).
  const config = parseLoramRunConfig({ ...common, out: dir, method: "rand", ratio: 0.5 });
  using model = await loadModel(args.model!, { device });
  const { lora, stats, logPath } = await trainLora(model, config, data, `${dir}/runs/lora`, {
    progress: false,
  });
  using _lora = lora;
  const result: LargeLoraResult = { ppl: await domainPerplexity(model, data, config), train: stats };
  console.log(`large + LoRA: ${formatDomainPpl(result.ppl)}`);
  await runtime.copyFile(logPath, `${dir}/training_log.arrow`);
  await writeFileAtomic(`${dir}/eval.json`, JSON.stringify(result, null, 2));
  return result;
}

const quality = qualityRows(runs, large);
const ablation = ablationRows(runs);
console.log(
  "\nQuality (perplexity in-domain with its 95% interval over documents, out-of-domain on the other Brown" +
    " genres and on SOTU; reduction = original / pruned parameters, QLoRAM with NF4 metadata; in-domain" +
    " perplexity ratios vs the large model w/o FT and vs the small model + LoRA with paired 95% intervals;" +
    " peak ledger MiB while training):\n",
);
console.log(markdownTable(quality));
console.log(
  "\nAblation (alignment x inference on the pruned vs the recovered original; in / out / SOTU; the" +
    " recovered original's in-domain ratios with paired 95% intervals):\n",
);
console.log(markdownTable(ablation));
console.log("\nParameter memory while LoRA trained (ledger `weights` peak vs the formula, bytes):\n");
console.log(markdownTable(memoryRows(runs)));
const summary = markdownTable(summaryRows(quality, args.genre!));
console.log("\nSummary (in-domain: pruned → pruned + LoRA → LoRAM; paired ratios with 95% intervals):\n");
console.log(summary);
await writeFileAtomic(`${args.out}/summary.md`, summary + "\n");
console.log("\nCentral claim (holds only when both paired 95% intervals lie below 1):");
for (const e of runs) console.log(`  ${centralClaim(e).text}`);
await writeFileAtomic(
  `${args.out}/table.json`,
  JSON.stringify(
    { quality, ablation, memory: memoryRows(runs), claims: runs.map((e) => centralClaim(e)) },
    null,
    2,
  ) + "\n",
);
const qualityTable = arrow.tableFromJSON(quality as Record<string, unknown>[]);
await writeFileAtomic(`${args.out}/quality.arrow`, arrow.tableToIPC(qualityTable, "file"));
const report = await writeReport(`${args.out}/report.html`, `LoRAM on ${args.model} (genre ${args.genre})`, [
  {
    heading: "Quality",
    text: "Perplexity in-domain (the genre trained on) and out-of-domain (the other Brown genres; the " +
      "State of the Union addresses) on validation documents; 95% bootstrap intervals over documents, " +
      "paired for the ratios.",
    table: qualityTable,
  },
  { heading: "Ablation", table: arrow.tableFromJSON(ablation as Record<string, unknown>[]) },
  {
    heading: "Parameter memory while LoRA trained (ledger vs formula)",
    table: arrow.tableFromJSON(memoryRows(runs) as Record<string, unknown>[]),
  },
  {
    heading: "Training curves",
    figure: trainingCurvesFigure(curves),
  },
]);
console.log(`\nwrote ${report}`);
