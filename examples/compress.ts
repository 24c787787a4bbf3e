/**
 * Compressors on the embedded test beds (brown-dense-10m, brown-moe-28m), end to end:
 *
 * 1. one expert's up projection (the MoE's layer 0) through RTN, HQQ and NF4 at 2–4 bits: stored
 *    bits per parameter and errors, then the 2-bit HQQ weight with a rank-16 SVD compensation;
 * 2. LoRAM's structured pruning of the dense model at ratio 0.5 on layers [4, L−2) and [1, L−1) with
 *    a random, an L2 and an activation-aware plan: parameters and Brown perplexity of each physically
 *    smaller model, and the plan as LLM-Pruner-style JSON;
 * 3. unstructured pruning (magnitude, Wanda, 2:4) of every decoder linear of the dense model;
 * 4. FloE's sensitivity study on the MoE: HQQ INT2 of the gate, the up or the down projection of every
 *    expert of every layer, the others exact (FloE keeps up at 2 bits because it costs least).
 *
 * Perplexities are scored on whole Brown validation documents (never the calibration text) with
 * paired 95% bootstrap intervals over documents. Every figure goes into one Arrow table in
 * `runs/<id>/metrics.arrow`.
 * Run: `deno run -A examples/compress.ts` (`--dense DIR --moe DIR` for other models; the README's
 * figures score the whole validation split: `--genres all --eval-tokens all --backend cpu`). Twin
 * notebook: notebooks/02_compressors.ipynb (genres ca, cn, cp, the first 256 tokens of each document).
 * @module
 */
import { parseArgs } from "node:util";
import {
  activationPlan,
  applyPlan,
  bitsPerParam,
  type BrownGenre,
  collectInputNorms,
  compensateQuantization,
  createDevice,
  dequantizeRef,
  disposeQuantized,
  documentPerplexity,
  type DocumentScore,
  expertProjectionSensitivity,
  hasWebGpu,
  l2Plan,
  loadBrown,
  loadModel,
  MetricLog,
  modelSweepWeights,
  outputError,
  pairedBootstrap,
  planDimsOf,
  pruneLinears,
  quantize,
  quantizedToHost,
  randomPlan,
  relativeError,
  runtime,
  savePlan,
  splitDocuments,
  Tensor,
  Tokenizer,
  tokenStream,
} from "../src/mod.ts";

const MODELS = new URL("./models/", import.meta.url).pathname;
// The models studied (default: the embedded test beds): `--dense DIR --moe DIR` for others.
const { values: args } = parseArgs({
  args: runtime.args(),
  options: {
    dense: { type: "string", default: `${MODELS}brown-dense-10m` },
    moe: { type: "string", default: `${MODELS}brown-moe-28m` },
    // Brown genres for calibration (train split) and evaluation (validation split), or "all".
    genres: { type: "string", default: "ca,cn,cp" },
    // Scored tokens per validation document (its opening), or "all" for whole documents.
    "eval-tokens": { type: "string", default: "256" },
    backend: { type: "string" }, // default: WebGPU where an adapter exists, else the CPU
  },
});
const DENSE = args.dense!;
const MOE = args.moe!;
const genres = args.genres === "all" ? undefined : args.genres!.split(",") as BrownGenre[];
const backend = args.backend ?? ((await hasWebGpu()) ? "webgpu" : "cpu");
if (backend !== "cpu" && backend !== "webgpu") {
  throw new TypeError(`--backend: ${backend} is not cpu or webgpu`);
}
const device = await createDevice({ backend });
const log = new MetricLog({
  runId: `compress-${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, "")}`,
});
console.log(`device: ${device.info.backend} (${device.info.adapter})`);

// Brown validation text, tokenized by the models' shared tokenizer.
const tokenizer = await Tokenizer.fromDir(DENSE);
// Calibration from the training split; evaluation on whole validation documents (the opening
// `--eval-tokens` of each), so calibration never sees evaluation text and the comparisons get
// intervals over documents.
const split = splitDocuments(await loadBrown(genres ? { genres } : {}));
const cal = tokenStream(split.train, tokenizer, { addEos: true, maxTokens: 512 });
const blocks = Array.from({ length: 4 }, (_, i) => cal.subarray(i * 128, (i + 1) * 128));
const evalTokens = args["eval-tokens"] === "all" ? undefined : Number(args["eval-tokens"]);
const evalDocs = split.validation.map((d) =>
  tokenStream([d], tokenizer, { addEos: true, ...(evalTokens ? { maxTokens: evalTokens } : {}) })
);
console.log(
  `calibration: 512 training tokens; evaluation: ${evalDocs.length} validation documents of ${
    genres ? genres.join(", ") : "every genre"
  } (${evalDocs.reduce((n, d) => n + d.length, 0)} tokens: ${
    evalTokens ? `the first ${evalTokens} of each` : "whole documents"
  })`,
);
const pct = (r: { lo: number; hi: number }) =>
  `${(100 * (r.lo - 1)).toFixed(1)}% to ${(100 * (r.hi - 1)).toFixed(1)}%`;

