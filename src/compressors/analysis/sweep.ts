/**
 * The compression sweep: every weight under every setting of a grid of quantizers
 * ({method, bits, group size, axis}), pruners ({method, sparsity}) and low-rank ranks, scored by
 * relative weight error and output error on calibration activations, as an Arrow-backed
 * {@link MetricLog} — the table behind FloE's sensitivity study (which projection tolerates INT2;
 * ALGORITHMS.md A.2) and behind choosing a compressor for a budget.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../../device/create_device.ts";
 * import { randn } from "../../tensor/random.ts";
 * import { compressionSweep, quantGrid } from "./sweep.ts";
 * const device = await createDevice({ backend: "cpu" });
 * const w = { name: "w", data: randn(16 * 64, 1), shape: [16, 64] as [number, number] };
 * const log = await compressionSweep([w], {
 *   device,
 *   quantizers: quantGrid({ methods: ["rtn", "hqq"], bits: [2, 4], groupSizes: [64], axes: [1] }),
 *   pruners: [{ method: "magnitude", sparsity: 0.5 }],
 *   progress: "off",
 * });
 * assert.ok(log.rows === 5);
 * ```
 * @module
 */
import type { Device } from "../../device/device.ts";
import { MetricLog } from "../../metrics/metric_log.ts";
import { ProgressBar, type ProgressMode } from "../../metrics/progress.ts";
import { dequantizeRef } from "../../ops/dequantize_ref.ts";
import { bitsPerParam, disposeQuantized, type QuantBits } from "../../tensor/quantized_tensor.ts";
import { Tensor } from "../../tensor/tensor.ts";
import { lowRankFactorize, lowRankProduct } from "../lowrank/low_rank.ts";
import { type MaskMethod, pruneWeight } from "../prune/masks.ts";
import { getPruner } from "../prune/pruner.ts";
import { quantize, quantizedToHost } from "../quant/quantize.ts";
import { getQuantizer } from "../quant/quantizer.ts";
import { outputError, relativeError } from "./errors.ts";

/** One weight to sweep. */
export interface SweepWeight {
  /** Module name, e.g. `model.layers.0.block_sparse_moe.experts.3.w3`. */
  readonly name: string;
  /** A label to aggregate by, e.g. the projection (`w1`, `w2`, `w3`). Default: the name. */
  readonly group?: string;
  /** `[out, in]` row-major. */
  readonly data: Float32Array;
  readonly shape: readonly [number, number];
  /** `[T, in]` calibration inputs; without them the output error is left null. */
  readonly activations?: Float32Array;
}

/** One quantizer setting (a `type`, so it passes as `QuantizeOptions`). */
export type QuantSetting = {
  /** A registered quantizer's name. */
  readonly method: string;
  readonly bits: QuantBits;
  readonly groupSize: number;
  readonly axis: 0 | 1;
  /** nf4 only. */
  readonly doubleQuant?: boolean;
};

/** One pruner setting (masks; the weight keeps its shape). */
export interface PruneSetting {
  readonly method: MaskMethod;
  readonly sparsity: number;
}

/** Options of {@link compressionSweep}. */
export interface SweepOptions {
  readonly device: Device;
  readonly quantizers?: readonly QuantSetting[];
  readonly pruners?: readonly PruneSetting[];
  /** Ranks of a truncated-SVD replacement. */
  readonly ranks?: readonly number[];
  /** Progress display (default `"auto"`). */
  readonly progress?: ProgressMode;
}

/**
 * Every valid setting of the cross product: each method at the bits and axes its quantizer takes
 * (NF4: 4 bits on axis 1); group sizes that do not divide a weight's dimension are skipped per weight
 * by the sweep.
 * @throws {RangeError} on a method that is not registered
 */
export function quantGrid(grid: {
  methods: readonly QuantSetting["method"][];
  bits: readonly QuantBits[];
  groupSizes: readonly number[];
  axes: readonly (0 | 1)[];
}): QuantSetting[] {
  const out: QuantSetting[] = [];
  for (const method of grid.methods) {
    const q = getQuantizer(method);
    const bitsOf = grid.bits.filter((b) => q.bits.includes(b));
    const axesOf = grid.axes.filter((a) => q.axes.includes(a));
    for (const bits of bitsOf.length > 0 ? bitsOf : q.bits.slice(0, 1)) {
      for (const groupSize of grid.groupSizes) {
        for (const axis of axesOf.length > 0 ? axesOf : q.axes.slice(0, 1)) {
          out.push({ method, bits, groupSize, axis });
        }
      }
    }
  }
  return out;
}

