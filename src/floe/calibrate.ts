/**
 * FloE threshold calibration (Zhou et al., ICML 2025, https://arxiv.org/abs/2505.05950;
 * ALGORITHMS.md A.3, as the authors' `quantize/threshold.py` computes it): the model runs dense —
 * FloE layers with every channel and their resident (quantized) up — and for each MoE layer `l` and
 * expert `e` the values `|up_e · h_l|` of the tokens the layer's own router sends to `e` are pooled
 * over tokens **and** channels (`N·F` values); the threshold is their `k`-th smallest (1-based) with
 * `k = ⌊N·F·s⌋`, 0 for an expert that got no token (or `k = 0`). With several rounds, the sequences
 * are split into `rounds` consecutive groups, each round pools its group, and `t[l][e]` is the mean
 * of the rounds in which `e` got tokens. Rows of layers that are not MoE stay 0.
 *
 * Also {@link measureSparsity}: the kept-channel fraction a configured FloE model achieves per layer
 * and expert, next to the target.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "../models/load.ts";
 * import { calibrateThresholds } from "./calibrate.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/mixtral-top2-f32", { device });
 * const t = await calibrateThresholds(model, [Int32Array.of(1, 5, 9, 4, 7, 3)], { sparsity: 0.8 });
 * assert.deepEqual([t.layers, t.experts, t.settings.upBits], [2, 4, 16]); // a dense model: exact up
 * ```
 * @module
 */
import type { CausalLM } from "../models/causal_lm.ts";
import { QuantizedLinear } from "../nn/quantized_linear.ts";
import type { SparseMoE } from "../nn/sparse_moe.ts";
import { keptChannels } from "../ops/sparse_expert.ts";
import { FloeExperts, type FloeSelection } from "./floe_experts.ts";
import { recordRoutedUp } from "./record.ts";
import { FloeThresholds, modelFingerprint } from "./thresholds.ts";

/** Options of {@link calibrateThresholds}. */
export interface CalibrateOptions {
  /** Target sparsity `s` in `[0, 1)`. */
  sparsity: number;
  /** Rounds averaged (default 1); at most the number of sequences. */
  rounds?: number;
}

/** `⌊n·s⌋` robust to binary rounding (`n·s` within 1e-9 of an integer counts as that integer). */
export function quantileRank(n: number, sparsity: number): number {
  const x = n * sparsity;
  const r = Math.round(x);
  return Math.abs(x - r) < 1e-9 * Math.max(1, x) ? r : Math.floor(x);
}

/** The `k`-th smallest (1-based) of `|values|`, 0 when `k` is 0. */
export function kthSmallestAbs(values: Float32Array, k: number): number {
  if (k <= 0) return 0;
  const a = Float32Array.from(values, Math.abs).sort();
  return a[Math.min(k, a.length) - 1];
}

/** Every FloE layer's selection, set to "all channels" while `fn` runs, then restored. */
async function withDenseFloe<R>(model: CausalLM, fn: () => Promise<R>): Promise<R> {
  const saved = new Map<FloeExperts, FloeSelection>();
  for (const l of model.moeLayers) {
    const ex = (model.layers[l].mlp as SparseMoE).experts;
    if (ex instanceof FloeExperts) {
      saved.set(ex, ex.selection);
      ex.configure({ mode: "topk", sparsity: 0 });
    }
  }
  try {
    return await fn();
  } finally {
    for (const [ex, s] of saved) ex.configure(s);
  }
}

/** Up bits and group size of the model's FloE layers (16 / 0 when exact or dense). */
function upSettings(model: CausalLM): { upBits: number; groupSize: number } {
  for (const l of model.moeLayers) {
    const ex = (model.layers[l].mlp as SparseMoE).experts;
    if (ex instanceof FloeExperts && ex.up[0] instanceof QuantizedLinear) {
      return { upBits: ex.up[0].weight.bits, groupSize: ex.up[0].weight.groupSize };
    }
  }
  return { upBits: 16, groupSize: 0 };
}

/**
 * Calibrates `t[l][e]` (see the module doc) on `sequences`, each run as one forward.
 *
 * @param model a MoE model: dense (exact up) or from `floeCompress` (its up quantization)
 * @throws {RangeError} on a sparsity outside `[0, 1)`, no sequences, or rounds outside `1..sequences`
 * @throws {TypeError} for a model without MoE layers
 */
