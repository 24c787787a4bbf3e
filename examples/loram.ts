/**
 * LoRAM's quality table, ablation and training curves on the embedded dense model
 * ([LoRAM](https://arxiv.org/abs/2502.13533) Table 1, Fig. 6; ALGORITHMS.md D.2): LoRA on the
 * original model (large + LoRA) and LoRAM-{Rand, Stru, Semi, Unst} and QLoRAM-{Rand, Stru}, all on
 * one Brown genre, plus LoRAM-Rand with alignment; in-domain = the genre, out-of-domain = the
 * other genres. Every run folder resumes when killed.
 *
 * ```sh
 * deno run -A examples/loram.ts --genre cn --steps 40 --layers 1:7 --ratio 0.65
 * ```
 * Writes `OUT/<run>/…` (see `ferry loram run`), `OUT/table.json`, `OUT/quality.arrow` and
 * `OUT/report.html` (tables and eval-perplexity curves).
 * @module
 */
import { parseArgs } from "node:util";
import * as arrow from "apache-arrow";
import {
  ablationRows,
  applyLora,
  type BrownGenre,
  brownLoramData,
  causalLmTask,
  centralClaim,
  createDevice,
  type LargeLoraResult,
  lineChart,
  loadModel,
  type LoramEval,
  type LoramMethod,
  loramRun,
  markdownTable,
  MetricLog,
  perplexity,
  qualityRows,
  runLabel,
  Tokenizer,
  Trainer,
  writeFileAtomic,
  writeReport,
} from "../src/mod.ts";

const { values: args } = parseArgs({
  args: Deno.args,
  options: {
    model: { type: "string", default: "examples/models/brown-dense" },
    genre: { type: "string", default: "cn" },
    steps: { type: "string", default: "40" },
    "align-steps": { type: "string", default: "40" },
    ratio: { type: "string", default: "0.65" },
    layers: { type: "string", default: "1:7" },
    lr: { type: "string", default: "1e-3" },
    "eval-tokens": { type: "string", default: "2048" },
    runs: { type: "string", default: "large,rand,stru,semi,unst,qrand,qstru,rand+align" },
    out: { type: "string", default: "runs/loram-table" },
    backend: { type: "string", default: "cpu" },
  },
});
const steps = Number(args.steps);
const [start, end] = args.layers!.split(":").map(Number);
const device = await createDevice({ backend: args.backend as "cpu" });
const tokenizer = await Tokenizer.fromDir(args.model!);
const data = await brownLoramData(tokenizer, args.genre as BrownGenre, {
  evalTokens: Number(args["eval-tokens"]),
  evalBlocks: 8,
});
const train = {
  steps,
  lr: Number(args.lr),
  batch: 4,
  evalEvery: Math.max(1, Math.floor(steps / 8)),
  checkpointEvery: 10,
};
const log = (line: string) => console.log(line);
const runs: LoramEval[] = [];
let large: LargeLoraResult | undefined;
const curves: Record<string, unknown>[] = [];

for (const name of args.runs!.split(",")) {
  if (name === "large") {
    large = await largeLora();
    await curveRows("large + LoRA", `${args.out}/large/training_log.arrow`);
    continue;
  }
  const nf4 = name.startsWith("q");
  const method = name.replace(/^q/, "").replace("+align", "") as LoramMethod;
  const out = `${args.out}/${name}`;
  console.log(`\n== ${name} ==`);
  const e = await loramRun(
    device,
    {
      model: args.model!,
      out,
      method,
      ratio: method === "semi" ? 0.5 : Number(args.ratio),
      layers: [start, end],
      nf4,
      align: { steps: name.endsWith("+align") ? Number(args["align-steps"]) : 0, lr: 1e-4 },
      train,
      evalTokens: Number(args["eval-tokens"]),
    },
    data,
    { progress: false, log },
  );
  runs.push(e);
  await curveRows(runLabel(e), `${out}/training_log.arrow`);
}

