/**
 * Shared data for the quantizer tests: the round-trip grid (odd shapes, size-1 dimensions, group
 * sizes that divide the grouped dimension along each axis) and weights with the awkward groups a
 * quantizer must survive.
 * @module
 */
import { mulberry32, randn } from "../../src/tensor/random.ts";
import type { QuantBits } from "../../src/tensor/quantized_tensor.ts";

/** One grid point: shape, grouping axis and group size. */
export interface GridCase {
  shape: [number, number];
  axis: 0 | 1;
  groupSize: number;
}

/** Shapes of the grid: not multiples of the workgroup (64), with a row and a column of size 1. */
export const GRID_SHAPES: [number, number][] = [[24, 96], [64, 40], [1, 48], [40, 1]];

/** Every (shape, axis, groupSize) with groupSize in {1, 8, 32, 64, the whole dimension} dividing it. */
export function gridCases(): GridCase[] {
  const out: GridCase[] = [];
  for (const shape of GRID_SHAPES) {
    for (const axis of [1, 0] as const) {
      const dim = shape[axis === 1 ? 1 : 0];
      const sizes = [...new Set([8, 32, 64, dim])].filter((g) => dim % g === 0);
      for (const groupSize of sizes) out.push({ shape, axis, groupSize });
    }
  }
  return out;
}

/** The bit widths every quantizer supports. */
export const BITS: QuantBits[] = [2, 3, 4, 8];

/**
 * Gaussian weights (std 0.05) with an outlier at (0, 0) and, when there are at least 4 rows, an
 * all-zero row, a constant row (0.7, one value per group along axis 1) and a narrow row far from
 * zero (1 ± 0.001, where the step floor of RTN binds).
 */
export function awkwardWeight(shape: readonly [number, number], seed: number): Float32Array {
  const [rows, cols] = shape;
  const w = randn(rows * cols, seed, 0.05);
  if (cols > 1 || rows > 1) w[0] = 1.5;
  if (rows >= 4) {
    const u = randn(cols, seed + 1, 0.001);
    for (let c = 0; c < cols; c++) {
      w[cols + c] = 0;
      w[2 * cols + c] = 0.7;
      w[3 * cols + c] = 1 + u[c];
    }
  }
  return w;
}

/** Student-t weights with `nu` degrees of freedom, scaled by `scale` (heavy tails, like trained weights). */
export function studentT(n: number, seed: number, nu = 3, scale = 0.02): Float32Array {
  const z = randn(n, seed);
  const u = mulberry32(seed + 7);
  return z.map((x) => {
    let chi2 = 0;
    for (let k = 0; k < nu; k++) {
      const g = Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
      chi2 += g * g;
    }
    return (scale * x) / Math.sqrt(chi2 / nu);
  });
}

/** Reconstruction errors of `approx` against `w`: relative Frobenius, mean |·| and Σ|·|^0.7 (HQQ's objective). */
export function errorStats(w: ArrayLike<number>, approx: ArrayLike<number>) {
  let num = 0;
  let den = 0;
  let l1 = 0;
  let lp = 0;
  for (let i = 0; i < w.length; i++) {
    const e = w[i] - approx[i];
    num += e * e;
    den += w[i] * w[i];
    l1 += Math.abs(e);
    lp += Math.abs(e) ** 0.7;
  }
  return { fro: den === 0 ? Math.sqrt(num) : Math.sqrt(num / den), mae: l1 / w.length, lp };
}
