/**
 * Ferry demo: the devices here, a kernel tour that checks every WebGPU kernel against its
 * TypeScript reference, one decoder block (prefill then decode with a KV cache) recorded
 * as one submit per step, a Hugging Face checkpoint checked against PyTorch, the two embedded
 * models trained on the Brown corpus generating text, the compressors on the embedded MoE (a sweep of
 * quantizers, pruners and SVD over layer 0's experts, and FloE's INT2 sensitivity study), FloE's
 * compression and quality, a short LoRAM run on the embedded dense model (perplexity before and
 * after), and the whole run as an Arrow metrics table and an HTML report with Plotly charts in
 * `runs/<id>/`.
 *
 * Run: `npx -y deno@2.9.6 task demo` (`DENO_WEBGPU_BACKEND=vulkan` picks Mesa's lavapipe
 * on machines without a GPU). Twin notebook: notebooks/00_tour.ipynb.
 * @module
 */
import {
  add,
  attention,
  barChart,
  brownLoramData,
  cast,
  compressionSweep,
  compressionTable,
  createDevice,
  type Device,
  embedding,
  expertProjectionSensitivity,
  formatBytes,
  gatherRows,
  gemv,
  generate,
  hasWebGpu,
  KvCache,
  loadBrown,
  loadModel,
  loramRun,
  matmul,
  MetricLog,
  modelSweepWeights,
  mul,
  qgemv,
  qmatmul,
  qualityTable,
  quantGrid,
  quantize,
  type QuantizedTensor,
  randn,
  rmsNorm,
  rope,
  runtime,
  SafetensorsFile,
  siluMul,
  softmax,
  splitDocuments,
  sum,
  summarizeSweep,
  Tensor,
  Tokenizer,
  tokenStream,
  topk,
  writeReport,
} from "../src/mod.ts";

// ---------------------------------------------------------------------------------------
// Devices

const devices: Device[] = [await createDevice({ backend: "cpu" })];
if (await hasWebGpu()) devices.push(await createDevice({ backend: "webgpu" }));
console.log("Devices");
for (const d of devices) {
  console.log(
    `  ${d.info.backend.padEnd(6)} ${d.info.adapter}  features: ${d.info.features.join(", ") || "-"}`,
  );
}
const log = new MetricLog({ runId: `demo-${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, "")}` });

// ---------------------------------------------------------------------------------------
// Kernel tour: each op on every device; WebGPU compared with the CPU reference.

