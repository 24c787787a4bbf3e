/**
 * `ferry floe tables`: FloE's three tables on a MoE checkpoint and Brown text — compression
 * (D.1.1, with the A.7 formula check), quality (D.1.2: perplexity over sparsity × up bits, threshold
 * and top-k, achieved sparsity) and predictors (D.1.3: next-router reuse and the reuse channel
 * predictor, per layer) — printed, written as Arrow files, and drawn in `report.html`.
 * Calibration tokens come from Brown's train split, evaluation tokens from its validation split.
 * @module
 */
import { mkdir } from "../host/runtime.ts";
import { checkOut } from "./_out.ts";
import { tableToIPC } from "apache-arrow";
import { loadBrown } from "../data/brown.ts";
import { concatTokens, tokenStream } from "../data/pack.ts";
import { splitDocuments } from "../data/splits.ts";
import { compressionTable } from "../floe/compression_table.ts";
import { maskSignalTable } from "../floe/mask_study.ts";
import { floeCompress } from "../floe/compress.ts";
import { predictorTable } from "../floe/predictor_study.ts";
import { qualityTable } from "../floe/quality_table.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { Tokenizer } from "../io/tokenizer.ts";
import { MetricLog } from "../metrics/metric_log.ts";
import { loadModel } from "../models/load.ts";
import { barChart, lineChart } from "../plot/figure.ts";
import { writeReport } from "../plot/report.ts";
import {
  noPositionals,
  openDevice,
  parseBackend,
  parseBrownGenres,
  parseFlags,
  parseInteger,
  readModelDir,
  required,
  str,
  UsageError,
  writeErr,
} from "./_common.ts";

export const FLOE_TABLES_USAGE =
  `  floe tables          FloE's compression, quality and predictor tables (Arrow + report.html)
      --model DIR          HF checkpoint folder of a MoE model (with tokenizer.json)
      --data brown:GENRE   Brown genres (default all); calibration: train split, evaluation: validation
      --tokens N           evaluation tokens: the first 128 of successive validation documents
                           (default 1024; calibration uses N/2)
      --group-size G       HQQ group size (default 64)
      --out DIR            folder to write (created; compression, quality, predictors, mask_signal (CPU
                           backend) .arrow and report.html)`;

const FLAGS = {
  model: { type: "string" },
  data: { type: "string" },
  tokens: { type: "string" },
  "group-size": { type: "string" },
  out: { type: "string" },
  backend: { type: "string" },
} as const;