/** Runs every setting on every weight; one row per (weight, setting). */
export async function compressionSweep(
  weights: readonly SweepWeight[],
  options: SweepOptions,
): Promise<MetricLog> {
  const { device, quantizers = [], pruners = [], ranks = [] } = options;
  const log = new MetricLog({
    columns: {
      tensor: "utf8",
      group: "utf8",
      kind: "utf8",
      method: "utf8",
      bits: "int32",
      group_size: "int32",
      axis: "int32",
      sparsity: "float64",
      rank: "int32",
      bits_per_param: "float64",
      bits_per_param_codes: "float64",
      rel_error: "float64",
      output_error: "float64",
      ms: "float64",
    },
  });
  const total = weights.length * (quantizers.length + pruners.length + ranks.length);
  const bar = new ProgressBar({ total, label: "sweep", mode: options.progress ?? "auto" });
  bar.start();
  let step = 0;
  for (const w of weights) {
    const base = { tensor: w.name, group: w.group ?? w.name };
    const score = (approx: Float32Array) => ({
      rel_error: relativeError(w.data, approx),
      output_error: w.activations ? outputError(w.data, approx, w.shape, w.activations) : undefined,
    });
    // Uploaded once for every quantizer setting; ms covers quantizing and reading the result back.
    using t = quantizers.length > 0 ? Tensor.fromArray<"f32">(device, w.data, [...w.shape]) : undefined; // [out, in]
    for (const s of quantizers) {
      bar.update(++step, { extra: { weight: w.name } });
      if (w.shape[s.axis === 1 ? 1 : 0] % s.groupSize !== 0) continue;
      const t0 = performance.now();
      const q = await quantize(t!, s);
      try {
        const host = await quantizedToHost(q);
        const ms = performance.now() - t0;
        const bpp = bitsPerParam(q);
        log.log({
          ...base,
          kind: "quantize",
          method: s.method + (s.doubleQuant ? "+dq" : ""),
          bits: s.bits,
          group_size: s.groupSize,
          axis: s.axis,
          bits_per_param: bpp.total,
          bits_per_param_codes: bpp.codes,
          ...score(dequantizeRef(host)),
          ms,
        });
      } finally {
        disposeQuantized(q);
      }
    }
    const norms = pruners.length > 0 ? inputNorms(w) : undefined; // [in], for Wanda and activation-aware 2:4
    for (const s of pruners) {
      bar.update(++step, { extra: { weight: w.name } });
      const t0 = performance.now();
      const pruner = getPruner(s.method);
      if (pruner.inputNorms === "required" && !norms) continue;
      if (pruner.unfit?.(w.shape)) continue;
      const inputNorms = pruner.inputNorms === "unused" ? undefined : norms;
      const r = pruneWeight(w.data, w.shape, { method: s.method, sparsity: s.sparsity, inputNorms });
      log.log({
        ...base,
        kind: "prune",
        method: s.method,
        sparsity: r.sparsity,
        bits_per_param: 32 * (1 - r.sparsity),
        ...score(r.pruned),
        ms: performance.now() - t0,
      });
    }
    for (const rank of ranks) {
      bar.update(++step, { extra: { weight: w.name } });
      if (rank > Math.min(...w.shape)) continue;
      const t0 = performance.now();
      const f = lowRankFactorize(w.data, w.shape, rank);
      log.log({
        ...base,
        kind: "lowrank",
        method: "svd",
        rank,
        bits_per_param: f.bitsPerParam,
        ...score(lowRankProduct(f)),
        ms: performance.now() - t0,
      });
    }
  }
  bar.finish();
  return log;
}

/** `‖X_j‖₂` per input feature of a weight's activations, or undefined without activations. */
function inputNorms(w: SweepWeight): Float32Array | undefined {
  if (!w.activations) return undefined;
  const cols = w.shape[1];
  const out = new Float64Array(cols);
  for (let i = 0; i < w.activations.length; i++) out[i % cols] += w.activations[i] ** 2;
  return Float32Array.from(out, Math.sqrt);
}

/** The setting columns a summary groups by. */
const SETTING_KEYS = ["group", "kind", "method", "bits", "group_size", "axis", "sparsity", "rank"] as const;

/**
 * Means over the weights of each (group, setting) of a sweep: `weights`, `bits_per_param`,
 * `rel_error`, `output_error` (null where no weight had activations), in first-seen order.
 */
export function summarizeSweep(log: MetricLog): MetricLog {
  const groups = new Map<string, { key: Record<string, unknown>; n: number; sums: number[]; outN: number }>();
  for (const row of log.toJSON()) {
    const key = Object.fromEntries(SETTING_KEYS.map((k) => [k, row[k]]));
    const id = JSON.stringify(key);
    const g = groups.get(id) ?? { key, n: 0, sums: [0, 0, 0], outN: 0 };
    g.n++;
    g.sums[0] += Number(row.bits_per_param);
    g.sums[1] += Number(row.rel_error);
    if (row.output_error !== null && row.output_error !== undefined) {
      g.sums[2] += Number(row.output_error);
      g.outN++;
    }
    groups.set(id, g);
  }
  const out = new MetricLog({
    runId: log.runId,
    columns: {
      group: "utf8",
      kind: "utf8",
      method: "utf8",
      bits: "int32",
      group_size: "int32",
      axis: "int32",
      sparsity: "float64",
      rank: "int32",
      weights: "int32",
      bits_per_param: "float64",
      rel_error: "float64",
      output_error: "float64",
    },
  });
  for (const g of groups.values()) {
    const key = Object.fromEntries(Object.entries(g.key).map(([k, v]) => [k, v ?? undefined]));
    out.log({
      ...key as Record<string, string | number | undefined>,
      weights: g.n,
      bits_per_param: g.sums[0] / g.n,
      rel_error: g.sums[1] / g.n,
      output_error: g.outN > 0 ? g.sums[2] / g.outN : undefined,
    });
  }
  return out;
}