type Op = (d: Device) => Tensor;
const T = 37, C = 96, E = 8, V = 500, H = 6, HKV = 2, D = 16;
const x = randn(T * C, 1), w = randn(C * C, 2, 0.1), g = randn(C, 3, 0.1).map((v) => 1 + v);
// Packed weights for the quantized ops, quantized on each device (HQQ 4-bit and NF4, groups of 32).
const packed = new Map<Device, { hqq: QuantizedTensor; nf4: QuantizedTensor }>();
for (const d of devices) {
  const wt = Tensor.fromArray(d, w, [C, C]);
  packed.set(d, {
    hqq: await quantize(wt, { method: "hqq", bits: 4, groupSize: 32 }),
    nf4: await quantize(wt, { method: "nf4", groupSize: 32, doubleQuant: true }),
  });
}
const tour: Record<string, Op> = {
  "matmul [37,96]x[96,96]ᵀ": (d) =>
    matmul(Tensor.fromArray(d, x, [T, C]), Tensor.fromArray(d, w, [C, C]), { transB: true }),
  "gemv [96,96]·[96]": (d) => gemv(Tensor.fromArray(d, w, [C, C]), Tensor.fromArray(d, x.subarray(0, C))),
  "qgemv HQQ 4-bit [96,96]·[96]": (d) => qgemv(packed.get(d)!.hqq, Tensor.fromArray(d, x.subarray(0, C))),
  "qmatmul NF4+dq [37,96]x[96,96]ᵀ": (d) => qmatmul(Tensor.fromArray(d, x, [T, C]), packed.get(d)!.nf4),
  "add + mul (broadcast)": (d) =>
    mul(add(Tensor.fromArray(d, x, [T, C]), Tensor.fromArray(d, g)), Tensor.fromArray(d, g)),
  "siluMul (SwiGLU gate)": (d) =>
    siluMul(Tensor.fromArray(d, x, [T, C]), Tensor.fromArray(d, x.map((v) => v * 0.5), [T, C])),
  "rmsNorm": (d) => rmsNorm(Tensor.fromArray(d, x, [T, C]), Tensor.fromArray(d, g), 1e-5),
  "softmax": (d) => softmax(Tensor.fromArray(d, x, [T, C])),
  "rope (rotate_half)": (d) => rope(Tensor.fromArray(d, x, [T, H, D]), 5, { theta: 10000 }),
  "attention (GQA, causal)": (d) => {
    const q = Tensor.fromArray(d, x.subarray(0, T * H * D), [T, H, D]);
    const kv = Tensor.fromArray(d, randn(T * HKV * D, 4), [T, HKV, D]);
    return attention(q, kv, kv, { pos: 0 });
  },
  "embedding gather": (d) =>
    embedding(
      Tensor.fromArray(d, randn(V * C, 5), [V, C]),
      Tensor.fromArray(d, Int32Array.from({ length: T }, (_, i) => (i * 37) % V)),
    ),
  "topk (router, k=2)": (d) => topk(Tensor.fromArray(d, randn(T * E, 6), [T, E]), 2).values,
  "gatherRows (expert channels)": (d) =>
    gatherRows(Tensor.fromArray(d, w, [C, C]), Tensor.fromArray(d, new Int32Array([3, 1, 95, 40]))),
  "sum (last axis)": (d) => sum(Tensor.fromArray(d, x, [T, C])),
  "cast bf16→f32": (d) =>
    cast(
      Tensor.fromArray(d, new Uint16Array(x.length).map((_, i) => 0x3f80 + (i % 512)), [T, C], {
        dtype: "bf16",
      }),
      "f32",
    ),
};

console.log("\nKernel tour (WebGPU vs the TypeScript reference)");
for (const [name, op] of Object.entries(tour)) {
  const results: Float32Array[] = [];
  for (const d of devices) {
    const t0 = performance.now();
    const y = await op(d).toArray() as Float32Array;
    const ms = performance.now() - t0;
    results.push(y);
    const err = results[0].reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
    log.log({
      section: "kernel",
      op: name,
      backend: d.kind,
      elements: y.length,
      max_abs_err_vs_cpu: err,
      ms,
    });
  }
  const err = devices.length > 1
    ? results[0].reduce((m, v, i) => Math.max(m, Math.abs(v - results[1][i])), 0)
    : NaN;
  console.log(
    `  ${name.padEnd(30)} ${String(results[0].length).padStart(6)} values  ${
      devices.length > 1
        ? `max |webgpu - cpu| = ${err.toExponential(2)}`
        : "(no WebGPU adapter: the reference only)"
    }`,
  );
}

// ---------------------------------------------------------------------------------------
// One decoder block, prefill then decode, one submit per step.

function block(d: Device, wts: Record<string, Tensor>, cache: KvCache, h: Tensor, pos: number): Tensor {
  const t = h.shape[0];
  const n = rmsNorm(h, wts.ln1, 1e-5); // [t, C]
  const q = rope(matmul(n, wts.wq, { transB: true }).reshape([t, H, D]), pos); // [t, H, D]
  const k = rope(matmul(n, wts.wk, { transB: true }).reshape([t, HKV, D]), pos); // [t, HKV, D]
  const v = matmul(n, wts.wv, { transB: true }).reshape([t, HKV, D]);
  cache.append(k, v);
  const a = attention(q, cache.k, cache.v, { pos }).reshape([t, H * D]); // [t, H·D]
  const h1 = add(h, matmul(a, wts.wo, { transB: true })); // residual
  const m = rmsNorm(h1, wts.ln2, 1e-5);
  const up = siluMul(matmul(m, wts.w1, { transB: true }), matmul(m, wts.w3, { transB: true })); // [t, 4C]
  void d;
  return add(h1, matmul(up, wts.w2, { transB: true })); // [t, C]
}