/** Runs `ferry floe tables`. */
export async function floeTablesCommand(args: string[]): Promise<number> {
  const cmd = "floe tables";
  const { values, positionals } = parseFlags(cmd, args, FLAGS);
  if (values.help) {
    console.log(`usage: deno task ferry floe tables --model DIR --out DIR [options]\n\n${FLOE_TABLES_USAGE}`);
    return 0;
  }
  noPositionals(cmd, positionals);
  const dir = required(cmd, values, "model", "DIR");
  const out = required(cmd, values, "out", "DIR");
  const data = str(values, "data") ?? "brown";
  const genres = parseBrownGenres(cmd, data);
  if (!genres) throw new UsageError(`${cmd}: --data must be brown or brown:GENRE[,GENRE]: received ${data}`);
  const tokens = parseInteger(cmd, "tokens", str(values, "tokens") ?? "1024", 64);
  const groupSize = parseInteger(cmd, "group-size", str(values, "group-size") ?? "64", 1);
  const backend = parseBackend(cmd, values);
  await checkOut(cmd, out, "folder", [{ flag: "--model", path: dir }]);
  const { config } = await readModelDir(cmd, dir);
  if (config.family !== "moe") {
    throw new UsageError(
      `${cmd}: --model ${dir} is a dense ${config.modelType} model; FloE needs a MoE model`,
    );
  }
  if (config.hidden % groupSize !== 0) {
    throw new UsageError(`${cmd}: --group-size ${groupSize} must divide the hidden size ${config.hidden}`);
  }
  const tokenizer = await Tokenizer.fromDir(dir);
  const split = splitDocuments(await loadBrown({ genres }));
  // Evaluation: the first `block` tokens of successive validation documents, `tokens` in all: documents
  // are the units of the quality table's bootstrap intervals; the other studies read them as one stream.
  const block = Math.min(128, config.maxPositionEmbeddings);
  const evalDocs: Int32Array[] = [];
  for (let i = 0, n = 0; i < split.validation.length && n < tokens; i++) {
    const d = tokenStream([split.validation[i]], tokenizer, {
      addEos: true,
      maxTokens: Math.min(block, tokens - n),
    });
    if (d.length >= 2) evalDocs.push(d);
    n += d.length;
  }
  const evaluation = concatTokens(evalDocs);
  const cal = tokenStream(split.train, tokenizer, { addEos: true, maxTokens: tokens / 2 }).subarray(
    0,
    tokens / 2,
  );
  const calibration = Array.from(
    { length: Math.ceil(cal.length / block) },
    (_, i) => cal.subarray(i * block, (i + 1) * block),
  );
  const evalBlocks = Array.from(
    { length: Math.ceil(evaluation.length / block) },
    (_, i) => evaluation.subarray(i * block, (i + 1) * block),
  );
  await mkdir(out, { recursive: true });

  const device = await openDevice(backend);
  try {
    const load = () => loadModel(dir, { device });
    const runId = new MetricLog().runId;
    const compression = await compressionTable(load, { sparsity: 0.9, upBits: 2, groupSize, runId });
    console.log("Compression (per expert; s = 0.9, up INT2, A.7 formula beside the measured ratio):");
    console.log(compression.format());
    const quality = await qualityTable(load, {
      calibration,
      evaluation: evalDocs,
      blockSize: block,
      groupSize,
      runId,
      onRow: (r) =>
        writeErr(
          `quality: ${r.mode} up ${r.up_bits} s ${r.sparsity}: ppl ${Number(r.perplexity).toFixed(2)} ` +
            `(change ${Number(r.delta_pct).toFixed(2)}%, 95% CI ${Number(r.delta_lo_pct).toFixed(2)}% to ` +
            `${Number(r.delta_hi_pct).toFixed(2)}%)\n`,
        ),
    });
    console.log(
      `Quality (perplexity on ${evaluation.length} validation tokens: the first ${block} of ${evalDocs.length} ` +
        `documents, 95% bootstrap intervals over documents; ${calibration.length} calibration blocks):`,
    );
    console.log(quality.format({ maxRows: 100 }));
    let masks: MetricLog | undefined;
    if (device.kind === "cpu") {
      using dense = await load();
      masks = await maskSignalTable(dense, { evaluation, blockSize: block, runId });
      console.log("Mask signal (A.2; top-k channels by each signal, exact weights):");
      console.log(masks.format());
    } else {
      writeErr("floe tables: the mask-signal study runs on the CPU backend only (--backend cpu); skipped\n");
    }
    const predictors = new MetricLog({ runId });
    for (const s of [0.8, 0.9]) {
      using model = await floeCompress(await load(), { upBits: 2, groupSize, sparsity: s, mode: "topk" });
      const table = await predictorTable(model, { train: calibration, evaluation: evalBlocks, runId });
      for (const row of table.toJSON()) {
        predictors.log({ ...row, run_id: undefined, mode: "topk", sparsity: s });
      }
    }
    console.log(
      "Predictors (reuse, learned linear and MLP trained on the calibration traces; reuse channel predictor):",
    );
    console.log(predictors.format());
    const tables: [string, MetricLog][] = [["compression", compression], ["quality", quality], [
      "predictors",
      predictors,
    ]];
    if (masks) tables.push(["mask_signal", masks]);
    for (const [name, log] of tables) {
      await writeFileAtomic(`${out}/${name}.arrow`, tableToIPC(log.table(), "file"));
    }
    const rows = quality.toJSON().filter((r) => r.mode !== "dense").map((r) => ({
      ...r,
      series: `${r.mode} up ${r.up_bits}`,
    }));
    await writeReport(`${out}/report.html`, `FloE on ${dir}`, [
      { heading: "Compression (D.1.1)", table: compression },
      { heading: "Quality (D.1.2)", table: quality },
      {
        figure: lineChart(rows, {
          x: "sparsity",
          y: "delta_pct",
          groupBy: "series",
          title: "Perplexity change vs dense (%)",
          xTitle: "target sparsity",
        }),
      },
      ...(masks ? [{ heading: "Mask signal (A.2)", table: masks }] : []),
      { heading: "Predictors (D.1.3)", table: predictors },
      {
        figure: barChart(predictors.toJSON(), {
          x: "layer",
          y: ["expert_topk", "channel_recall"],
          groupBy: "sparsity",
        }),
      },
    ]);
    console.log(`wrote ${out}/${tables.map(([n]) => `${n}.arrow`).join(", ")}, report.html`);
  } finally {
    device.destroy();
  }
  return 0;
}
