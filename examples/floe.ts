/**
 * FloE on the embedded MoE (brown-moe): per-expert compression, threshold calibration, perplexity
 * with sparse experts, a small quality sweep and the predictor study. Notebook twin:
 * `notebooks/03_floe.ipynb`. The full tables: `deno task ferry floe tables --model examples/models/brown-moe`.
 *
 * Run: `deno run -A examples/floe.ts` (about two minutes on the CPU backend).
 * @module
 */
import {
  calibrateThresholds,
  compressionTable,
  createDevice,
  evaluatePredictors,
  floeCompress,
  FloeExperts,
  FloeThresholds,
  hasWebGpu,
  lineChart,
  loadBrown,
  loadModel,
  measureSparsity,
  MetricLog,
  perplexity,
  qualityTable,
  runtime,
  type SparseMoE,
  splitDocuments,
  Tokenizer,
  tokenStream,
} from "../src/mod.ts";

const dir = new URL("./models/brown-moe/", import.meta.url).pathname;
const device = await createDevice({ backend: (await hasWebGpu()) ? "webgpu" : "cpu" });
const tokenizer = await Tokenizer.fromDir(dir);
const split = splitDocuments(await loadBrown({ genres: ["ca", "cn", "cp"] }));
const evaluation = tokenStream(split.validation, tokenizer, { addEos: true, maxTokens: 512 }).subarray(
  0,
  512,
);
const cal = tokenStream(split.train, tokenizer, { addEos: true, maxTokens: 256 }).subarray(0, 256);
const calibration = [cal.subarray(0, 128), cal.subarray(128)];
const load = () => loadModel(dir, { device });
console.log(`FloE on brown-moe (${device.info.backend}): ${evaluation.length} validation tokens`);

// 1. Compression per expert: HQQ INT2 up resident, 10% of the gate/down channels streamed.
const compression = await compressionTable(load, { sparsity: 0.9, upBits: 2, groupSize: 64 });
console.log(compression.format());

// 2. Calibrate thresholds at s = 0.8 with the INT2 up, save and load them, run in threshold mode.
const log = new MetricLog();
{
  using dense = await load();
  log.log({
    model: "dense",
    perplexity: (await perplexity(dense, evaluation, { blockSize: 128 })).perplexity,
  });
}
{
  using model = await floeCompress(await load(), { upBits: 2, groupSize: 64, sparsity: 0, mode: "topk" });
  const t = await calibrateThresholds(model, calibration, { sparsity: 0.8, rounds: 2 });
  const path = `${await runtime.makeTempDir("ferry-floe-")}/thresholds.safetensors`;
  await t.save(path);
  const loaded = await FloeThresholds.load(path, model);
  await runtime.remove(path);
  for (const l of model.moeLayers) {
    const ex = (model.layers[l].mlp as SparseMoE).experts;
    if (ex instanceof FloeExperts) {
      ex.configure({ mode: "threshold", sparsity: 0.8, thresholds: loaded.at(l).slice() });
    }
  }
  const kept = await measureSparsity(model, [evaluation.subarray(0, 128)]);
  const n = kept.reduce((a, r) => a + r.tokens, 0);
  log.log({
    model: "floe threshold s 0.8",
    perplexity: (await perplexity(model, evaluation, { blockSize: 128 })).perplexity,
    kept_fraction: kept.reduce((a, r) => a + (r.tokens ? r.kept_fraction * r.tokens : 0), 0) / n,
  });
}
console.log(log.format());

// 3. A small quality sweep: perplexity change vs sparsity, INT2 and exact up, both modes.
const quality = await qualityTable(load, {
  calibration,
  evaluation,
  blockSize: 128,
  sparsities: [0.5, 0.7, 0.9],
  upBits: [2, 16],
});
console.log(quality.format({ maxRows: 40 }));
const figure = lineChart(
  quality.toJSON().filter((r) => r.mode !== "dense").map((r) => ({
    ...r,
    series: `${r.mode} up ${r.up_bits}`,
  })),
  { x: "sparsity", y: "delta_pct", groupBy: "series", title: "brown-moe: perplexity change vs dense (%)" },
);
console.log(`figure: ${figure.data.length} series`);

// 4. Predictors: next-router reuse for the experts, previous-layer reuse for the channels.
{
  using model = await floeCompress(await load(), { upBits: 2, groupSize: 64, sparsity: 0.8, mode: "topk" });
  const rows = await evaluatePredictors(
    model,
    [0, 1, 2, 3].map((i) => evaluation.subarray(i * 128, (i + 1) * 128)),
  );
  console.table(rows);
}
device.destroy();