console.log("\nOne decoder block: prefill 32 tokens, then decode 8 (KV cache)");
for (const d of devices) {
  const shapes: Record<string, number[]> = {
    ln1: [C],
    ln2: [C],
    wq: [H * D, C],
    wk: [HKV * D, C],
    wv: [HKV * D, C],
    wo: [C, H * D],
    w1: [4 * C, C],
    w3: [4 * C, C],
    w2: [C, 4 * C],
  };
  const wts: Record<string, Tensor> = {};
  let seed = 10;
  for (const [k, s] of Object.entries(shapes)) {
    const n = s.reduce((p, q) => p * q, 1);
    const data = k.startsWith("ln") ? new Float32Array(n).fill(1) : randn(n, seed++, 1 / Math.sqrt(s[1]));
    wts[k] = Tensor.fromArray(d, data, s, { category: "weights", label: k });
  }
  const cache = new KvCache(d, { maxSeq: 64, kvHeads: HKV, headDim: D, label: "block0" });
  const prompt = Tensor.fromArray(d, randn(32 * C, 99), [32, C]);
  let submits = d.stats.submits;
  let t0 = performance.now();
  let out = block(d, wts, cache, prompt, 0);
  const last = await out.toArray();
  const prefillMs = performance.now() - t0;
  log.log({
    section: "block",
    op: "prefill 32",
    backend: d.kind,
    ms: prefillMs,
    submits: d.stats.submits - submits,
  });
  let h = Tensor.fromArray(d, last.subarray(31 * C), [1, C]);
  submits = d.stats.submits;
  t0 = performance.now();
  for (let i = 0; i < 8; i++) {
    out = block(d, wts, cache, h, 32 + i);
    await out.toArray(); // one readback (and one submit) per decoded token
    h = out;
  }
  const decodeMs = (performance.now() - t0) / 8;
  const perToken = (d.stats.submits - submits) / 8;
  log.log({ section: "block", op: "decode 1", backend: d.kind, ms: decodeMs, submits: perToken });
  console.log(
    `  ${d.kind.padEnd(6)} prefill ${prefillMs.toFixed(1)} ms, decode ${decodeMs.toFixed(2)} ms/token, ` +
      `${perToken} submit(s)/token, ledger peak ${formatBytes(d.ledger.peak())} ` +
      `(${d.ledger.usage().map((u) => `${u.category} ${formatBytes(u.peak)}`).join(", ")})`,
  );
}

console.log(
  "  (at this toy size a WebGPU step costs one submit-and-wait, ~12 ms on software adapters;\n" +
    "   `deno task bench` measures the kernels at sizes where the device does the work)",
);

// ---------------------------------------------------------------------------------------
// A Hugging Face checkpoint: load, generate, compare with PyTorch's greedy tokens.

const fixture = new URL("../test/fixtures/models/mixtral-top2-f32/", import.meta.url).pathname;
using golden = await SafetensorsFile.open(`${fixture}golden.safetensors`);
const ids = async (name: string) => new Int32Array((await golden.read(name)).data.slice().buffer);
const prompt = await ids("input_ids");
const reference = Array.from(await ids("greedy"));
const hfLines: string[] = [];
console.log(
  `\nHF checkpoint ${fixture.replace(/.*test\//, "test/")} (random weights, reference from PyTorch)`,
);
for (const d of devices) {
  using model = await loadModel(fixture, { device: d });
  const c = model.config;
  const out = await generate(model, prompt, { maxNewTokens: reference.length });
  const same = out.tokens.every((t, i) => t === reference[i]);
  hfLines.push(
    `${d.kind}: ${c.modelType}, ${c.layers} layers, ${c.numExperts} experts top-${c.topK}: ` +
      `greedy [${out.tokens.join(" ")}] ${same ? "= PyTorch" : `!= PyTorch [${reference.join(" ")}]`}, ` +
      `${out.tokensPerSecond.toFixed(0)} tokens/s, ${out.submitsPerToken} submit(s)/token`,
  );
  console.log(`  ${hfLines.at(-1)}`);
  log.log({
    section: "model",
    op: "generate 8",
    backend: d.kind,
    ms: out.decodeMsPerToken,
    submits: out.submitsPerToken,
  });
}

