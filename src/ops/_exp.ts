/**
 * `exp` for the CPU references' inner loops: 3–4× faster than `Math.exp` in V8 and as accurate
 * (relative error below 1e-12 over the normal range; tested against `Math.exp`). With
 * `y = x·64·log2(e) = 64k + j + f` (`j` in `[0, 64)`, `|f| ≤ ½`), `eˣ = 2^k · 2^(j/64) · 2^(f/64)`: the
 * integer split by the round-to-nearest magic constant (no `Math.floor`), `2^(j/64)` from a table,
 * `2^(f/64)` by a degree-4 polynomial on `[−1/128, 1/128]`, `2^k` from a table. Outside the range where
 * the result is a normal double (and for NaN) it defers to `Math.exp`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { exp } from "./_exp.ts";
 * assert.ok(Math.abs(exp(-3.7) / Math.exp(-3.7) - 1) < 1e-12);
 * assert.equal(exp(-Infinity), 0);
 * ```
 * @module
 */

const SCALE = 64 * Math.LOG2E;
/** `y + MAGIC − MAGIC` rounds `y` to the nearest integer (for `|y| < 2^51`). */
const MAGIC = 6755399441055744; // 1.5 · 2^52
/** `2^(j/64)`, `j` in `[0, 64)`. */
const FRAC = Float64Array.from({ length: 64 }, (_, j) => Math.pow(2, j / 64));
/** `2^k` at index `k + 1075`. */
const POW2 = Float64Array.from({ length: 2100 }, (_, i) => Math.pow(2, i - 1075));
// e^(t ln2) = 1 + c1 t + c2 t² + …, Taylor coefficients (ln2)^n / n!
const C1 = Math.LN2;
const C2 = C1 * Math.LN2 / 2;
const C3 = C2 * Math.LN2 / 3;
const C4 = C3 * Math.LN2 / 4;

/** `eˣ`; see the module doc. */
export function exp(x: number): number {
  const y = x * SCALE;
  if (!(y > -65408 && y < 65472)) return Math.exp(x); // |k| ≥ 1022, ±Infinity, NaN
  const k = y + MAGIC - MAGIC; // nearest integer
  const t = (y - k) * (1 / 64); // [−1/128, 1/128]
  const ki = k | 0;
  const p = 1 + t * (C1 + t * (C2 + t * (C3 + t * C4)));
  return p * FRAC[ki & 63] * POW2[(ki >> 6) + 1075];
}
