/**
 * Ferry's CPU backend against PyTorch, same machine, same threads, same models and shapes, in one
 * run: prefill and decode tokens/s of the embedded dense and MoE models, and full fine-tuning and
 * LoRA (r 8) training tokens/s at T 128, batch 2. Each row gives both sides and the ratio
 * Ferry / PyTorch (target ≥ 0.5), and the two sides' last-position logits are compared so the
 * rows are known to measure the same model.
 *
 * Threads: Ferry runs its element-wise work on one JavaScript thread and its GEMMs on OpenBLAS
 * with `--threads N` threads; PyTorch gets the same arrangement (`torch.set_num_threads(1)`,
 * `OPENBLAS_NUM_THREADS=N`), so neither side oversubscribes the cores. PyTorch comes from
 * Debian's `python3-torch`, installed here when absent (apt, as root); it links `libblas.so.3`,
 * which must be OpenBLAS (`libopenblas0-pthread`), not the slow reference BLAS: the PyTorch side
 * reports the library it mapped. Without PyTorch the Ferry side still runs.
 *
 * Run: `deno task bench:peers [--threads N] [--quick] [--no-torch]`. Writes bench/results/peers.json.
 * @module
 */
import { createDevice } from "../src/device/create_device.ts";
import type { Device } from "../src/device/device.ts";
import { loadModel } from "../src/models/load.ts";
import { generate } from "../src/models/generate.ts";
import { applyLora } from "../src/lora/lora_model.ts";
import { causalLmTask } from "../src/lora/causal_lm_task.ts";
import { Trainer } from "../src/lora/trainer.ts";
import { type BenchRow, printTable, type Spread, spread, writeJson } from "./_harness.ts";

const args = Deno.args;
const flag = (name: string) => args.includes(name);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const quick = flag("--quick");
const THREADS = option("--threads", navigator.hardwareConcurrency);
const PROMPT = 128,
  NEW = 32,
  T = 128,
  BATCH = 2,
  WARM_STEPS = 4,
  INFER_WARMUP = 3,
  STEPS = quick ? 3 : 8,
  REPEATS = quick ? 2 : 5;
const MODELS = ["examples/models/brown-dense", "examples/models/brown-moe"];
const name = (dir: string) => dir.slice(dir.lastIndexOf("/") + 1);

const ids = (n: number, f: (i: number) => number, vocab: number) =>
  Int32Array.from({ length: n }, (_, i) => f(i) % vocab);

/** Ferry's side of one model: the same measurements as `bench/peers_torch.py`. */
async function measureFerry(device: Device, dir: string, train: boolean) {
  using model = await loadModel(dir, { device });
  const vocab = model.config.vocabSize;
  const prompt = ids(PROMPT, (i) => i * 7919 + 17, vocab);
  const prefill: number[] = [], decode: number[] = [];
  let lastLogits = new Float32Array(0);
  let greedy: number[] = [];
  // Warm-ups at the measured lengths (the JIT settles after a few runs; peers_torch.py does the same).
  for (let w = 0; w < INFER_WARMUP; w++) await generate(model, prompt, { maxNewTokens: NEW + 1 });
  for (let r = 0; r < REPEATS; r++) {
    // The prefill's token, then NEW decode steps: the same forwards as peers_torch.py's decode.
    const g = await generate(model, prompt, { maxNewTokens: NEW + 1 });
    prefill.push((1000 * PROMPT) / g.prefillMs);
    decode.push(g.tokensPerSecond);
    greedy = g.tokens;
  }
  {
    using cache = model.createCache(PROMPT);
    using logits = model.forward(prompt, { cache }).logits; // [P, V]
    lastLogits = (await logits.toArray() as Float32Array).slice((PROMPT - 1) * vocab);
  }
  const out: Record<string, Spread | number[] | Float32Array> = {
    prefill_tokens_per_s: spread(prefill),
    decode_tokens_per_s: spread(decode),
    greedy_ids: greedy,
    last_logits: lastLogits,
  };
  if (train) {
    for (const mode of ["full", "lora"] as const) {
      out[`train_${mode}_tokens_per_s`] = await trainSpeed(dir, device, mode);
    }
  }
  return out;
}

/** Median tokens/s of the timed steps after {@link WARM_STEPS} warm-up steps. */
async function trainSpeed(dir: string, device: Device, mode: "full" | "lora"): Promise<Spread> {
  using model = await loadModel(dir, { device });
  const vocab = model.config.vocabSize;
  const lora = mode === "lora"
    ? applyLora(model, { r: 8, loraAlpha: 16, targetModules: "all-linear" })
    : undefined;
  const total = WARM_STEPS + STEPS;
  const data = Array.from({ length: total * BATCH }, (_, b) => ids(T + 1, (i) => b * 131 + i * 7919, vocab));
  const runDir = await Deno.makeTempDir({ prefix: "ferry-bench-peers-" });
  try {
    using trainer = new Trainer(causalLmTask(model, { lora }), {
      optimizer: { lr: 1e-4, weightDecay: 0 },
      schedule: { totalSteps: total },
      batch: BATCH,
      runDir,
      progress: false,
      logEvery: 1,
      checkpointEvery: 0,
    });
    const fit = await trainer.fit(data);
    const tps = fit.log.table().getChild("tokens_per_s")!.toArray() as Float64Array;
    return spread([...tps.slice(WARM_STEPS)].filter((x) => Number.isFinite(x)));
  } finally {
    lora?.dispose();
    await Deno.remove(runDir, { recursive: true });
  }
}

/** Debian's interpreter, which python3-torch installs into (a `python3` earlier on the PATH may lack it). */
const PYTHON = await Deno.stat("/usr/bin/python3").then(() => "/usr/bin/python3", () => "python3");