// ---------------------------------------------------------------------------------------
// The embedded models: trained here from scratch on the Brown corpus (examples/pretrain.ts).

const PROMPT = "The committee said that the";
const target = devices[devices.length - 1];
// What the terminal shows of each model, for the report: size, perplexities, the continuation.
const embedded = new MetricLog({ runId: log.runId });
const continuations: { text: string }[] = [];
console.log(
  `\nEmbedded models (examples/models/, trained on Brown by examples/pretrain.ts) on ${target.kind}`,
);
for (const name of ["brown-dense", "brown-moe"]) {
  const dir = new URL(`./models/${name}/`, import.meta.url).pathname;
  const tokenizer = await Tokenizer.fromDir(dir);
  const evaluation = JSON.parse(await runtime.readTextFile(`${dir}eval.json`));
  const all = evaluation.validation.find((r: { genre: string }) => r.genre === "all");
  using model = await loadModel(dir, { device: target });
  const c = model.config;
  const n = model.numParameters();
  const out = await generate(model, tokenizer.encode(PROMPT), {
    maxNewTokens: 32,
    temperature: 0.8,
    topK: 40,
    seed: 1,
  });
  console.log(
    `  ${name}: ${c.modelType}, ${c.layers} layers, ${(n.total / 1e6).toFixed(1)}M parameters` +
      (c.numExperts > 1
        ? ` (${(n.active / 1e6).toFixed(1)}M active, ${c.numExperts} experts top-${c.topK})`
        : "") +
      `; validation perplexity ${all.perplexity.toFixed(1)} (unigram ${all.unigram_perplexity.toFixed(1)})`,
  );
  const text = `${PROMPT}${tokenizer.decode(out.tokens)}`;
  console.log(`    "${text}"`);
  console.log(`    (${out.tokensPerSecond.toFixed(0)} tokens/s, ${out.submitsPerToken} submit(s)/token)`);
  embedded.log({
    model: name,
    parameters: n.total,
    active: n.active,
    validation_ppl: all.perplexity,
    unigram_ppl: all.unigram_perplexity,
    tokens_per_s: out.tokensPerSecond,
  });
  continuations.push({ text: `${name}: "${text}"` });
  log.log({
    section: "embedded",
    op: `${name} generate 32`,
    backend: target.kind,
    ms: out.decodeMsPerToken,
    submits: out.submitsPerToken,
  });
}

// ---------------------------------------------------------------------------------------
// Compressors on the embedded MoE: every expert of layer 0 under RTN/HQQ/NF4, pruning and SVD,
// scored on real activations; then FloE's study: INT2 on one projection of every expert at a time.

let sweepSummary: MetricLog | undefined;
let study: MetricLog | undefined;
{
  const dir = new URL("./models/brown-moe/", import.meta.url).pathname;
  const tokenizer = await Tokenizer.fromDir(dir);
  const split = splitDocuments(await loadBrown({ genres: ["ca", "cn", "cp"] }));
  // Calibration from the training split; the study's evaluation on whole validation documents
  // (their first 256 tokens each), so its intervals are over documents and never see calibration text.
  const ids = tokenStream(split.train, tokenizer, { addEos: true, maxTokens: 1024 });
  const evalDocs = split.validation.slice(0, 12).map((d) =>
    tokenStream([d], tokenizer, { addEos: true, maxTokens: 256 })
  );
  using model = await loadModel(dir, { device: target });
  const sequences = [0, 1, 2, 3].map((i) => ids.subarray(i * 128, (i + 1) * 128));
  const weights = await modelSweepWeights(model, sequences, { layers: [0] });
  console.log(
    `\nCompression sweep: brown-moe layer 0, ${weights.length} expert matrices, errors on 512 Brown tokens ` +
      `(ferry sweep --model examples/models/brown-moe --layers 0 ...)`,
  );
  const sweep = await compressionSweep(weights, {
    device: target,
    quantizers: quantGrid({ methods: ["rtn", "hqq", "nf4"], bits: [2, 3, 4], groupSizes: [64], axes: [1] }),
    pruners: [{ method: "magnitude", sparsity: 0.5 }, { method: "wanda", sparsity: 0.5 }, {
      method: "2:4",
      sparsity: 0.5,
    }],
    ranks: [32],
    progress: "off",
  });
  sweepSummary = summarizeSweep(sweep);
  console.log(sweepSummary.format({ maxRows: 60 }));
  console.log(
    `\nFloE sensitivity: HQQ INT2 (g64) on one projection of every expert, perplexity on ${evalDocs.length} ` +
      "validation documents (256 tokens each; 95% bootstrap intervals over documents, the increase paired)",
  );
  study = await expertProjectionSensitivity(
    model,
    evalDocs,
    [{ method: "hqq", bits: 2, groupSize: 64, axis: 1 }],
    { blockSize: 128, runId: log.runId },
  );
  console.log(study.format());
  for (const row of study.toJSON()) {
    log.log({
      section: "sensitivity",
      op: `${row.projection} ${row.method}`,
      backend: target.kind,
      ppl: Number(row.perplexity),
    });
  }
}

