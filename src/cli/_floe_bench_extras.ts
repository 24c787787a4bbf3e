/**
 * The optional parts of `ferry floe bench`: the hardware projection table (`--project`), the
 * budget sweep with the cache table (`--sweep-budgets`) and the minimum budgets (`--plan`).
 * @module
 */
import { tableToIPC } from "apache-arrow";
import { formatBytes } from "../device/ledger.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { MetricLog } from "../metrics/metric_log.ts";
import type { BenchRow, OffloadBenchOptions } from "../moe/bench.ts";
import { DEVICE_PROFILES, MIXTRAL_8X7B, projectDecode, trafficOf } from "../moe/projection.ts";
import { offloadPlans } from "../moe/plans.ts";
import { makeOutFolder } from "./_out.ts";
import { budgetSweep, cacheTable } from "../moe/sweep.ts";
import { barChart, lineChart } from "../plot/figure.ts";
import { writeReport } from "../plot/report.ts";

/** The budget sweep and the cache table: printed, and with `json` written beside it with a report. */
export async function sweepAndCache(
  dir: string,
  json: string | undefined,
  budgets: number[],
  run: Omit<OffloadBenchOptions, "budgetBytes">,
  k2: number,
): Promise<void> {
  const sweep = await budgetSweep(dir, budgets, run);
  console.log("\nbudget sweep (decode tok/s):");
  for (const r of sweep) {
    const v = r.fits ? r.decode_tokens_per_s.toFixed(2) : "does not fit";
    console.log(`  ${formatBytes(r.budget_bytes).padStart(10)}  ${r.policy.padEnd(9)} ${v}`);
  }
  const cache = await cacheTable(dir, {
    slots: [k2 / 2, k2, 2 * k2, 4 * k2],
    promptTokens: run.promptTokens,
    tokens: run.tokens,
    backend: run.backend,
    bits: run.settings?.cached?.bits,
    groupSize: run.settings?.cached?.groupSize,
  });
  console.log("cache table (decode hit rate per MoE layer):");
  for (const ev of ["lru", "lfu"]) {
    for (const n of [...new Set(cache.map((r) => r.slots))]) {
      const rs = cache.filter((r) => r.eviction === ev && r.slots === n);
      console.log(
        `  ${ev} ${String(n).padStart(3)} experts: ${rs.map((r) => r.hit_rate.toFixed(2)).join(" ")} (mean ${
          rs[0].mean_hit_rate.toFixed(3)
        })`,
      );
    }
  }
  if (json === undefined) return;
  const base = json.replace(/\.json$/i, "");
  const sweepRows = sweep.map(({ peak_by_category: _p, ...r }) => ({
    ...r,
    hit_rate_by_layer: r.hit_rate_by_layer.join(" "),
    budget_mib: r.budget_bytes / 2 ** 20,
  }));
  const write = async (name: string, rows: Record<string, unknown>[]) => {
    await writeFileAtomic(`${base}_${name}.json`, JSON.stringify(rows, null, 2) + "\n");
    const log = new MetricLog();
    for (const r of rows) log.log(r as Record<string, string | number | boolean>);
    await writeFileAtomic(`${base}_${name}.arrow`, tableToIPC(log.table(), "file"));
  };
  await write("sweep", sweepRows);
  await write("cache", cache.map((r) => ({ ...r })));
  await writeReport(`${base}_report.html`, `Offload policies on ${dir}`, [
    {
      figure: lineChart(sweepRows.filter((r) => r.fits), {
        x: "budget_mib",
        y: "decode_tokens_per_s",
        groupBy: "policy",
        title: "Decode tokens/s against the device budget",
        xTitle: "budget (MiB)",
      }),
    },
    {
      heading: "Cache table (D.1.5)",
      figure: barChart(cache.map((r) => ({ ...r, cache: `${r.eviction} ${r.slots}` })), {
        x: "moe_layer",
        y: "hit_rate",
        groupBy: "cache",
        title: "Expert hit rate per MoE layer",
      }),
    },
  ]);
  console.log(`wrote ${base}_sweep.json, ${base}_cache.json (and .arrow), ${base}_report.html`);
}

