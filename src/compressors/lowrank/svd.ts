/**
 * Truncated singular value decomposition of a weight, `W ≈ U_r · diag(S_r) · V_rᵀ`, on the host
 * in float64: one-sided Jacobi (Hestenes) for an exact decomposition, or a randomized range
 * finder (Halko, Martinsson & Tropp 2011, https://arxiv.org/abs/0909.4061) followed by Jacobi on
 * the small projected matrix for large weights.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { truncatedSvd } from "./svd.ts";
 * // [[3, 0], [0, 2], [0, 0]]: singular values 3 and 2
 * const f = truncatedSvd(new Float32Array([3, 0, 0, 2, 0, 0]), [3, 2], 1);
 * assert.ok(Math.abs(f.s[0] - 3) < 1e-6 && f.rank === 1);
 * ```
 * @module
 */
import { mulberry32 } from "../../tensor/random.ts";

/** `W ≈ u · diag(s) · vt`, singular values descending. */
export interface SvdFactors {
  /** `[m, rank]` left singular vectors, row-major. */
  readonly u: Float32Array;
  /** `[rank]` singular values, descending. */
  readonly s: Float32Array;
  /** `[rank, n]` right singular vectors (rows), row-major. */
  readonly vt: Float32Array;
  readonly shape: readonly [number, number];
  readonly rank: number;
}

/** How {@link truncatedSvd} computes the factors. */
export interface SvdOptions {
  /** `"exact"` (Jacobi on the whole matrix), `"randomized"`, or `"auto"` (default): exact when min(m, n) ≤ 512. */
  method?: "exact" | "randomized" | "auto";
  /** Randomized: extra sample columns (default 10). */
  oversample?: number;
  /** Randomized: power iterations (default 3). */
  powerIterations?: number;
  /** Randomized: seed of the Gaussian test matrix (default 0). */
  seed?: number;
}

/** Truncated SVD of `w` (`[m, n]` row-major) at `rank` (≤ min(m, n)). */
export function truncatedSvd(
  w: Float32Array,
  shape: readonly [number, number],
  rank: number,
  options: SvdOptions = {},
): SvdFactors {
  const [m, n] = shape;
  if (w.length !== m * n) {
    throw new RangeError(
      `Cannot run truncatedSvd: data has ${w.length} values but shape [${shape}] needs ${m * n}`,
    );
  }
  const k = Math.min(m, n);
  if (!Number.isInteger(rank) || rank < 1 || rank > k) {
    throw new RangeError(
      `Cannot run truncatedSvd: rank must be an integer in [1, ${k}] for [${shape}]: received ${rank}`,
    );
  }
  const method = options.method ?? "auto";
  const randomized = method === "randomized" || (method === "auto" && k > 512);
  const full = randomized
    ? randomizedSvd(Float64Array.from(w), m, n, rank, options)
    : jacobiSvd(Float64Array.from(w), m, n);
  return truncate(full, m, n, rank);
}

/** Full thin SVD in float64 (u `[m, k]`, s `[k]`, vt `[k, n]`, k = min(m, n)). */
interface Full {
  u: Float64Array;
  s: Float64Array;
  vt: Float64Array;
  k: number;
}

function truncate(f: Full, m: number, n: number, rank: number): SvdFactors {
  const u = new Float32Array(m * rank);
  const vt = new Float32Array(rank * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < rank; j++) u[i * rank + j] = f.u[i * f.k + j];
  vt.set(f.vt.subarray(0, rank * n));
  return { u, s: Float32Array.from(f.s.subarray(0, rank)), vt, shape: [m, n], rank };
}

/**
 * One-sided Jacobi on the columns of `a` (`[m, n]`, overwritten). Works on the transposed
 * matrix when n > m, so the rotations act on the shorter side.
 */