// ---------------------------------------------------------------------------------------
// FloE on the embedded MoE: per-expert compression (INT2 up resident, 10% of gate/down channels
// streamed) and perplexity with sparse experts, thresholds calibrated on Brown's train split.

let floeQuality: MetricLog | undefined;
{
  const dir = new URL("./models/brown-moe/", import.meta.url).pathname;
  const tokenizer = await Tokenizer.fromDir(dir);
  const split = splitDocuments(await loadBrown({ genres: ["ca", "cn", "cp"] }));
  const evaluation = tokenStream(split.validation, tokenizer, { addEos: true, maxTokens: 256 }).subarray(
    0,
    256,
  );
  const cal = tokenStream(split.train, tokenizer, { addEos: true, maxTokens: 256 }).subarray(0, 256);
  const load = () => loadModel(dir, { device: target });
  const compression = await compressionTable(load, { sparsity: 0.9, upBits: 2, groupSize: 64 });
  console.log("\nFloE compression per expert (s = 0.9, HQQ INT2 up; A.7: 9.23x, 8.42x with g64 metadata)");
  console.log(compression.format());
  const quality = await qualityTable(load, {
    calibration: [cal.subarray(0, 128), cal.subarray(128)],
    evaluation,
    blockSize: 128,
    sparsities: [0.8, 0.9],
    upBits: [2],
  });
  console.log("FloE quality on 256 Brown validation tokens (ferry floe tables for the full table)");
  console.log(quality.format());
  floeQuality = quality;
  for (const row of quality.toJSON()) {
    log.log({
      section: "floe",
      op: `${row.mode} s ${row.sparsity} up ${row.up_bits}`,
      backend: target.kind,
      ppl: Number(row.perplexity),
    });
  }
}

// ---------------------------------------------------------------------------------------
// LoRAM on the embedded dense model: prune layers 1-6 at p = 0.65 (random channels and KV heads),
// a few LoRA steps on Brown genre cj with the pruned model, recover, merge into the original;
// perplexity before and after on held-out documents (examples/loram.ts runs the paper's whole table).

