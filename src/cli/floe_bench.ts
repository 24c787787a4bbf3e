/**
 * `ferry floe bench`: the systems table (ALGORITHMS.md D.1.4) of the offload policies on one model,
 * budget, prompt and token count: printed, and written as JSON (one object per policy) and Arrow
 * (same path, `.arrow`), both atomically.
 * @module
 */
import { tableToIPC } from "apache-arrow";
import { formatBytes } from "../device/ledger.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { MetricLog } from "../metrics/metric_log.ts";
import { offloadBench } from "../moe/bench.ts";
import { POLICY_NAMES } from "../moe/policy.ts";
import { checkpointTensors } from "../models/weights.ts";
import {
  noPositionals,
  parseBackend,
  parseChoice,
  parseFlags,
  parseInteger,
  readModelDir,
  required,
  str,
  UsageError,
} from "./_common.ts";
import { parseBytes, parseSparsity, parseUpBits } from "./_floe_args.ts";
import { checkOut, makeOutFolder } from "./_out.ts";
import { printPlans, printProjection, sweepAndCache } from "./_floe_bench_extras.ts";

export const FLOE_BENCH_USAGE =
  `  floe bench           the offload policies' systems table (decode tok/s, bytes/token, hit rate, syncs)
      --model DIR          HF checkpoint folder of a MoE model
      --budget B           device budget: bytes (700000000, 700MB, 1.5GiB) or a percentage of the
                           experts' f16 bytes (12%)
      --policies P         comma-separated from ${POLICY_NAMES.join(", ")} (default ondemand,cached,floe)
      --sparsity S         floe's sparsity (default 0.9)
      --up-bits B          floe's up projection bits, 2 | 3 | 4 | 16 (default 2)
      --group-size G       HQQ group size of floe's up and the cached experts (default 64)
      --floe-dense-layers L  MoE layers floe keeps dense and resident (default: the first; "none")
      --floe-channels C    predicted (FloE's runtime, default) | exact (reload the channels it missed)
      --cache-bits B       cached experts: 16 (f32) | 4 | 2 (HQQ; default 4)
      --cache-eviction E   lru | lfu (default lru)
      --cache-slots N      cap on the cached experts (default: as many as the budget leaves)
      --cache-prefetch     cached: prefetch the next layer's experts by its router
      --prompt-tokens P    prompt length (default 16)
      --tokens N           tokens to generate (default 16)
      --prefill-chunk N    prompt tokens per prefill forward (default: the whole prompt); smaller chunks
                           shrink the activation reserve at the cost of streaming experts once per chunk
      --json FILE          write the table as JSON (one object per policy) and Arrow (FILE with .arrow)
      --project            also project decode tok/s for Mixtral-8x7B on an RTX 3090 and an H100
      --sweep-budgets L    also run the policies at each budget of L (e.g. 10%,20%,40%) and the cache table
                           (LRU and LFU hit rate per layer at K, 2K, 4K, 8K experts); with --json, writes
                           FILE_sweep.json, FILE_cache.json (and .arrow) and FILE_report.html
      --quant-cache DIR    keep the HQQ-quantized experts (cached) and up projections (floe) in DIR between
                           runs (quantized once; a file from another checkpoint or settings is replaced)
      --plan               print each policy's smallest accepted budget and its breakdown (weights, KV cache,
                           activations, the policy's own), run nothing; --budget is then optional
      --dtype D            device storage of the weights and experts: f32 (default) | f16 (half the
                           bytes resident and moved; the kernels widen in registers)
      --backend B          auto | webgpu | cpu (default auto)`;

const FLAGS = {
  model: { type: "string" },
  budget: { type: "string" },
  policies: { type: "string" },
  sparsity: { type: "string" },
  "up-bits": { type: "string" },
  "group-size": { type: "string" },
  "floe-dense-layers": { type: "string" },
  "floe-channels": { type: "string" },
  "cache-bits": { type: "string" },
  "cache-eviction": { type: "string" },
  "cache-slots": { type: "string" },
  "cache-prefetch": { type: "boolean" },
  "prompt-tokens": { type: "string" },
  tokens: { type: "string" },
  json: { type: "string" },
  project: { type: "boolean" },
  "sweep-budgets": { type: "string" },
  backend: { type: "string" },
  dtype: { type: "string" },
  plan: { type: "boolean" },
  "quant-cache": { type: "string" },
  "prefill-chunk": { type: "string" },
} as const;

