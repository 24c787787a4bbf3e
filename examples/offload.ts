/**
 * FloE's offload runtime on the embedded MoE (brown-moe): the systems table of the policies under
 * one device budget, decode tokens/s against the budget, and the projection of the measured
 * traffic to Mixtral-8x7B on an RTX 3090 and an H100. Notebook twin: `notebooks/04_offload.ipynb`.
 * The same from the command line: `deno task ferry floe bench --model examples/models/brown-moe
 * --budget 250% --sweep-budgets 150%,250%,400% --project`.
 *
 * Run: `deno run -A examples/offload.ts` (under a minute on the CPU backend).
 * @module
 */
import {
  budgetSweep,
  checkpointTensors,
  DEVICE_PROFILES,
  hasWebGpu,
  lineChart,
  MetricLog,
  MIXTRAL_8X7B,
  offloadBench,
  parseModelConfig,
  projectDecode,
  readHfConfig,
  showFigure,
  trafficOf,
} from "../src/mod.ts";

const dir = new URL("./models/brown-moe/", import.meta.url).pathname;
const backend = (await hasWebGpu()) ? "webgpu" : "cpu";
const config = parseModelConfig(await readHfConfig(dir));
const expertF16 = 2 * checkpointTensors(config).filter((t) => t.expert !== undefined)
  .reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
const run = {
  policies: ["ondemand", "cached", "floe", "resident"],
  promptTokens: 16,
  tokens: 8,
  backend,
  settings: { cached: { bits: 4 as const }, floe: { sparsity: 0.9 } },
} as const;

// 1. The systems table at 250% of the f16 expert bytes (brown-moe's non-expert weights outweigh its experts).
const bench = await offloadBench(dir, { ...run, budgetBytes: Math.floor(2.5 * expertF16) });
const table = new MetricLog();
for (const r of bench.rows) {
  table.log({
    policy: r.policy,
    fits: r.fits,
    decode_tokens_per_s: r.decode_tokens_per_s,
    bytes_per_token: r.bytes_per_token,
    reloads_per_token: r.reloads_per_token,
    expert_hit_rate: r.expert_hit_rate,
    syncs_per_token: r.syncs_per_token,
    peak_device_bytes: r.peak_device_bytes,
  });
}
console.log(`${bench.device}, measured upload ${bench.uploadGBps.toFixed(2)} GB/s`);
console.log(table.format());

// 2. Decode tokens/s against the budget.
const sweep = await budgetSweep(dir, [1.5, 2.5, 4].map((f) => Math.floor(f * expertF16)), run);
await showFigure(
  lineChart(sweep.filter((r) => r.fits).map((r) => ({ ...r, budget_mib: r.budget_bytes / 2 ** 20 })), {
    x: "budget_mib",
    y: "decode_tokens_per_s",
    groupBy: "policy",
    title: "brown-moe: decode tokens/s against the device budget",
    xTitle: "budget (MiB)",
  }),
);

// 3. The measured traffic projected to Mixtral-8x7B (cached at 4 bits + g64 metadata).
const projection = new MetricLog();
for (const device of Object.values(DEVICE_PROFILES)) {
  for (const r of bench.rows.filter((r) => r.fits)) {
    const moved = {
      demand: r.demand_bytes_per_token,
      prefetch: r.prefetch_bytes_per_token,
      reload: r.reload_bytes_per_token,
    };
    const extra = r.policy === "floe"
      ? { sparsity: 0.9, upBits: 2 }
      : r.policy === "cached"
      ? { expertBits: 4.5 }
      : {};
    const p = projectDecode(
      trafficOf(r.policy, moved, r.expert_bytes, r.moe_layers, r.syncs_per_token, extra),
      MIXTRAL_8X7B,
      device,
    );
    projection.log({ device: device.name, policy: r.policy, tokens_per_s: p.tokensPerS });
  }
}
console.log(projection.format());
