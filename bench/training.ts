/**
 * Training benchmark: tokens/s and peak ledger bytes of full fine-tuning vs LoRA (r = 8 on every
 * linear but the head) on the embedded dense model (`examples/models/brown-dense`; a seeded
 * random model of the same shape when it has not been trained yet), on each backend, in one run.
 * LoRA's memory saving is reported as a ratio of the peak ledger bytes, and by category: the
 * saving is gradients and AdamW state that frozen weights never get.
 *
 * Run: `deno task bench:training` (add `--quick` for fewer steps). Writes bench/results/training.json.
 * @module
 */
import { createDevice, hasWebGpu } from "../src/device/create_device.ts";
import type { Device } from "../src/device/device.ts";
import { formatBytes } from "../src/device/ledger.ts";
import { loadModel } from "../src/models/load.ts";
import { writeRandomCheckpoint } from "../src/models/random.ts";
import { applyLora } from "../src/lora/lora_model.ts";
import { causalLmTask } from "../src/lora/causal_lm_task.ts";
import { Trainer } from "../src/lora/trainer.ts";
import { type BenchRow, printTable, spread, writeJson } from "./_harness.ts";

const quick = Deno.args.includes("--quick");
const STEPS = quick ? 3 : 8;
const T = 128;
const BATCH = 2;
const EMBEDDED = "examples/models/brown-dense";

let dir = EMBEDDED;
let source = "embedded brown-dense";
try {
  await Deno.stat(`${EMBEDDED}/config.json`);
} catch {
  dir = await Deno.makeTempDir({ prefix: "ferry-bench-train-" });
  source = "random model of brown-dense's shape";
  await writeRandomCheckpoint(dir, {
    model_type: "llama",
    vocab_size: 4096,
    hidden_size: 192,
    intermediate_size: 512,
    num_hidden_layers: 8,
    num_attention_heads: 6,
    num_key_value_heads: 2,
    rms_norm_eps: 1e-5,
    tie_word_embeddings: true,
  }, { seed: 3 });
}

const data = Array.from(
  { length: STEPS * BATCH },
  (_, b) => Int32Array.from({ length: T + 1 }, (_, i) => (b * 131 + i * 7919) % 4096),
);
const devices: Device[] = [await createDevice({ backend: "cpu" })];
if (await hasWebGpu()) devices.push(await createDevice({ backend: "webgpu" }));

const rows: BenchRow[] = [];
const peaks: Record<string, number> = {};
for (const device of devices) {
  for (const mode of ["full", "lora r=8"] as const) {
    using model = await loadModel(dir, { device });
    const lora = mode === "full"
      ? undefined
      : applyLora(model, { r: 8, loraAlpha: 16, targetModules: "all-linear" });
    const runDir = await Deno.makeTempDir({ prefix: "ferry-bench-run-" });
    device.ledger.resetPeak();
    try {
      using trainer = new Trainer(causalLmTask(model, { lora }), {
        optimizer: { lr: 1e-4 },
        schedule: { totalSteps: STEPS },
        batch: BATCH,
        runDir,
        progress: false,
        logEvery: 1,
        checkpointEvery: 0,
      });
      const fit = await trainer.fit(data);
      // The first step compiles pipelines; report the median of the rest.
      const tps = fit.log.table().getChild("tokens_per_s")!.toArray() as Float64Array;
      const steady = spread([...tps.slice(1)]).median;
      const name = `${mode} [${device.kind}]`;
      const peak = device.ledger.peak();
      peaks[name] = peak;
      rows.push({
        group: "throughput",
        name,
        value: steady,
        unit: "tokens/s",
        note: `T=${T}, batch ${BATCH}`,
      });
      const cats = ["weights", "activations", "grads", "optimizer", "lora"] as const;
      rows.push({
        group: "memory",
        name: `${name} peak ledger`,
        value: peak / 2 ** 20,
        unit: "MiB",
        note: cats.map((c) => `${c} ${formatBytes(device.ledger.peak(c))}`).join(", "),
      });
    } finally {
      lora?.dispose();
      await Deno.remove(runDir, { recursive: true });
    }
  }
  const full = peaks[`full [${device.kind}]`];
  const lora = peaks[`lora r=8 [${device.kind}]`];
  rows.push({
    group: "memory",
    name: `LoRA saving [${device.kind}]`,
    value: full / lora,
    unit: "× less peak",
    note: `${formatBytes(full)} → ${formatBytes(lora)}`,
  });
}
if (dir !== EMBEDDED) await Deno.remove(dir, { recursive: true });

printTable(`Ferry training benchmark (${source}, ${STEPS} steps)`, rows);
await writeJson("bench/results/training.json", {
  date: new Date().toISOString(),
  model: source,
  devices: devices.map((d) => `${d.kind}: ${d.info.adapter}`),
  deno: Deno.version.deno,
  cores: navigator.hardwareConcurrency,
  steps: STEPS,
  block: T,
  batch: BATCH,
}, rows);
console.log("\nwrote bench/results/training.json");
for (const d of devices) d.destroy();