// ---------------------------------------------------------------------------------------
// 1. Quantizers on one expert's up projection, errors on the tokens routed through layer 0.
{
  using moe = await loadModel(MOE, { device });
  const weights = await modelSweepWeights(moe, blocks, { layers: [0] }); // experts with their routed inputs
  const up = weights.find((w) => w.name.endsWith("experts.0.w3"))!;
  const [F, C] = up.shape;
  const w = up.data; // [F, C]
  const x = up.activations!; // [T_e, C]: the layer-0 inputs of the tokens routed to expert 0
  console.log(`\n1. ${MOE} layer 0 expert 0 up projection [${F}, ${C}]`);
  for (const method of ["rtn", "hqq", "nf4"] as const) {
    for (const bits of method === "nf4" ? [4] as const : [2, 3, 4] as const) {
      using t = Tensor.fromArray(device, w, [F, C]);
      const q = await quantize(t, { method, bits, groupSize: 64 });
      const approx = dequantizeRef(await quantizedToHost(q));
      const row = {
        section: "quantize",
        method,
        bits,
        bits_per_param: bitsPerParam(q).total,
        rel_error: relativeError(w, approx),
        output_error: outputError(w, approx, [F, C], x),
      };
      log.log(row);
      console.log(
        `  ${method} ${bits}-bit g64: ${row.bits_per_param.toFixed(2)} bits/param, ` +
          `weight error ${row.rel_error.toFixed(4)}, output error ${row.output_error.toFixed(4)}`,
      );
      if (method === "hqq" && bits === 2) {
        const c = compensateQuantization(w, approx, [F, C], 16);
        const rel = relativeError(w, c.reconstruction);
        const bpp = row.bits_per_param + c.residual.bitsPerParam;
        log.log({ section: "quantize", method: "hqq+svd16", bits, bits_per_param: bpp, rel_error: rel });
        console.log(
          `  hqq 2-bit + rank-16 compensation: ${bpp.toFixed(2)} bits/param, weight error ${rel.toFixed(4)}`,
        );
      }
      disposeQuantized(q);
    }
  }
}

// ---------------------------------------------------------------------------------------
// 2. LoRAM's structured pruning of brown-dense: plans, smaller models, perplexity; on LoRAM's layer
//    range [4, L−2) and on every layer but the first and last.
// One model and one set of calibration norms serve sections 2 and 3 (pruneLinears works on reloads).
const dense = await loadModel(DENSE, { device });
const base = await documentPerplexity(dense, evalDocs, { blockSize: 128 }); // the original's scores
const { norms } = await collectInputNorms(dense, blocks);
{
  const L = dense.config.layers;
  const params = dense.numParameters().total;
  console.log(
    `\n2. ${DENSE} structured pruning at ratio 0.5 (perplexity on ${evalDocs.length} validation documents; ` +
      "95% paired bootstrap intervals over documents)",
  );
  console.log(
    `  original: ${params.toLocaleString("en-US")} parameters, ppl ${base.interval.perplexity.toFixed(2)}`,
  );
  log.log({ section: "structured", method: "none", params, ppl: base.interval.perplexity });
  for (const layers of [[4, L - 2], [1, L - 1]] as [number, number][]) {
    const options = { ratio: 0.5, layers };
    const plans = {
      random: randomPlan(planDimsOf(dense.config), { ...options, seed: 0 }),
      l2: await l2Plan(dense, options),
      activation: await activationPlan(dense, norms, options),
    };
    console.log(`  layers [${layers}):`);
    let random: DocumentScore[] | undefined;
    for (const [name, plan] of Object.entries(plans)) {
      using small = await applyPlan(dense, plan);
      const r = await documentPerplexity(small, evalDocs, { blockSize: 128 });
      const ppl = r.interval.perplexity;
      random ??= r.documents; // the first plan is the random one
      const change = pairedBootstrap(r.documents, base.documents); // against the original
      const vsRandom = pairedBootstrap(r.documents, random); // against the random plan
      const n = small.numParameters().total;
      log.log({
        section: "structured",
        method: name,
        layers: `[${layers})`,
        params: n,
        ppl,
        change_lo_pct: 100 * (change.lo - 1),
        change_hi_pct: 100 * (change.hi - 1),
        vs_random_lo_pct: 100 * (vsRandom.lo - 1),
        vs_random_hi_pct: 100 * (vsRandom.hi - 1),
      });
      console.log(
        `    ${name.padEnd(10)} ${n.toLocaleString("en-US")} parameters (${
          (100 * n / params).toFixed(1)
        }%), ` +
          `ppl ${ppl.toFixed(2)}: ${(100 * (change.value - 1)).toFixed(1)}% (${
            pct(change)
          }) vs the original` +
          (name === "random"
            ? ""
            : `, ${(100 * (vsRandom.value - 1)).toFixed(1)}% (${pct(vsRandom)}) vs random`),
      );
    }
    if (layers[0] === 4) {
      const planPath = `${await runtime.makeTempDir("ferry-plan-")}/l2_plan.json`;
      await savePlan(plans.l2, planPath);
      console.log(`    the L2 plan as JSON (kept indices per layer): ${planPath}`);
    }
  }
}
dense.dispose();

