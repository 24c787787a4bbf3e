/**
 * Model benchmark: prefill and decode tokens/s for the embedded checkpoints
 * (`examples/models/brown-dense`, Llama layout; `examples/models/brown-moe`, Mixtral layout) and
 * for two larger seeded random checkpoints (`writeRandomCheckpoint`, dense and MoE) on both
 * backends, submits per decoded token (target: one), and decode's effective bandwidth over the
 * weights a token touches, next to the host's memory bandwidth measured in the same run.
 *
 * Each model is warmed up at the measured prompt length (pipelines compiled and buffers sized for
 * it), then timed {@link REPEATS} times: rows report the median with the spread (min–max).
 *
 * Run: `deno task bench:models` (add `--quick` for a short run). Writes bench/results/models.json.
 * @module
 */
import { createDevice, hasWebGpu } from "../src/device/create_device.ts";
import type { Device } from "../src/device/device.ts";
import { embeddedModelDir } from "../src/models/embedded.ts";
import { generate } from "../src/models/generate.ts";
import { loadModel } from "../src/models/load.ts";
import { writeRandomCheckpoint } from "../src/models/random.ts";
import { parameterSpecs } from "../src/models/weights.ts";
import { type BenchRow, printTable, spread, timeMs, writeJson } from "./_harness.ts";

const quick = Deno.args.includes("--quick");
const PROMPT = quick ? 32 : 64;
const NEW = quick ? 8 : 32;
/** Timed runs per model and device (after the warm-ups). */
const REPEATS = quick ? 5 : 7;
/** Untimed runs at the measured lengths first. */
const WARMUP = 2;
const common = {
  vocab_size: 4096,
  hidden_size: 512,
  num_hidden_layers: 4,
  num_attention_heads: 8,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  max_position_embeddings: 1024,
  tie_word_embeddings: false,
};
/** Model label -> an embedded checkpoint's folder, or the config of a seeded random one. */
const MODELS: Record<string, string | Record<string, unknown>> = {
  "brown-dense (embedded)": embeddedModelDir("brown-dense"),
  "brown-moe (embedded)": embeddedModelDir("brown-moe"),
  "dense (random, llama, 4×512, 15M)": { ...common, model_type: "llama", intermediate_size: 1408 },
  "moe (random, mixtral, 4×512, 8 experts top-2)": {
    ...common,
    model_type: "mixtral",
    intermediate_size: 1024,
    num_local_experts: 8,
    num_experts_per_tok: 2,
  },
};

const rows: BenchRow[] = [];
const src = new Uint8Array(256 << 20).fill(1);
const dst = new Uint8Array(256 << 20);
const hostReadGBs = src.byteLength / (await timeMs(() => dst.set(src), { minRuns: 5 }) * 1e6);
rows.push({
  group: "machine",
  name: "host memory copy (bytes read per s)",
  value: hostReadGBs,
  unit: "GB/s",
});

const devices: Device[] = [await createDevice({ backend: "cpu" })];
if (await hasWebGpu()) devices.push(await createDevice({ backend: "webgpu" }));
const tmp = await Deno.makeTempDir({ prefix: "ferry-bench-" });
try {
  for (const [label, source] of Object.entries(MODELS)) {
    let dir = source;
    if (typeof source !== "string") {
      dir = `${tmp}/${label.split(" ")[0]}`;
      await writeRandomCheckpoint(dir, source, { seed: 1 });
    }
    for (const device of devices) {
      using model = await loadModel(dir as string, { device });
      const cfg = model.config;
      // Bytes one decoded token reads: every weight but the embedding table (one row), and
      // for MoE only topK of numExperts experts.
      let active = 0;
      for (const p of parameterSpecs(cfg)) {
        const n = p.shape.reduce((a, b) => a * b, 1) * 4;
        if (p.name === "model.embed_tokens.weight") active += cfg.hidden * 4;
        else active += p.category === "experts" ? n * cfg.topK / cfg.numExperts : n;
      }
      const prompt = Int32Array.from({ length: PROMPT }, (_, i) => (i * 7919) % cfg.vocabSize);
      for (let w = 0; w < WARMUP; w++) await generate(model, prompt, { maxNewTokens: NEW });
      const runs = [];
      for (let r = 0; r < REPEATS; r++) runs.push(await generate(model, prompt, { maxNewTokens: NEW }));
      const prefill = spread(runs.map((r) => (1000 * PROMPT) / r.prefillMs));
      const decode = spread(runs.map((r) => r.tokensPerSecond));
      const submits = spread(runs.map((r) => r.submitsPerToken));
      const span = (s: typeof prefill) => ({ min: s.min, max: s.max, runs: s.runs });
      const name = `${label} [${device.kind}]`;
      rows.push({ group: "prefill", name, value: prefill.median, unit: "tokens/s", ...span(prefill) });
      rows.push({ group: "decode", name, value: decode.median, unit: "tokens/s", ...span(decode) });
      rows.push({
        group: "decode",
        name: `${name} weights read`,
        value: (active * decode.median) / 1e9,
        unit: "GB/s",
        limit: hostReadGBs,
        limitName: "host read",
        note: `${(active / 2 ** 20).toFixed(1)} MiB per token`,
      });
      rows.push({
        group: "decode",
        name: `${name} submits per token`,
        value: submits.median,
        unit: "submits",
        ...span(submits),
        note: device.kind === "webgpu" ? "target 1" : "CPU backend has no submits",
      });
    }
  }
} finally {
  await Deno.remove(tmp, { recursive: true });
}

printTable(
  `Ferry model benchmark (prompt ${PROMPT}, ${NEW} new tokens; median (min–max) of ${REPEATS} runs)`,
  rows,
);
const meta = {
  devices: devices.map((d) => `${d.kind}: ${d.info.adapter}`),
  deno: Deno.version.deno,
  cores: navigator.hardwareConcurrency,
  quick,
  prompt: PROMPT,
  newTokens: NEW,
  warmup: WARMUP,
  repeats: REPEATS,
};
await writeJson("bench/results/models.json", meta, rows);
console.log("\nwrote bench/results/models.json");
for (const d of devices) d.destroy();