export async function calibrateThresholds(
  model: CausalLM,
  sequences: readonly Int32Array[],
  options: CalibrateOptions,
): Promise<FloeThresholds> {
  const { sparsity: s, rounds = 1 } = options;
  if (!(s >= 0 && s < 1)) {
    throw new RangeError(`Cannot calibrate FloE thresholds: sparsity must be in [0, 1): received ${s}`);
  }
  if (model.moeLayers.length === 0) {
    throw new TypeError(
      `Cannot calibrate FloE thresholds on a dense model (${model.config.modelType}, no MoE layers)`,
    );
  }
  if (sequences.length === 0 || !(Number.isInteger(rounds) && rounds >= 1 && rounds <= sequences.length)) {
    throw new RangeError(
      `Cannot calibrate FloE thresholds: need at least one sequence per round: received ${sequences.length} ` +
        `sequences for ${rounds} rounds`,
    );
  }
  const { layers: L, numExperts: E } = model.config;
  const sum = new Float64Array(L * E);
  const count = new Int32Array(L * E);
  const per = Math.ceil(sequences.length / rounds);
  await withDenseFloe(model, async () => {
    for (let r = 0; r < rounds; r++) {
      const group = sequences.slice(r * per, (r + 1) * per);
      if (group.length === 0) continue;
      const pooled = new Map<number, Float32Array[][]>(); // layer -> expert -> chunks
      for (const ids of group) {
        for (const [l, experts] of await recordRoutedUp(model, ids)) {
          const byExpert = pooled.get(l) ?? experts.map(() => []);
          experts.forEach((x, e) => byExpert[e].push(x.v));
          pooled.set(l, byExpert);
        }
      }
      for (const [l, byExpert] of pooled) {
        byExpert.forEach((chunks, e) => {
          const n = chunks.reduce((a, c) => a + c.length, 0); // N·F
          if (n === 0) return;
          const all = new Float32Array(n);
          let o = 0;
          for (const c of chunks) {
            all.set(c, o);
            o += c.length;
          }
          sum[l * E + e] += kthSmallestAbs(all, quantileRank(n, s));
          count[l * E + e]++;
        });
      }
    }
  });
  const values = Float32Array.from(sum, (v, i) => (count[i] > 0 ? v / count[i] : 0));
  const tokens = sequences.reduce((a, q) => a + q.length, 0);
  return new FloeThresholds(
    values,
    L,
    E,
    { sparsity: s, rounds, ...upSettings(model), tokens },
    await modelFingerprint(model),
  );
}

/** One row of {@link measureSparsity}. */
export interface SparsityRow {
  layer: number;
  expert: number;
  /** Routed tokens `N`. */
  tokens: number;
  /** Kept channels over `N·F` (NaN with no token). */
  kept_fraction: number;
  /** `1 − s`: the target kept fraction. */
  target_kept: number;
}

/**
 * The kept-channel fraction each FloE layer and expert achieves on `sequences` under its current
 * selection (threshold mode varies per token; topk keeps `⌊(1−s)·F⌋`), next to the target.
 */
export async function measureSparsity(
  model: CausalLM,
  sequences: readonly Int32Array[],
): Promise<SparsityRow[]> {
  const kept = new Map<string, { n: number; k: number; target: number }>();
  for (const ids of sequences) {
    for (const [l, experts] of await recordRoutedUp(model, ids)) {
      const ex = (model.layers[l].mlp as SparseMoE).experts;
      if (!(ex instanceof FloeExperts)) continue;
      const F = ex.intermediate;
      const sel = ex.selection;
      experts.forEach((x, e) => {
        const key = `${l}:${e}`;
        const acc = kept.get(key) ?? { n: 0, k: 0, target: 1 - sel.sparsity };
        const choice = ex.hostSelection(e);
        for (let t = 0; t < x.tokens; t++) acc.k += keptChannels(x.v, t * F, F, choice).length;
        acc.n += x.tokens;
        kept.set(key, acc);
      });
    }
  }
  const rows: SparsityRow[] = [];
  for (const [key, a] of kept) {
    const [layer, expert] = key.split(":").map(Number);
    const F = ((model.layers[layer].mlp as SparseMoE).experts as FloeExperts).intermediate;
    rows.push({
      layer,
      expert,
      tokens: a.n,
      kept_fraction: a.n > 0 ? a.k / (a.n * F) : NaN,
      target_kept: a.target,
    });
  }
  return rows.sort((p, q) => p.layer - q.layer || p.expert - q.expert);
}