// ---------------------------------------------------------------------------------------
// 3. Unstructured pruning of every decoder linear (weights keep their shape, zeros where pruned).
{
  console.log(
    `\n3. ${DENSE} unstructured pruning of every decoder linear (paired intervals against the original)`,
  );
  let magnitude: DocumentScore[] | undefined;
  for (const [method, sparsity] of [["magnitude", 0.5], ["wanda", 0.5], ["2:4", 0.5]] as const) {
    using fresh = await loadModel(DENSE, { device }); // pruned in place
    await pruneLinears(fresh, { method, sparsity, norms });
    const r = await documentPerplexity(fresh, evalDocs, { blockSize: 128 });
    const ppl = r.interval.perplexity;
    magnitude ??= r.documents; // the first method is magnitude
    const change = pairedBootstrap(r.documents, base.documents);
    const vsMagnitude = pairedBootstrap(r.documents, magnitude);
    log.log({
      section: "unstructured",
      method,
      sparsity,
      ppl,
      change_pct: 100 * (change.value - 1),
      change_lo_pct: 100 * (change.lo - 1),
      change_hi_pct: 100 * (change.hi - 1),
    });
    console.log(
      `  ${method.padEnd(9)} sparsity ${sparsity}: ppl ${ppl.toFixed(2)}: ${
        (100 * (change.value - 1)).toFixed(1)
      }% (${pct(change)})` +
        (method === "magnitude"
          ? ""
          : `, ${(100 * (vsMagnitude.value - 1)).toFixed(1)}% (${pct(vsMagnitude)}) vs magnitude`),
    );
  }
}

// ---------------------------------------------------------------------------------------
// 4. FloE's sensitivity study: HQQ INT2 (g64) of one projection of every expert, the rest exact.
{
  using moe = await loadModel(MOE, { device });
  console.log(
    `\n4. ${MOE} HQQ INT2 of one expert projection in every MoE layer (perplexity on ${evalDocs.length} ` +
      "validation documents; paired 95% intervals against the unquantized model)",
  );
  const scores = new Map<string, DocumentScore[]>();
  const study = await expertProjectionSensitivity(
    moe,
    evalDocs,
    [{ method: "hqq", bits: 2, groupSize: 64, axis: 1 }],
    { blockSize: 128, onDocuments: (projection, documents) => scores.set(projection, documents) },
  );
  for (const r of study.toJSON()) {
    const row = {
      section: "sensitivity",
      method: r.projection === "none" ? "unquantized" : `hqq ${r.projection}`,
      bits: Number(r.bits),
      bits_per_param: Number(r.bits_per_param),
      ppl: Number(r.perplexity),
      change_pct: Number(r.increase_pct),
      change_lo_pct: Number(r.increase_lo_pct ?? 0),
      change_hi_pct: Number(r.increase_hi_pct ?? 0),
    };
    log.log(row);
    console.log(
      `  ${String(r.projection).padEnd(9)} ppl ${row.ppl.toFixed(2)}` +
        (r.projection === "none"
          ? " (unquantized)"
          : `: ${row.change_pct.toFixed(2)}% (${row.change_lo_pct.toFixed(2)}% to ${
            row.change_hi_pct.toFixed(2)
          }%)`),
    );
  }
  // FloE's premise on this model: INT2 down costs more than INT2 up, paired on the same documents.
  const downVsUp = pairedBootstrap(scores.get("w2 (down)")!, scores.get("w3 (up)")!);
  log.log({
    section: "sensitivity",
    method: "down vs up",
    change_pct: 100 * (downVsUp.value - 1),
    change_lo_pct: 100 * (downVsUp.lo - 1),
    change_hi_pct: 100 * (downVsUp.hi - 1),
  });
  console.log(
    `  INT2 down vs INT2 up: ${(100 * (downVsUp.value - 1)).toFixed(2)}% (${pct(downVsUp)})`,
  );
}

console.log(`\n${log.format({ maxRows: 40 })}`);
console.log(`saved ${await log.save("runs")}/metrics.arrow`);
device.destroy();