let loramPpl: MetricLog | undefined;
{
  const dir = new URL("./models/brown-dense/", import.meta.url).pathname;
  const cpu = devices[0];
  const tokenizer = await Tokenizer.fromDir(dir);
  // Random plans need no calibration text, so no alignment documents are tokenized.
  // Four validation documents per domain, 128 tokens each (cj has 10; cn only one).
  const data = await brownLoramData(tokenizer, "cj", {
    evalTokens: 128,
    evalDocs: 4,
    evalBlocks: 0,
    alignDocs: 0,
  });
  const out = await runtime.makeTempDir("ferry-demo-loram-");
  const steps = 12;
  const t0 = performance.now();
  const e = await loramRun(
    cpu,
    {
      model: dir,
      out,
      method: "rand",
      ratio: 0.65,
      layers: [1, 7],
      train: { steps, batch: 4, lr: 2e-3, checkpointEvery: 0 },
      evalTokens: 128,
    },
    data,
    { progress: false },
  );
  const seconds = (performance.now() - t0) / 1000;
  await runtime.remove(out, { recursive: true });
  console.log(
    `\nLoRAM-Rand on brown-dense (layers 1-6 pruned at p = 0.65: ${e.params.params} -> ${e.params.pruned_params} ` +
      `parameters, ${e.params.loram_reduction.toFixed(2)}x), ${steps} LoRA steps on genre cj, ${
        seconds.toFixed(1)
      } s ` +
      `on ${cpu.kind}; perplexity on 4 validation documents x 128 tokens per domain (in-domain cj; other ` +
      "Brown genres; SOTU)",
  );
  loramPpl = new MetricLog({ runId: log.runId });
  const rows: [string, typeof e.ppl.original][] = [
    ["original: before", e.ppl.original],
    ["pruned", e.ppl.pruned],
    ["pruned + LoRA", e.ppl.pruned_lora],
    ["original + LoRAM: after", e.ppl.loram],
  ];
  for (const [model, p] of rows) {
    loramPpl.log({
      model,
      in_domain_ppl: p.in_domain,
      out_of_domain_ppl: p.out_of_domain,
      sotu_ppl: p.out_of_domain_sotu ?? undefined,
    });
  }
  console.log(loramPpl.format());
  log.log({ section: "loram", op: "original in-domain", backend: cpu.kind, ppl: e.ppl.original.in_domain });
  log.log({
    section: "loram",
    op: `LoRAM-Rand ${steps} steps in-domain`,
    backend: cpu.kind,
    ppl: e.ppl.loram.in_domain,
  });
}

// ---------------------------------------------------------------------------------------
// The run as an Arrow table.

console.log(`\n${log.format({ maxRows: 40 })}`);
const dir = await log.save("runs");
console.log(`\nsaved ${log.rows} rows to ${dir}/metrics.arrow`);

// An HTML report of the run (tables and Plotly charts, the library inlined: it opens offline).
const int2 = sweepSummary!.toJSON().filter((r) => r.kind === "quantize" && r.bits === 2);
// The sweep keeps its own run id; in this report it is part of the demo run (one id, under the title).
const sweepTable = sweepSummary!.table();
const sweepRows = sweepTable.select(sweepTable.schema.names.filter((n) => n !== "run_id"));
const report = await writeReport(`${dir}/report.html`, "Ferry demo", [
  { text: devices.map((d) => `${d.info.backend}: ${d.info.adapter}`).join("; ") },
  {
    heading: "Embedded models: validation perplexity (Brown, all genres) and a sampled continuation",
    text: `Prompt "${PROMPT}", 32 new tokens, temperature 0.8, top-k 40, seed 1, on ${target.kind}.`,
    table: embedded,
  },
  ...continuations,
  { heading: "A Hugging Face checkpoint against PyTorch", text: hfLines.join("; ") },
  { heading: "Kernels, blocks and models", table: log },
  {
    heading: "Compression sweep: brown-moe layer 0 experts",
    text: "INT2 (g64): mean relative output error on the tokens routed to each expert (512 Brown tokens).",
    figure: barChart(int2, {
      x: "group",
      y: "output_error",
      groupBy: "method",
      yTitle: "relative output error",
    }),
    table: sweepRows,
  },
  {
    heading: "FloE sensitivity: HQQ INT2 on one projection of every expert",
    figure: barChart(study!.toJSON().slice(1), {
      x: "projection",
      y: "increase_pct",
      yTitle: "perplexity increase (%)",
    }),
    table: study!,
  },
  { heading: "FloE: perplexity with sparse experts (brown-moe, 256 tokens)", table: floeQuality! },
  {
    heading: "LoRAM-Rand on brown-dense: perplexity before and after (4 documents x 128 tokens per domain)",
    text: "Layers 1-6 pruned at p = 0.65, 12 LoRA steps on Brown genre cj on the pruned model, the adapter " +
      "recovered and merged into the original. In-domain: cj; out-of-domain: the other Brown genres and " +
      "the State of the Union addresses (validation documents).",
    table: loramPpl!,
  },
]);
console.log(`wrote ${report} (open it in a browser)`);
for (const d of devices) d.destroy();
