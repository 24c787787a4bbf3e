/**
 * `ferry sweep`: the compression sweep of a checkpoint's weights (every expert of the MoE layers,
 * every projection of the dense ones) over {method, bits, group size, axis} quantizers, pruners and
 * SVD ranks, scored by weight and output error on real activations (Brown text through the model),
 * plus, with `--sensitivity`, FloE's perplexity study of quantizing gate, up or down alone.
 * Writes the per-weight table, the summary and the study as Arrow files under `--out/<run id>/`.
 * @module
 */
import { expertProjectionSensitivity } from "../compressors/analysis/sensitivity.ts";
import { compressionSweep, quantGrid, summarizeSweep } from "../compressors/analysis/sweep.ts";
import { modelSweepWeights } from "../compressors/analysis/model_weights.ts";
import { getPruner, listPruners, type MaskMethod } from "../compressors/prune/masks.ts";
import { listQuantizers } from "../compressors/quant/quantize.ts";
import { tableToIPC } from "apache-arrow";
import { writeFileAtomic } from "../io/atomic.ts";
import { loadModel } from "../models/load.ts";
import type { QuantBits } from "../tensor/quantized_tensor.ts";
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
import { calibrationIds, evaluationDocuments, parseBrownData } from "./_calibration.ts";
import { checkOut } from "./_out.ts";

export const SWEEP_USAGE =
  `  sweep                compression sweep of a checkpoint's weights (and FloE's sensitivity study)
      --model DIR          HF checkpoint folder with tokenizer.json
      --data brown:GENRE   calibration text (default brown, training split)
      --tokens N           calibration tokens (default 1024; the sensitivity study scores as many
                           tokens of whole validation documents)
      --layers 0,1         decoder layers (default all)
      --methods LIST       quantizers among rtn,hqq,nf4 (default all)
      --bits LIST          among 2,3,4,8 (default 2,3,4)
      --group-sizes LIST   default 64
      --axes LIST          among 0,1 (default 1)
      --prune LIST         pruners among magnitude,wanda,2:4 (default none)
      --sparsity S         for magnitude and wanda (default 0.5)
      --ranks LIST         truncated-SVD ranks (default none)
      --sensitivity        also quantize each expert projection alone and measure perplexity
      --out DIR            where the run folder goes (default runs; created if missing)
      --backend B          auto | webgpu | cpu (default auto)`;

const FLAGS = {
  model: { type: "string" },
  data: { type: "string" },
  tokens: { type: "string" },
  layers: { type: "string" },
  methods: { type: "string" },
  bits: { type: "string" },
  "group-sizes": { type: "string" },
  axes: { type: "string" },
  prune: { type: "string" },
  sparsity: { type: "string" },
  ranks: { type: "string" },
  sensitivity: { type: "boolean" },
  out: { type: "string" },
  backend: { type: "string" },
} as const;

/** Runs `ferry sweep`. */
export async function sweepCommand(args: string[]): Promise<number> {
  const cmd = "sweep";
  const { values, positionals } = parseFlags(cmd, args, FLAGS);
  if (values.help) {
    console.log(`usage: deno task ferry sweep --model DIR [options]\n\n${SWEEP_USAGE}`);
    return 0;
  }
  noPositionals(cmd, positionals);
  const dir = required(cmd, values, "model", "DIR");
  const list = (flag: string, fallback: string, allowed?: readonly string[]) => {
    const items = (str(values, flag) ?? fallback).split(",").map((s) => s.trim()).filter(Boolean);
    const bad = allowed && items.find((s) => !allowed.includes(s));
    if (bad) throw new UsageError(`${cmd}: --${flag}: ${bad} is not one of ${allowed!.join(", ")}`);
    return items;
  };
  const ints = (flag: string, fallback: string, min: number) =>
    list(flag, fallback).map((s) => parseInteger(cmd, flag, s, min));
  const methods = list("methods", "rtn,hqq,nf4", listQuantizers());
  const bits = list("bits", "2,3,4", ["2", "3", "4", "8"]).map(Number) as QuantBits[];
  const groupSizes = ints("group-sizes", "64", 1);
  const axes = list("axes", "1", ["0", "1"]).map(Number) as (0 | 1)[];
  const pruneMethods: MaskMethod[] = list("prune", "", listPruners());
  const sparsity = parseNumber(cmd, "sparsity", str(values, "sparsity") ?? "0.5", {
    min: 0,
    max: 1,
    maxExclusive: true,
  });
  const ranks = ints("ranks", "", 1);
  const tokens = parseInteger(cmd, "tokens", str(values, "tokens") ?? "1024", 16);
  const layersText = str(values, "layers");
  const genres = parseBrownData(cmd, str(values, "data") ?? "brown");
  const outDir = str(values, "out") ?? "runs";
  const backend = parseBackend(cmd, values);
  await checkOut(cmd, outDir, "folder");

  const { config } = await readModelDir(cmd, dir);
  const layers = layersText === undefined ? undefined : ints("layers", layersText, 0);
  const bad = layers?.find((l) => l >= config.layers);
  if (bad !== undefined) {
    throw new UsageError(`${cmd}: --layers: layer ${bad} is outside 0..${config.layers - 1}`);
  }
  const { ids, blockSize: block, sequences } = await calibrationIds(cmd, dir, config, genres, tokens);

  const device = await openDevice(backend);
  try {
    using model = await loadModel(dir, { device });
    const weights = await modelSweepWeights(model, sequences, { layers, maxTokens: 256 });
    writeErr(`sweep: ${weights.length} weights, calibration ${ids.length} tokens (${device.info.backend})\n`);
    const quantizers = quantGrid({ methods, bits, groupSizes, axes });
    const pruners = pruneMethods.map((method) => ({
      method,
      sparsity: getPruner(method).fixedSparsity ?? sparsity,
    }));
    const log = await compressionSweep(weights, { device, quantizers, pruners, ranks });
    const summary = summarizeSweep(log);
    console.log(summary.format({ maxRows: 200 }));
    const runDir = await log.save(outDir);
    await writeFileAtomic(`${runDir}/summary.arrow`, tableToIPC(summary.table(), "file"));
    if (values.sensitivity === true) {
      if (model.moeLayers.length === 0) throw new UsageError(`${cmd}: --sensitivity needs an MoE checkpoint`);
      const settings = quantGrid({ methods, bits, groupSizes: [groupSizes[0]], axes: [1] });
      // Evaluated on whole validation documents (never the calibration text), with bootstrap intervals.
      const docs = await evaluationDocuments(cmd, dir, config, genres, tokens);
      const study = await expertProjectionSensitivity(model, docs, settings, {
        blockSize: block,
        runId: log.runId,
        onRow: (r) =>
          writeErr(
            `sensitivity: ${r.projection} ${r.method} ${r.bits}-bit: ppl ${
              Number(r.perplexity).toFixed(2)
            } ` +
              `(95% CI ${Number(r.perplexity_lo).toFixed(2)}–${Number(r.perplexity_hi).toFixed(2)})\n`,
          ),
      });
      console.log(study.format({ maxRows: 200 }));
      await writeFileAtomic(`${runDir}/sensitivity.arrow`, tableToIPC(study.table(), "file"));
    }
    console.log(
      `wrote ${runDir}/metrics.arrow (per weight), summary.arrow${
        values.sensitivity ? ", sensitivity.arrow" : ""
      }`,
    );
  } finally {
    device.destroy();
  }
  return 0;
}