/** Whether `python3` can import torch; installs Debian's python3-torch once when it cannot. */
async function ensureTorch(): Promise<string | null> {
  const probe = async () =>
    (await new Deno.Command(PYTHON, { args: ["-c", "import torch"], stdout: "null", stderr: "null" })
      .output().catch(() => ({ success: false }))).success;
  if (await probe()) return null;
  console.error("bench:peers: PyTorch is absent; installing Debian's python3-torch (apt-get, a few minutes)");
  const apt = (a: string[]) =>
    new Deno.Command("apt-get", { args: a, env: { DEBIAN_FRONTEND: "noninteractive" }, stdout: "null" })
      .output()
      .catch(() => ({ success: false }));
  await apt(["update", "-qq"]);
  await apt(["install", "-y", "-qq", "--no-install-recommends", "python3-torch", "libopenblas0-pthread"]);
  return (await probe()) ? null : "python3-torch could not be installed (apt-get as root is needed)";
}

async function measureTorch(): Promise<Record<string, unknown> | string> {
  const why = await ensureTorch();
  if (why) return why;
  const out = await Deno.makeTempFile({ suffix: ".json" });
  const modelArgs = MODELS.flatMap((m) => ["--model", m]);
  const r = await new Deno.Command(PYTHON, {
    args: [
      "bench/peers_torch.py",
      ...modelArgs,
      "--threads",
      String(THREADS),
      "--json",
      out,
      ...(quick ? ["--quick"] : []),
    ],
    env: { OPENBLAS_NUM_THREADS: String(THREADS) },
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!r.success) return `bench/peers_torch.py exited with ${r.code}`;
  const json = JSON.parse(await Deno.readTextFile(out));
  await Deno.remove(out);
  return json;
}

// ---------------------------------------------------------------------------------------

Deno.env.set("FERRY_BLAS_THREADS", String(THREADS)); // read when the BLAS loads, so the device info shows it
const device = await createDevice({ backend: "cpu", blas: true });
if (!device.info.blas) {
  console.error("bench:peers: no BLAS loaded; Ferry's side runs the TypeScript references");
}
console.log(`Ferry: ${device.info.adapter}; PyTorch: one intra-op thread, OPENBLAS_NUM_THREADS=${THREADS}`);

const ferry: Record<string, Record<string, unknown>> = {};
for (const dir of MODELS) {
  console.log(`Ferry: ${name(dir)} …`);
  ferry[name(dir)] = await measureFerry(device, dir, !quick || dir.endsWith("dense"));
}
const torch = flag("--no-torch") ? "skipped (--no-torch)" : await measureTorch();
const torchModels = typeof torch === "string"
  ? {}
  : (torch.models as Record<string, Record<string, unknown>>);

const rows: BenchRow[] = [];
const METRICS = [
  ["prefill_tokens_per_s", "prefill", `P=${PROMPT}`],
  ["decode_tokens_per_s", "decode", `${NEW} tokens after P=${PROMPT}`],
  ["train_full_tokens_per_s", "train full", `T=${T}, batch ${BATCH}, AdamW`],
  ["train_lora_tokens_per_s", "train LoRA r8", `T=${T}, batch ${BATCH}, all linears`],
] as const;
const agreement: Record<string, unknown> = {};
for (const [model, f] of Object.entries(ferry)) {
  const p = torchModels[model] ?? {};
  for (const [key, label, note] of METRICS) {
    const fv = f[key] as Spread | undefined;
    if (!fv) continue;
    const tv = p[key] as Spread | undefined;
    rows.push({
      group: label,
      name: model,
      value: fv.median,
      unit: "tokens/s",
      limit: tv?.median,
      limitName: "PyTorch",
      target: tv ? 0.5 * tv.median : undefined,
      note: `${note}; Ferry ${fv.min.toFixed(0)}–${fv.max.toFixed(0)}` +
        (tv ? `, PyTorch ${tv.min.toFixed(0)}–${tv.max.toFixed(0)}` : ""),
    });
  }
  if (p.last_logits) {
    const a = f.last_logits as Float32Array, b = p.last_logits as number[];
    const maxAbs = a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
    const sameIds = JSON.stringify(f.greedy_ids) === JSON.stringify(p.greedy_ids);
    agreement[model] = { max_abs_logit_diff: maxAbs, same_greedy_ids: sameIds };
    console.log(
      `${model}: last-position logits differ by at most ${maxAbs.toExponential(2)}; greedy ids ${
        sameIds ? "equal" : "DIFFER"
      }`,
    );
  }
}

printTable(
  `Ferry CPU backend vs PyTorch (${THREADS} BLAS thread${
    THREADS === 1 ? "" : "s"
  }; fraction = Ferry / PyTorch, target ≥ 50%)`,
  rows,
);
if (typeof torch === "string") console.log(`PyTorch side: ${torch}`);
const strip = (m: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(m).filter(([k]) => k !== "last_logits" && k !== "greedy_ids"));
await writeJson("bench/results/peers.json", {
  date: new Date().toISOString(),
  command: `deno task bench:peers${args.length ? " " + args.join(" ") : ""}`,
  cores: navigator.hardwareConcurrency,
  threads: THREADS,
  ferry: { deno: Deno.version.deno, device: device.info.adapter, blas: device.info.blas ?? null },
  torch: typeof torch === "string" ? torch : torch.torch,
  agreement,
  ferry_models: Object.fromEntries(Object.entries(ferry).map(([k, v]) => [k, strip(v)])),
  torch_models: Object.fromEntries(Object.entries(torchModels).map(([k, v]) => [k, strip(v)])),
}, rows);
console.log("\nwrote bench/results/peers.json");
device.destroy();