/** Prints the projection table; returns per row `projected_tokens_per_s_<device>`. */
export function printProjection(
  rows: readonly BenchRow[],
  floe: { sparsity: number; upBits: number },
  cacheBits: number,
): Record<string, number>[] {
  const out = rows.map(() => ({} as Record<string, number>));
  console.log(
    `\nprojected decode tok/s for ${MIXTRAL_8X7B.name} (f16 experts; cached at ${cacheBits} bits per weight), ` +
      "from the measured traffic:",
  );
  for (const [key, device] of Object.entries(DEVICE_PROFILES)) {
    const by = new Map<string, number>();
    rows.forEach((r, i) => {
      if (!r.fits) return;
      const moved = {
        demand: r.demand_bytes_per_token,
        prefetch: r.prefetch_bytes_per_token,
        reload: r.reload_bytes_per_token,
      };
      const extra = r.policy === "floe" ? floe : r.policy === "cached" ? { expertBits: cacheBits } : {};
      const p = projectDecode(
        trafficOf(r.policy, moved, r.expert_bytes, r.moe_layers, r.syncs_per_token, extra),
        MIXTRAL_8X7B,
        device,
      );
      out[i][`projected_tokens_per_s_${key}`] = p.tokensPerS;
      by.set(r.policy, p.tokensPerS);
      console.log(
        `  ${device.name.padEnd(24)} ${r.policy.padEnd(9)} ${
          Number.isFinite(p.tokensPerS) ? p.tokensPerS.toFixed(2).padStart(8) : "no fit".padStart(8)
        } tok/s  (compute ${p.computeMs.toFixed(1)} ms, overlapped ${p.overlapMs.toFixed(1)} ms, waited ` +
          `${p.blockingMs.toFixed(1)} ms)`,
      );
    });
    const f = by.get("floe");
    const ratio = (other: string) => f && by.get(other) ? (f / by.get(other)!).toFixed(1) + "x" : "-";
    console.log(
      `  ${device.name}: floe/ondemand ${ratio("ondemand")} (FloE reports 48.7x over DeepSpeed-MII), ` +
        `floe/cached ${ratio("cached")} (2.6x over mixtral-offloading)`,
    );
  }
  return out;
}

/** `--plan`: each policy's smallest accepted budget and its parts, printed (and written with `json`). */
export async function printPlans(
  dir: string,
  run: Omit<OffloadBenchOptions, "budgetBytes">,
  budgetBytes: number | undefined,
  json: string | undefined,
): Promise<void> {
  const rows = await offloadPlans(dir, run);
  const pct = (b: number) => `${(100 * b / rows[0].expert_f16_bytes).toFixed(1)}%`;
  console.log(
    `${dir}: smallest budgets with ${
      run.dtype ?? "f32"
    } weights on the device, ${run.promptTokens} prompt + ` +
      `${run.tokens} tokens (% of the ${
        formatBytes(rows[0].expert_f16_bytes)
      } of f16 experts; the setup scratch ` +
      "shares the activations' room)",
  );
  const header = [
    "policy",
    "minimum",
    "% experts",
    "weights",
    "KV cache",
    "activations",
    "staging",
    "setup",
    "policy's own",
  ];
  const lines = rows.map((r) => [
    r.policy,
    formatBytes(r.minimum_bytes),
    pct(r.minimum_bytes),
    formatBytes(r.held_bytes),
    formatBytes(r.kv_bytes),
    formatBytes(r.activation_bytes),
    formatBytes(r.transfer_bytes),
    formatBytes(r.setup_bytes),
    formatBytes(r.policy_bytes),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  for (const l of [header, ...lines]) console.log(l.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd());
  if (budgetBytes !== undefined) {
    for (const r of rows) {
      const fits = r.minimum_bytes <= budgetBytes;
      console.log(
        `${r.policy}: ${fits ? "fits" : "does not fit"} a budget of ${formatBytes(budgetBytes)} (${
          pct(budgetBytes)
        })`,
      );
    }
  }
  if (json !== undefined) {
    const objects = rows.map((r) => ({
      ...r,
      budget_bytes: budgetBytes ?? null,
      model: dir,
      date: new Date().toISOString(),
    }));
    await makeOutFolder(json);
    await writeFileAtomic(json, JSON.stringify(objects, null, 2) + "\n");
    console.log(`wrote ${json}`);
  }
}
