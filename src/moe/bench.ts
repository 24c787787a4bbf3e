/**
 * The systems table (ALGORITHMS.md D.1.4): one offload run per policy on the same model, budget,
 * prompt and token count, each on a fresh device whose ledger enforces the budget, plus the
 * device's measured upload bandwidth (the ceiling the achieved transfer rate is read against).
 * A policy whose minimum does not fit the budget gets a row that says so instead of numbers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { offloadBench } from "./bench.ts";
 * const bench = await offloadBench("test/fixtures/models/mixtral-top2-f32", {
 *   budgetBytes: 2 ** 22, policies: ["ondemand", "resident"], promptTokens: 4, tokens: 3, backend: "cpu",
 * });
 * assert.equal(bench.rows.length, 2);
 * assert.ok(bench.rows[0].fits && bench.rows[0].bytes_per_token > 0);
 * ```
 * @module
 */
import { createDevice } from "../device/create_device.ts";
import type { Device } from "../device/device.ts";
import { OutOfBudgetError } from "../errors.ts";
import { loadModel } from "../models/load.ts";
import { Tensor } from "../tensor/tensor.ts";
import { HostExperts } from "./host_experts.ts";
import { CachedPolicy } from "./policies/cached.ts";
import type { OffloadPolicy } from "./policy.ts";
import { createPolicy, type PolicySettings } from "./create_policy.ts";
import { OffloadRunLostError, OffloadRuntime } from "./runtime.ts";

/** Options of {@link offloadBench}. */
export interface OffloadBenchOptions {
  budgetBytes: number;
  /** Policy names (built with {@link createPolicy}) or factories. */
  policies: readonly (string | (() => OffloadPolicy))[];
  promptTokens: number;
  tokens: number;
  backend?: "auto" | "webgpu" | "cpu";
  /** Settings of the policies given by name. */
  settings?: PolicySettings;
  /** Device storage of the weights and experts (default f32; as `OpenOffloadOptions.dtype`). */
  dtype?: "f32" | "f16";
  /** Tokens per prefill forward (default: the prompt, one forward). */
  prefillChunk?: number;
}

/** One row of the systems table (snake_case: the JSON and Arrow column names). */
export interface BenchRow {
  policy: string;
  /** Device storage of the weights and experts (`f32` or `f16`). */
  weights_dtype: string;
  /** The policy's settings, `key=value` joined. */
  settings: string;
  fits: boolean;
  /** Why the policy did not run (its minimum is above the budget), or why it stopped (the device was lost). */
  error: string;
  decode_tokens_per_s: number;
  prefill_s: number;
  bytes_per_token: number;
  demand_bytes_per_token: number;
  prefetch_bytes_per_token: number;
  reload_bytes_per_token: number;
  reloads_per_token: number;
  expert_hit_rate: number;
  syncs_per_token: number;
  sync_ms_per_token: number;
  transfer_gbps: number;
  peak_device_bytes: number;
  /** Ledger peak by category over the run (`weights`, `experts`, `cache`, `staging`, `kv`, `activations`, …). */
  peak_by_category: Record<string, number>;
  budget_bytes: number;
  minimum_bytes: number;
  /** Per MoE layer, decode phase. */
  hit_rate_by_layer: number[];
  /** One whole expert of the measured model as this policy moves it (f32, or packed for a quantized cache), and its MoE layers (for the projection). */
  expert_bytes: number;
  moe_layers: number;
}

/** What {@link offloadBench} measured. */
export interface OffloadBench {
  rows: BenchRow[];
  /** Host-to-device upload bandwidth measured on the device, GB/s. */
  uploadGBps: number;
  /** The adapter that ran it. */
  device: string;
  /** The prompt's token ids. */
  prompt: number[];
}

/**
 * Upload bandwidth of `device`, GB/s: `bytes` written with one upload and waited for (a sync),
 * median of `repeats`; the sync's own cost is included, as it is for any transfer a decode waits on.
 */
export async function measureUploadBandwidth(
  device: Device,
  bytes = 64 * 2 ** 20,
  repeats = 3,
): Promise<number> {
  const n = Math.max(1, Math.floor(bytes / 4));
  using t = Tensor.empty(device, [n], { category: "staging", label: "bandwidth" });
  const data = new Float32Array(n).fill(1);
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    device.upload(t.storage, data);
    await device.flush();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return (n * 4) / times[Math.floor(times.length / 2)] / 1e6;
}

