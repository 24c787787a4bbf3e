/**
 * Low-rank compressors: a weight replaced by `B·A` (PEFT's orientation, `B [out, r]`,
 * `A [r, in]`) from its truncated SVD, and a rank-r residual that compensates a quantized
 * weight (`W ≈ Ŵ + B·A`, fitted to `W − Ŵ`, the EoRA/“CompensatedModel” idea FloE's
 * development code tried on INT2 up projections).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lowRankFactorize, lowRankProduct } from "./low_rank.ts";
 * // a rank-1 matrix [2, 3] = [1, 2]ᵀ · [1, 0, -1] is recovered exactly at rank 1
 * const w = new Float32Array([1, 0, -1, 2, 0, -2]);
 * const f = lowRankFactorize(w, [2, 3], 1);
 * const back = lowRankProduct(f);
 * assert.ok(back.every((v, i) => Math.abs(v - w[i]) < 1e-6));
 * ```
 * @module
 */
import { type SvdOptions, truncatedSvd } from "./svd.ts";

/** `W ≈ b · a`, with the singular values split evenly (`b = U√S`, `a = √S Vᵀ`). */
export interface LowRankFactors {
  /** `[out, rank]`. */
  readonly b: Float32Array;
  /** `[rank, in]`. */
  readonly a: Float32Array;
  /** The singular values kept, descending. */
  readonly singularValues: Float32Array;
  readonly shape: readonly [number, number];
  readonly rank: number;
  /** Bytes of `a` and `b` in f32. */
  readonly bytes: number;
  /** Stored bits per parameter of the original weight (`32·rank·(out + in) / (out·in)`). */
  readonly bitsPerParam: number;
}

/** Truncated-SVD factors of `w` (`[out, in]`) at `rank`. */
export function lowRankFactorize(
  w: Float32Array,
  shape: readonly [number, number],
  rank: number,
  options: SvdOptions = {},
): LowRankFactors {
  const [m, n] = shape;
  const f = truncatedSvd(w, shape, rank, options);
  const b = new Float32Array(m * rank);
  const a = new Float32Array(rank * n);
  for (let j = 0; j < rank; j++) {
    const root = Math.sqrt(f.s[j]);
    for (let i = 0; i < m; i++) b[i * rank + j] = f.u[i * rank + j] * root; // [out, r]
    for (let i = 0; i < n; i++) a[j * n + i] = f.vt[j * n + i] * root; // [r, in]
  }
  const bytes = 4 * rank * (m + n);
  return { b, a, singularValues: f.s, shape: [m, n], rank, bytes, bitsPerParam: (8 * bytes) / (m * n) };
}

/** `b · a` as a dense `[out, in]` f32 array. */
export function lowRankProduct(f: LowRankFactors): Float32Array {
  const [m, n] = f.shape;
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < f.rank; j++) {
      const bij = f.b[i * f.rank + j];
      for (let c = 0; c < n; c++) out[i * n + c] += bij * f.a[j * n + c];
    }
  }
  return out;
}

/** A quantized weight's reconstruction plus a low-rank fit of its error. */
export interface CompensatedWeight {
  /** Factors of `W − Ŵ`. */
  readonly residual: LowRankFactors;
  /** `Ŵ + B·A`, `[out, in]`. */
  readonly reconstruction: Float32Array;
}

/**
 * Fits `W − Ŵ` at `rank` so that `Ŵ + B·A` is the best rank-r correction of `Ŵ` in Frobenius norm
 * (Eckart–Young); `dequantized` is `Ŵ` (e.g. `dequantizeRef` of a quantizer's result).
 */
export function compensateQuantization(
  w: Float32Array,
  dequantized: Float32Array,
  shape: readonly [number, number],
  rank: number,
  options: SvdOptions = {},
): CompensatedWeight {
  if (dequantized.length !== w.length) {
    throw new RangeError(
      `Cannot compensate: the weight has ${w.length} values but the dequantized one ${dequantized.length}`,
    );
  }
  const error = w.map((v, i) => v - dequantized[i]); // [out, in]
  const residual = lowRankFactorize(error, shape, rank, options);
  const fit = lowRankProduct(residual);
  return { residual, reconstruction: dequantized.map((v, i) => v + fit[i]) };
}
