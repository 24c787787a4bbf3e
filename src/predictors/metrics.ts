/**
 * Quality metrics of FloE's predictors (Zhou et al., ICML 2025, https://arxiv.org/abs/2505.05950;
 * ALGORITHMS.md A.4, A.5, D.1.3), on host arrays:
 *
 * - experts: top-1 accuracy (the first predicted expert is the first true one), unordered top-k
 *   accuracy `|pred ∩ true| / k`, and expected reloads per token `Σ (k − |pred ∩ true|)` (summed over
 *   layers by the caller);
 * - channels: recall `|pred ∩ true| / |true|`, precision `|pred ∩ true| / |pred|`, and the
 *   predicted/true count ratio.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { channelMetrics, expertMetrics } from "./metrics.ts";
 * const e = expertMetrics(Int32Array.of(1, 2, 3, 0), Int32Array.of(1, 0, 0, 3), 2); // T = 2, k = 2
 * assert.deepEqual(e, { tokens: 2, top1: 0.5, topk: 0.75, reloadsPerToken: 0.5 });
 * const c = channelMetrics([[0, 1, 2]], [[1, 2, 5, 6]]);
 * assert.deepEqual(c, { recall: 0.5, precision: 2 / 3, countRatio: 0.75 });
 * ```
 * @module
 */

/** Expert-prediction metrics over `T` tokens. */
export interface ExpertMetrics {
  tokens: number;
  /** Share of tokens whose first predicted expert is the first true one. */
  top1: number;
  /** Mean `|pred ∩ true| / k`. */
  topk: number;
  /** Mean `k − |pred ∩ true|`: experts to reload per token in this layer. */
  reloadsPerToken: number;
}

/**
 * @param pred `[T, k]` predicted experts, best first
 * @param truth `[T, k]` the router's experts, best first
 * @throws {RangeError} when the lengths disagree or are not a multiple of `k`
 */
export function expertMetrics(pred: Int32Array, truth: Int32Array, k: number): ExpertMetrics {
  if (pred.length !== truth.length || k <= 0 || pred.length % k !== 0) {
    throw new RangeError(
      `Cannot score expert predictions: pred (${pred.length}) and truth (${truth.length}) must both be [T, ${k}]`,
    );
  }
  const T = pred.length / k;
  let top1 = 0;
  let hits = 0;
  for (let t = 0; t < T; t++) {
    const p = pred.subarray(t * k, (t + 1) * k);
    const q = truth.subarray(t * k, (t + 1) * k);
    if (p[0] === q[0]) top1++;
    for (const e of new Set(p)) if (q.includes(e)) hits++;
  }
  return T === 0
    ? { tokens: 0, top1: NaN, topk: NaN, reloadsPerToken: NaN }
    : { tokens: T, top1: top1 / T, topk: hits / (T * k), reloadsPerToken: k - hits / T };
}

/** Channel-prediction metrics, pooled over every (token, expert) mask. */
export interface ChannelMetrics {
  /** `Σ|pred ∩ true| / Σ|true|`. */
  recall: number;
  /** `Σ|pred ∩ true| / Σ|pred|`. */
  precision: number;
  /** `Σ|pred| / Σ|true|`. */
  countRatio: number;
}

/**
 * @param pred predicted kept channels, one list per (token, expert)
 * @param truth the exact kept channels, same order
 */
export function channelMetrics(
  pred: readonly ArrayLike<number>[],
  truth: readonly ArrayLike<number>[],
): ChannelMetrics {
  if (pred.length !== truth.length) {
    throw new RangeError(
      `Cannot score channel predictions: ${pred.length} predicted masks for ${truth.length} true ones`,
    );
  }
  let inter = 0;
  let np = 0;
  let nt = 0;
  pred.forEach((p, i) => {
    const t = new Set(Array.from(truth[i]));
    np += p.length;
    nt += t.size;
    for (const c of Array.from(p)) if (t.has(c)) inter++;
  });
  return { recall: inter / nt, precision: inter / np, countRatio: np / nt };
}