/** Runs every policy on `dir` and returns the table rows. */
export async function offloadBench(dir: string, options: OffloadBenchOptions): Promise<OffloadBench> {
  const { budgetBytes, promptTokens: P, tokens: N, backend = "auto", dtype = "f32" } = options;
  const makers = options.policies.map((p) =>
    typeof p === "string" ? () => createPolicy(p, options.settings) : p
  );
  makers.forEach((m) => m().dispose()); // an unknown name fails before anything is loaded
  const store = await HostExperts.fromCheckpoint(dir, { deviceDType: dtype });
  const V = store.config.vocabSize;
  const prompt = Array.from({ length: P }, (_, i) => (i * 7919 + 11) % V);
  const probe = await createDevice({ backend });
  const uploadGBps = await measureUploadBandwidth(probe, Math.min(64 * 2 ** 20, Math.floor(budgetBytes / 2)));
  const adapter = probe.info.adapter;
  probe.destroy();
  const rows: BenchRow[] = [];
  for (const make of makers) {
    const policy = make();
    const device = await createDevice({ backend, budgetBytes });
    try {
      const model = await loadModel(dir, { device, experts: "skip", dtype }).catch((err) => {
        if (!(err instanceof OutOfBudgetError)) throw err;
        throw new OutOfBudgetError(`the model's non-expert weights alone exceed the budget (${err.message})`);
      });
      let rt: OffloadRuntime;
      try {
        rt = await OffloadRuntime.create(model, store, {
          budgetBytes,
          policy,
          maxSeq: P + N,
          prefillChunk: options.prefillChunk ?? P,
        });
      } catch (err) {
        model.dispose();
        throw err;
      }
      using _rt = rt;
      let lost = "";
      const { report: r } = await rt.generate(prompt, { maxNewTokens: N }).catch((err) => {
        if (!(err instanceof OffloadRunLostError)) throw err;
        lost = err.message;
        return err.partial;
      });
      rows.push({
        policy: r.policy,
        weights_dtype: dtype,
        settings: Object.entries(r.policyInfo).map(([k, v]) => `${k}=${v}`).join(" "),
        fits: true,
        error: lost,
        decode_tokens_per_s: r.decodeTokensPerS,
        prefill_s: r.prefillMs / 1000,
        bytes_per_token: r.bytesPerToken,
        demand_bytes_per_token: r.movedPerToken.demand,
        prefetch_bytes_per_token: r.movedPerToken.prefetch,
        reload_bytes_per_token: r.movedPerToken.reload,
        reloads_per_token: r.reloadsPerToken,
        expert_hit_rate: r.expertHitRate,
        syncs_per_token: r.syncsPerToken,
        sync_ms_per_token: r.syncMsPerToken,
        transfer_gbps: r.transferGBps,
        peak_device_bytes: r.peakDeviceBytes,
        peak_by_category: r.peakByCategory,
        budget_bytes: budgetBytes,
        minimum_bytes: r.minimumBytes,
        hit_rate_by_layer: r.hitRateByLayer,
        expert_bytes: policy instanceof CachedPolicy ? policy.slotBytes(store) : store.expertBytes(),
        moe_layers: store.layers.length,
      });
    } catch (err) {
      if (!(err instanceof OutOfBudgetError)) throw err;
      rows.push(unfit(policy.name, budgetBytes, err.message, store, dtype));
    } finally {
      device.destroy();
    }
  }
  return { rows, uploadGBps, device: adapter, prompt };
}

function unfit(policy: string, budget: number, error: string, store: HostExperts, dtype: string): BenchRow {
  return {
    policy,
    weights_dtype: dtype,
    settings: "",
    fits: false,
    error,
    decode_tokens_per_s: NaN,
    prefill_s: NaN,
    bytes_per_token: NaN,
    demand_bytes_per_token: NaN,
    prefetch_bytes_per_token: NaN,
    reload_bytes_per_token: NaN,
    reloads_per_token: NaN,
    expert_hit_rate: NaN,
    syncs_per_token: NaN,
    sync_ms_per_token: NaN,
    transfer_gbps: NaN,
    peak_device_bytes: NaN,
    peak_by_category: {},
    budget_bytes: budget,
    minimum_bytes: NaN,
    hit_rate_by_layer: [],
    expert_bytes: store.expertBytes(),
    moe_layers: store.layers.length,
  };
}