export function jacobiSvd(a: Float64Array, m: number, n: number): Full {
  if (n > m) {
    const t = jacobiSvd(transpose(a, m, n), n, m); // Wᵀ = U' S V'ᵀ -> W = V' S U'ᵀ
    return { u: transpose(t.vt, t.k, m), s: t.s, vt: transpose(t.u, n, t.k), k: t.k };
  }
  // Columns of `a` rotate towards A·V; V accumulates the rotations. Column-major copies for locality.
  const cols = Array.from({ length: n }, (_, j) => Float64Array.from({ length: m }, (_, i) => a[i * n + j]));
  const v = Array.from(
    { length: n },
    (_, j) => Float64Array.from({ length: n }, (_, i) => (i === j ? 1 : 0)),
  );
  for (let sweep = 0; sweep < 60; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const x = cols[p];
        const y = cols[q];
        let alpha = 0, beta = 0, gamma = 0;
        for (let i = 0; i < m; i++) {
          alpha += x[i] * x[i];
          beta += y[i] * y[i];
          gamma += x[i] * y[i];
        }
        if (Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta) || gamma === 0) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        rotate(x, y, c, s);
        rotate(v[p], v[q], c, s);
      }
    }
    if (!rotated) break;
  }
  const norms = cols.map((c) => Math.sqrt(c.reduce((acc, e) => acc + e * e, 0)));
  const order = norms.map((_, j) => j).sort((i, j) => norms[j] - norms[i]);
  const u = new Float64Array(m * n);
  const s = new Float64Array(n);
  const vt = new Float64Array(n * n);
  order.forEach((j, r) => {
    s[r] = norms[j];
    for (let i = 0; i < m; i++) u[i * n + r] = norms[j] > 0 ? cols[j][i] / norms[j] : 0;
    for (let i = 0; i < n; i++) vt[r * n + i] = v[j][i];
  });
  return { u, s, vt, k: n };
}

function rotate(x: Float64Array, y: Float64Array, c: number, s: number): void {
  for (let i = 0; i < x.length; i++) {
    const xi = x[i];
    const yi = y[i];
    x[i] = c * xi - s * yi;
    y[i] = s * xi + c * yi;
  }
}

/** Randomized SVD: Q spans W·Ω after power iterations; SVD of the small `Qᵀ W`. */
function randomizedSvd(a: Float64Array, m: number, n: number, rank: number, options: SvdOptions): Full {
  const l = Math.min(Math.min(m, n), rank + (options.oversample ?? 10));
  const rand = mulberry32(options.seed ?? 0);
  const omega = Float64Array.from({ length: n * l }, () => gaussian(rand)); // [n, l]
  let q = orthonormalize(matmul(a, omega, m, n, l), m, l); // [m, l]
  const at = transpose(a, m, n); // [n, m]
  for (let it = 0; it < (options.powerIterations ?? 3); it++) {
    const z = orthonormalize(matmul(at, q, n, m, l), n, l); // Wᵀ Q: [n, l]
    q = orthonormalize(matmul(a, z, m, n, l), m, l); // W Z: [m, l]
  }
  const b = matmul(transpose(q, m, l), a, l, m, n); // Qᵀ W: [l, n]
  const small = jacobiSvd(b, l, n); // u [l, l]
  return { u: matmul(q, small.u, m, l, small.k), s: small.s, vt: small.vt, k: small.k };
}

/** `[r, k] · [k, c] -> [r, c]` in float64. */
function matmul(x: Float64Array, y: Float64Array, r: number, k: number, c: number): Float64Array {
  const out = new Float64Array(r * c);
  for (let i = 0; i < r; i++) {
    const row = out.subarray(i * c, (i + 1) * c);
    for (let p = 0; p < k; p++) {
      const xv = x[i * k + p];
      if (xv === 0) continue;
      const yr = y.subarray(p * c, (p + 1) * c);
      for (let j = 0; j < c; j++) row[j] += xv * yr[j];
    }
  }
  return out;
}

function transpose(x: Float64Array, r: number, c: number): Float64Array {
  const out = new Float64Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = x[i * c + j];
  return out;
}

/** Modified Gram–Schmidt (twice) on the `l` columns of `x` (`[m, l]`, overwritten and returned). */
function orthonormalize(x: Float64Array, m: number, l: number): Float64Array {
  for (let pass = 0; pass < 2; pass++) {
    for (let j = 0; j < l; j++) {
      for (let p = 0; p < j; p++) {
        let d = 0;
        for (let i = 0; i < m; i++) d += x[i * l + p] * x[i * l + j];
        for (let i = 0; i < m; i++) x[i * l + j] -= d * x[i * l + p];
      }
      let norm = 0;
      for (let i = 0; i < m; i++) norm += x[i * l + j] * x[i * l + j];
      norm = Math.sqrt(norm);
      for (let i = 0; i < m; i++) x[i * l + j] = norm > 1e-300 ? x[i * l + j] / norm : 0;
    }
  }
  return x;
}

function gaussian(rand: () => number): number {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}