/** Runs `ferry floe bench`. */
export async function floeBenchCommand(args: string[]): Promise<number> {
  const cmd = "floe bench";
  const { values, positionals } = parseFlags(cmd, args, FLAGS);
  if (values.help) {
    console.log(`usage: deno task ferry floe bench --model DIR --budget B [options]\n\n${FLOE_BENCH_USAGE}`);
    return 0;
  }
  noPositionals(cmd, positionals);
  const dir = required(cmd, values, "model", "DIR");
  const policies = (str(values, "policies") ?? "ondemand,cached,floe").split(",").map((p) => p.trim());
  for (const p of policies) {
    if (!(POLICY_NAMES as readonly string[]).includes(p)) {
      throw new UsageError(
        `${cmd}: unknown policy "${p}" in --policies: expected some of ${POLICY_NAMES.join(", ")}`,
      );
    }
  }
  const sparsity = parseSparsity(cmd, str(values, "sparsity") ?? "0.9");
  const upBits = parseUpBits(cmd, str(values, "up-bits") ?? "2");
  const groupSize = parseInteger(cmd, "group-size", str(values, "group-size") ?? "64", 1);
  const channels = parseChoice(cmd, "floe-channels", str(values, "floe-channels") ?? "predicted", [
    "predicted",
    "exact",
  ]);
  const denseText = str(values, "floe-dense-layers");
  const denseLayers = denseText === undefined
    ? undefined
    : denseText.trim() === "none"
    ? []
    : denseText.split(",").map((l) => parseInteger(cmd, "floe-dense-layers", l, 0));
  const cacheBits = parseChoice(cmd, "cache-bits", str(values, "cache-bits") ?? "4", ["16", "4", "2"]);
  const eviction = parseChoice(cmd, "cache-eviction", str(values, "cache-eviction") ?? "lru", ["lru", "lfu"]);
  const quantCache = str(values, "quant-cache");
  const cached = {
    quantCache,
    bits: Number(cacheBits) as 16 | 4 | 2,
    groupSize,
    eviction,
    prefetch: values["cache-prefetch"] === true,
    maxSlots: str(values, "cache-slots") === undefined
      ? undefined
      : parseInteger(cmd, "cache-slots", str(values, "cache-slots")!, 1),
  };
  const promptTokens = parseInteger(cmd, "prompt-tokens", str(values, "prompt-tokens") ?? "16", 1);
  const tokens = parseInteger(cmd, "tokens", str(values, "tokens") ?? "16", 2);
  const chunkText = str(values, "prefill-chunk");
  const prefillChunk = chunkText === undefined ? undefined : parseInteger(cmd, "prefill-chunk", chunkText, 1);
  const json = str(values, "json");
  const backend = parseBackend(cmd, values);
  const dtype = parseChoice(cmd, "dtype", str(values, "dtype") ?? "f32", ["f32", "f16"]);
  if (json !== undefined) await checkOut(cmd, json, "file", [{ flag: "--model", path: dir }]);
  const { config } = await readModelDir(cmd, dir);
  if (config.numExperts === 0 || !config.moeLayers.some((m) => m)) {
    throw new UsageError(
      `${cmd}: --model ${dir} has no MoE layers (${config.modelType}); pass a MoE checkpoint`,
    );
  }
  const notMoe = denseLayers?.find((l) => !config.moeLayers[l]);
  if (notMoe !== undefined) {
    throw new UsageError(`${cmd}: --floe-dense-layers ${notMoe} is not a MoE layer of ${dir}`);
  }
  const expertParams = checkpointTensors(config).filter((t) => t.expert !== undefined)
    .reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
  const percentOf = { bytes: 2 * expertParams, what: "the experts' f16 bytes" };
  const settings = { floe: { sparsity, upBits, groupSize, channels, denseLayers, quantCache }, cached };
  if (values.plan) {
    const budget = str(values, "budget");
    const run = { policies, promptTokens, tokens, backend, settings, dtype, prefillChunk };
    await printPlans(
      dir,
      run,
      budget === undefined ? undefined : parseBytes(cmd, "budget", budget, percentOf),
      json,
    );
    return 0;
  }
  const budgetBytes = parseBytes(cmd, "budget", required(cmd, values, "budget", "BYTES"), percentOf);

  const sweepText = str(values, "sweep-budgets");
  const sweep = sweepText?.split(",").map((b) => parseBytes(cmd, "sweep-budgets", b, percentOf));
  const bench = await offloadBench(dir, {
    budgetBytes,
    policies,
    promptTokens,
    tokens,
    backend,
    dtype,
    prefillChunk,
    settings,
  });
  if (bench.rows.every((r) => !r.fits)) {
    throw new UsageError(
      `${cmd}: no policy fits the budget of ${formatBytes(budgetBytes)}: ${
        bench.rows[0].error.replace(/^Cannot [^:]*: /, "")
      }`,
    );
  }
  console.log(
    `${dir}: budget ${formatBytes(budgetBytes)} (${
      (100 * budgetBytes / (2 * expertParams)).toFixed(1)
    }% of ` +
      `${
        formatBytes(2 * expertParams)
      } f16 experts), ${dtype} weights on the device, ${promptTokens} prompt + ${tokens} tokens, ${bench.device}, ` +
      `measured upload ${bench.uploadGBps.toFixed(2)} GB/s`,
  );
  const f = (v: number, d = 2) => Number.isFinite(v) ? v.toFixed(d) : "-";
  const header = [
    "policy",
    "decode tok/s",
    "prefill s",
    "MB/token",
    "reloads/tok",
    "hit rate",
    "syncs/tok",
    "sync ms/tok",
    "GB/s",
    "peak MiB",
    "settings",
  ];
  const lines = bench.rows.map((r) =>
    r.fits
      ? [
        r.policy,
        f(r.decode_tokens_per_s),
        f(r.prefill_s, 3),
        f(r.bytes_per_token / 1e6, 3),
        f(r.reloads_per_token),
        f(r.expert_hit_rate, 3),
        f(r.syncs_per_token, 1),
        f(r.sync_ms_per_token),
        f(r.transfer_gbps),
        f(r.peak_device_bytes / 2 ** 20, 1),
        r.settings,
      ]
      : [r.policy, "does not fit (below)"]
  );
  const widths = header.map((h, i) =>
    Math.max(h.length, ...lines.filter((l) => l.length > 2).map((l) => (l[i] ?? "").length))
  );
  for (const l of [header, ...lines]) {
    console.log(l.map((c, i) => (c ?? "").padEnd(widths[i])).join("  ").trimEnd());
  }
  for (const r of bench.rows) {
    if (r.error) console.log(`${r.policy} ${r.fits ? "stopped" : "does not fit"}: ${r.error}`);
  }

  const cachedBits = cached.bits === 16 ? 16 : cached.bits + 32 / groupSize; // codes + one u32 per group
  const projected = values.project ? printProjection(bench.rows, { sparsity, upBits }, cachedBits) : [];
  if (json !== undefined) {
    const meta = {
      model: dir,
      device: bench.device,
      date: new Date().toISOString(),
      upload_gbps: bench.uploadGBps,
      sparsity,
      up_bits: upBits,
      prompt_tokens: promptTokens,
      tokens,
    };
    const objects = bench.rows.map((r, i) => ({ ...r, ...meta, ...projected[i] }));
    await makeOutFolder(json);
    await writeFileAtomic(json, JSON.stringify(objects, null, 2) + "\n");
    const log = new MetricLog();
    for (const o of objects) {
      const { peak_by_category: peaks, ...flat } = o;
      const byCategory = Object.fromEntries(Object.entries(peaks).map(([k, v]) => [`peak_${k}_bytes`, v]));
      log.log({
        ...flat,
        ...byCategory,
        hit_rate_by_layer: o.hit_rate_by_layer.map((v) => f(v, 3)).join(" "),
      });
    }
    const arrow = json.replace(/\.json$/i, "") + ".arrow";
    await writeFileAtomic(arrow, tableToIPC(log.table(), "file"));
    console.log(`wrote ${json} and ${arrow}`);
  }
  if (sweep) {
    await sweepAndCache(
      dir,
      json,
      sweep,
      { policies, promptTokens, tokens, backend, settings, dtype, prefillChunk },
      config.topK * 2,
    );
  }
  return 0;
}
