/**
 * The budget sweep (decode tokens/s against the device budget, per policy) and the cache table
 * (ALGORITHMS.md D.1.5: the `cached` policy's expert hit rate per layer for LRU and LFU and several
 * cache sizes), both as flat rows for JSON, Arrow and a Plotly figure.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cacheTable } from "./sweep.ts";
 * const rows = await cacheTable("test/fixtures/models/mixtral-top2-f32", {
 *   slots: [2, 4], promptTokens: 4, tokens: 4, backend: "cpu", bits: 16,
 * });
 * assert.equal(rows.length, 2 * 2 * 2); // (lru, lfu) × 2 sizes × 2 MoE layers
 * ```
 * @module
 */
import { type BenchRow, offloadBench, type OffloadBenchOptions } from "./bench.ts";
import { CachedPolicy } from "./policies/cached.ts";

/** One row of the budget sweep. */
export type SweepRow = BenchRow;

/** Runs the systems table once per budget; rows carry `budget_bytes`. */
export async function budgetSweep(
  dir: string,
  budgets: readonly number[],
  options: Omit<OffloadBenchOptions, "budgetBytes">,
): Promise<SweepRow[]> {
  const rows: SweepRow[] = [];
  for (const budgetBytes of budgets) {
    rows.push(...(await offloadBench(dir, { ...options, budgetBytes })).rows);
  }
  return rows;
}

/** One row of the cache table. */
export interface CacheRow {
  eviction: "lru" | "lfu";
  slots: number;
  /** Index among the MoE layers (ascending decoder layers). */
  moe_layer: number;
  hit_rate: number;
  /** Over every MoE layer. */
  mean_hit_rate: number;
}

/** Options of {@link cacheTable}. */
export interface CacheTableOptions {
  /** Cache sizes in experts. */
  slots: readonly number[];
  promptTokens: number;
  tokens: number;
  backend?: "auto" | "webgpu" | "cpu";
  /** Bits of the cached experts (default 16). */
  bits?: 16 | 4 | 2;
  groupSize?: number;
}

/** Decode-phase hit rate per MoE layer of LRU and LFU caches of each size (no budget limit). */
export async function cacheTable(dir: string, options: CacheTableOptions): Promise<CacheRow[]> {
  const { slots, bits = 16, groupSize = 64, ...run } = options;
  const rows: CacheRow[] = [];
  for (const eviction of ["lru", "lfu"] as const) {
    const policies = slots.map((maxSlots) => () => new CachedPolicy({ eviction, maxSlots, bits, groupSize }));
    const bench = await offloadBench(dir, { ...run, budgetBytes: Number.MAX_SAFE_INTEGER, policies });
    bench.rows.forEach((r, i) => {
      const layers = r.hit_rate_by_layer;
      const moe = Array.from({ length: r.moe_layers }, (_, j) => j);
      for (const j of moe) {
        rows.push({
          eviction,
          slots: slots[i],
          moe_layer: j,
          hit_rate: layers[j],
          mean_hit_rate: r.expert_hit_rate,
        });
      }
    });
  }
  return rows;
}
