/**
 * How far a compressed weight is from the original: relative Frobenius error of the weight, and of
 * a Linear's output on calibration activations (`‖X Wᵀ − X Ŵᵀ‖_F / ‖X Wᵀ‖_F`). Host float64.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { outputError, relativeError } from "./errors.ts";
 * const w = new Float32Array([1, 2, 3, 4]); // [2, 2]
 * const w2 = new Float32Array([1, 2, 3, 3]);
 * assert.ok(Math.abs(relativeError(w, w2) - 1 / Math.sqrt(30)) < 1e-12);
 * // X = [[0, 1]] reads only column 1: outputs [2, 4] vs [2, 3]
 * assert.ok(Math.abs(outputError(w, w2, [2, 2], new Float32Array([0, 1])) - 1 / Math.sqrt(20)) < 1e-12);
 * ```
 * @module
 */

/** `‖W − Ŵ‖_F / ‖W‖_F` (0 for an all-zero W reproduced exactly). */
export function relativeError(w: ArrayLike<number>, approx: ArrayLike<number>): number {
  if (w.length !== approx.length) {
    throw new RangeError(`Cannot compare weights of ${w.length} and ${approx.length} values`);
  }
  let num = 0;
  let den = 0;
  for (let i = 0; i < w.length; i++) {
    const d = w[i] - approx[i];
    num += d * d;
    den += w[i] * w[i];
  }
  return den === 0 ? (num === 0 ? 0 : Infinity) : Math.sqrt(num / den);
}

/**
 * `‖X (W − Ŵ)ᵀ‖_F / ‖X Wᵀ‖_F` for `W, Ŵ` `[out, in]` and activations `x` `[T, in]` (any T).
 */
export function outputError(
  w: ArrayLike<number>,
  approx: ArrayLike<number>,
  shape: readonly [number, number],
  x: ArrayLike<number>,
): number {
  const [rows, cols] = shape;
  if (w.length !== rows * cols || approx.length !== rows * cols) {
    throw new RangeError(`Cannot compute the output error: the weights must hold ${rows}·${cols} values`);
  }
  if (x.length % cols !== 0) {
    throw new RangeError(
      `Cannot compute the output error: activations of ${x.length} values are not rows of ${cols} inputs`,
    );
  }
  const T = x.length / cols;
  let num = 0;
  let den = 0;
  for (let t = 0; t < T; t++) {
    for (let r = 0; r < rows; r++) {
      let y = 0;
      let dy = 0;
      for (let c = 0; c < cols; c++) {
        const xv = x[t * cols + c];
        y += w[r * cols + c] * xv; // [T, in] · [out, in]ᵀ
        dy += (w[r * cols + c] - approx[r * cols + c]) * xv;
      }
      num += dy * dy;
      den += y * y;
    }
  }
  return den === 0 ? (num === 0 ? 0 : Infinity) : Math.sqrt(num / den);
}
