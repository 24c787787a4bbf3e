/**
 * Model benchmark: prefill and decode tokens/s for a small dense (Llama layout) and a small
 * MoE (Mixtral layout) model on both backends, submits per decoded token (target: one), and
 * decode's effective bandwidth over the weights a token touches, next to the host's memory
 * bandwidth measured in the same run.
 *
 * Run: `deno task bench:models` (add `--quick` for a short run). Writes bench/results/models.json.
 * The models are seeded random checkpoints (`writeRandomCheckpoint`) of fixed size.
 * @module
 */
import { createDevice, hasWebGpu } from "../src/device/create_device.ts";
import type { Device } from "../src/device/device.ts";
import { generate } from "../src/models/generate.ts";
import { loadModel } from "../src/models/load.ts";
import { writeRandomCheckpoint } from "../src/models/random.ts";
import { parameterSpecs } from "../src/models/weights.ts";
import { type BenchRow, printTable, timeMs, writeJson } from "./_harness.ts";

const quick = Deno.args.includes("--quick");
const PROMPT = quick ? 32 : 64;
const NEW = quick ? 8 : 32;
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
const MODELS: Record<string, Record<string, unknown>> = {
  "dense (llama, 4×512, 15M)": { ...common, model_type: "llama", intermediate_size: 1408 },
  "moe (mixtral, 4×512, 8 experts top-2)": {
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
  for (const [label, hf] of Object.entries(MODELS)) {
    const dir = `${tmp}/${label.split(" ")[0]}`;
    await writeRandomCheckpoint(dir, hf, { seed: 1 });
    for (const device of devices) {
      using model = await loadModel(dir, { device });
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
      await generate(model, prompt.subarray(0, 8), { maxNewTokens: 2 }); // warm-up: compile pipelines
      const r = await generate(model, prompt, { maxNewTokens: NEW });
      const name = `${label} [${device.kind}]`;
      rows.push({ group: "prefill", name, value: (1000 * PROMPT) / r.prefillMs, unit: "tokens/s" });
      rows.push({ group: "decode", name, value: r.tokensPerSecond, unit: "tokens/s" });
      rows.push({
        group: "decode",
        name: `${name} weights read`,
        value: (active * r.tokensPerSecond) / 1e9,
        unit: "GB/s",
        limit: hostReadGBs,
        limitName: "host read",
        note: `${(active / 2 ** 20).toFixed(1)} MiB per token`,
      });
      rows.push({
        group: "decode",
        name: `${name} submits per token`,
        value: r.submitsPerToken,
        unit: "submits",
        note: device.kind === "webgpu" ? "target 1" : "CPU backend has no submits",
      });
    }
  }
} finally {
  await Deno.remove(tmp, { recursive: true });
}

printTable(`Ferry model benchmark (prompt ${PROMPT}, ${NEW} new tokens)`, rows);
const meta = {
  date: new Date().toISOString(),
  devices: devices.map((d) => `${d.kind}: ${d.info.adapter}`),
  deno: Deno.version.deno,
  cores: navigator.hardwareConcurrency,
  quick,
  prompt: PROMPT,
  newTokens: NEW,
};
await writeJson("bench/results/models.json", meta, rows);
console.log("\nwrote bench/results/models.json");
for (const d of devices) d.destroy();