/** LoRA on the original model with the same data and settings (the upper reference). */
async function largeLora(): Promise<LargeLoraResult> {
  const dir = `${args.out}/large`;
  try {
    return JSON.parse(await Deno.readTextFile(`${dir}/eval.json`));
  } catch { /* not run yet */ }
  console.log("\n== large + LoRA ==");
  using model = await loadModel(args.model!, { device });
  using lora = applyLora(model, {
    r: 8,
    loraAlpha: 16,
    loraDropout: 0.05,
    targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
  });
  using trainer = new Trainer(causalLmTask(model, { lora }), {
    optimizer: { lr: train.lr, weightDecay: 0 },
    schedule: { totalSteps: steps, warmupSteps: Math.floor(steps / 10), minLr: train.lr / 10 },
    batch: train.batch,
    evalEvery: train.evalEvery,
    checkpointEvery: train.checkpointEvery,
    runDir: `${dir}/runs/lora`,
    progress: false,
  });
  device.ledger.resetPeak();
  let tokens = 0, seconds = 0;
  const fit = await trainer.fit(data.train, {
    evalData: data.evalBlocks,
    onStep: (r) => {
      tokens += r.tokens;
      seconds += r.tokens / r.tokensPerS;
    },
  });
  const peak: Record<string, number> = { total: device.ledger.peak() };
  for (const u of device.ledger.usage()) peak[u.category] = u.peak;
  const n = Number(args["eval-tokens"]);
  const result: LargeLoraResult = {
    ppl: {
      in_domain: (await perplexity(model, data.evalIn.subarray(0, n), { blockSize: 128 })).perplexity,
      out_of_domain: (await perplexity(model, data.evalOut.subarray(0, n), { blockSize: 128 })).perplexity,
    },
    train: {
      trainable_params: lora.numTrainableParameters(),
      steps: fit.step,
      tokens,
      tokens_per_s: tokens / seconds,
      final_loss: fit.loss,
      peak_bytes: peak,
    },
  };
  await writeFileAtomic(`${dir}/eval.json`, JSON.stringify(result, null, 2));
  await Deno.copyFile(`${fit.runDir}/metrics.arrow`, `${dir}/training_log.arrow`);
  return result;
}

async function curveRows(label: string, path: string): Promise<void> {
  const { table } = await MetricLog.load(path);
  for (const r of table.toArray()) {
    const row = r.toJSON() as Record<string, unknown>;
    if (row.split === "eval") {
      curves.push({ step: Number(row.step), eval_ppl: Number(row.eval_ppl), run: label });
    }
  }
}

const quality = qualityRows(runs, large);
const ablation = ablationRows(runs);
console.log("\nQuality (perplexity; reduction = original / pruned parameters, QLoRAM with NF4 metadata):\n");
console.log(markdownTable(quality));
console.log("\nAblation (in-domain / out-of-domain perplexity):\n");
console.log(markdownTable(ablation));
console.log("\nCentral claim:");
for (const e of runs) console.log(`  ${centralClaim(e).text}`);
await writeFileAtomic(
  `${args.out}/table.json`,
  JSON.stringify({ quality, ablation, claims: runs.map((e) => centralClaim(e)) }, null, 2),
);
const qualityTable = arrow.tableFromJSON(quality as Record<string, unknown>[]);
await writeFileAtomic(`${args.out}/quality.arrow`, arrow.tableToIPC(qualityTable, "file"));
const report = await writeReport(`${args.out}/report.html`, `LoRAM on ${args.model} (genre ${args.genre})`, [
  { heading: "Quality", table: qualityTable },
  { heading: "Ablation", table: arrow.tableFromJSON(ablation as Record<string, unknown>[]) },
  {
    heading: "Training curves",
    figure: lineChart(curves, {
      x: "step",
      y: "eval_ppl",
      groupBy: "run",
      title: "in-domain eval perplexity",
    }),
  },
]);
console.log(`\nwrote ${report}`);
