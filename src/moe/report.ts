/**
 * The counters of one offload run, per phase (prefill, decode), as the systems table reports them
 * (ALGORITHMS.md A.8, D.1.4): decode tokens/s (generated tokens / (wall − prefill), FloE's
 * definition), bytes moved and reloads per decoded token, expert hit rate per MoE layer, host
 * syncs per token and the time in them, the achieved transfer bandwidth, and the ledger's peak by
 * category against the budget.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { openOffloadRuntime } from "./runtime.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using rt = await openOffloadRuntime("test/fixtures/models/mixtral-top2-f32", { device, budgetBytes: 2 ** 22, policy: "ondemand", maxSeq: 12 });
 * const { report } = await rt.generate([1, 5, 9], { maxNewTokens: 4 });
 * assert.equal(report.expertHitRate, 0); // ondemand keeps nothing
 * assert.equal(report.bytesPerToken, report.movedPerToken.demand);
 * assert.ok(report.peakByCategory.staging > 0 && report.peakDeviceBytes <= report.budgetBytes);
 * ```
 * @module
 */
import type { MemoryLedger } from "../device/ledger.ts";
import type { HostExperts } from "./host_experts.ts";
import type { OffloadPolicy } from "./policy.ts";
import { type ExpertTransferStats, type SyncClock, TransferEngine } from "./transfer.ts";

/** What an offload run measured. */
export interface RunReport {
  policy: string;
  /** The policy's settings (slots, eviction, prefetch). */
  policyInfo: Record<string, string | number>;
  budgetBytes: number;
  minimumBytes: number;
  generatedTokens: number;
  prefillMs: number;
  decodeMs: number;
  /** generated tokens / (wall − prefill). */
  decodeTokensPerS: number;
  /** Expert bytes moved per decoded token (demand + prefetch + reload), decode phase. */
  bytesPerToken: number;
  /** The decode phase's bytes per token by kind. */
  movedPerToken: { demand: number; prefetch: number; reload: number };
  /** Expert bytes moved by the prefill. */
  prefillBytes: number;
  /** Bytes moved once at setup (resident experts); not part of the run. */
  setupBytes: number;
  reloadsPerToken: number;
  /** Decode phase: hits / experts needed, over every MoE layer. */
  expertHitRate: number;
  /** Decode phase, per MoE layer (ascending layer index). */
  hitRateByLayer: number[];
  syncsPerToken: number;
  syncMsPerToken: number;
  /** Bytes of settled transfers / their time until usable, GB/s (NaN when nothing moved). */
  transferGBps: number;
  /** Ledger peak over the run (total) and by category. */
  peakDeviceBytes: number;
  peakByCategory: Record<string, number>;
}

interface Phase {
  t0: number;
  ms: number;
  syncs: number;
  syncMs: number;
  transfers: ExpertTransferStats;
  needed: Map<number, number>;
  hits: Map<number, number>;
}

/** What {@link PhaseCounters} reads from the runtime. */
export interface CountedRuntime {
  readonly policy: OffloadPolicy;
  readonly store: HostExperts;
  readonly transfers: TransferEngine;
  readonly clock: SyncClock;
  readonly plan: { budgetBytes: number; minimumBytes: number };
  readonly model: { readonly device: { readonly ledger: MemoryLedger } };
}

const copyStats = (s: ExpertTransferStats): ExpertTransferStats => ({
  ...s,
  count: { ...s.count },
  bytes: { ...s.bytes },
});

/** Accumulates one run's counters, phase by phase. */
export class PhaseCounters {
  readonly #rt: CountedRuntime;
  readonly #setupBytes: number;
  #phases = new Map<string, Phase>();
  #current:
    | { name: string; phase: Phase; syncs0: number; syncMs0: number; t0: ExpertTransferStats }
    | undefined;

  constructor(rt: CountedRuntime) {
    this.#rt = rt;
    this.#setupBytes = rt.transfers.stats.bytes.resident;
  }

  /** Starts a phase; the prefill also starts the ledger's peak window. */
  begin(name: "prefill" | "decode"): void {
    if (name === "prefill") this.#rt.model.device.ledger.resetPeak();
    const phase: Phase = {
      t0: performance.now(),
      ms: 0,
      syncs: 0,
      syncMs: 0,
      transfers: copyStats(this.#rt.transfers.stats),
      needed: new Map(),
      hits: new Map(),
    };
    this.#current = {
      name,
      phase,
      syncs0: this.#rt.clock.syncs,
      syncMs0: this.#rt.clock.syncMs,
      t0: copyStats(this.#rt.transfers.stats),
    };
  }

  /** Ends the current phase (nothing when none is open). */
  end(): void {
    const c = this.#current;
    if (!c) return;
    const now = this.#rt.transfers.stats;
    const diff = (a: Record<string, number>, b: Record<string, number>) =>
      Object.fromEntries(Object.keys(a).map((k) => [k, a[k] - b[k]]));
    c.phase.ms = performance.now() - c.phase.t0;
    c.phase.syncs = this.#rt.clock.syncs - c.syncs0;
    c.phase.syncMs = this.#rt.clock.syncMs - c.syncMs0;
    c.phase.transfers = {
      count: diff(now.count, c.t0.count) as ExpertTransferStats["count"],
      bytes: diff(now.bytes, c.t0.bytes) as ExpertTransferStats["bytes"],
      enqueueMs: now.enqueueMs - c.t0.enqueueMs,
      usableMs: now.usableMs - c.t0.usableMs,
      settledBytes: now.settledBytes - c.t0.settledBytes,
      settled: now.settled - c.t0.settled,
    };
    this.#phases.set(c.name, c.phase);
    this.#current = undefined;
  }

  /** Records that `needed` experts of `layer` were asked for, `hits` of them already on the device. */
  layer(layer: number, needed: number, hits: number): void {
    const p = this.#current?.phase;
    if (!p) return;
    p.needed.set(layer, (p.needed.get(layer) ?? 0) + needed);
    p.hits.set(layer, (p.hits.get(layer) ?? 0) + hits);
  }

  /** The report of the phases that ran (a phase that did not run counts as empty). */
  report(generatedTokens: number): RunReport {
    const empty = (): Phase => ({
      t0: 0,
      ms: 0,
      syncs: 0,
      syncMs: 0,
      transfers: TransferEngine.emptyStats(),
      needed: new Map(),
      hits: new Map(),
    });
    const pre = this.#phases.get("prefill") ?? empty();
    const dec = this.#phases.get("decode") ?? empty();
    const steps = Math.max(1, generatedTokens - 1);
    const moved = (t: ExpertTransferStats) => t.bytes.demand + t.bytes.prefetch + t.bytes.reload;
    const layers = this.#rt.store.layers;
    const sum = (m: Map<number, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    const ledger = this.#rt.model.device.ledger;
    const settledBytes = pre.transfers.settledBytes + dec.transfers.settledBytes;
    const usableMs = pre.transfers.usableMs + dec.transfers.usableMs;
    return {
      policy: this.#rt.policy.name,
      policyInfo: this.#rt.policy.describe(),
      budgetBytes: this.#rt.plan.budgetBytes,
      minimumBytes: this.#rt.plan.minimumBytes,
      generatedTokens,
      prefillMs: pre.ms,
      decodeMs: dec.ms,
      decodeTokensPerS: dec.ms > 0 ? (1000 * generatedTokens) / dec.ms : 0,
      bytesPerToken: moved(dec.transfers) / steps,
      movedPerToken: {
        demand: dec.transfers.bytes.demand / steps,
        prefetch: dec.transfers.bytes.prefetch / steps,
        reload: dec.transfers.bytes.reload / steps,
      },
      prefillBytes: moved(pre.transfers),
      setupBytes: this.#setupBytes,
      reloadsPerToken: dec.transfers.count.reload / steps,
      expertHitRate: sum(dec.needed) > 0 ? sum(dec.hits) / sum(dec.needed) : NaN,
      hitRateByLayer: layers.map((l) => {
        const n = dec.needed.get(l) ?? 0;
        return n > 0 ? (dec.hits.get(l) ?? 0) / n : NaN;
      }),
      syncsPerToken: dec.syncs / steps,
      syncMsPerToken: dec.syncMs / steps,
      transferGBps: usableMs > 0 ? settledBytes / usableMs / 1e6 : NaN,
      peakDeviceBytes: ledger.peak(),
      peakByCategory: Object.fromEntries(ledger.usage().map((u) => [u.category, u.peak])),
    };
  }
}
