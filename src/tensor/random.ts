/**
 * Seeded random numbers for weights, test data and sampling: the same seed gives the same
 * values on every backend and runtime.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mulberry32, randn } from "./random.ts";
 * const a = randn(4, 1);
 * assert.ok(a[0] === randn(4, 1)[0] && mulberry32(7)() < 1);
 * ```
 * @module
 */

/** Mulberry32: a small seeded generator, uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `n` normal samples with standard deviation `std` (Box–Muller over {@link mulberry32}). */
export function randn(n: number, seed: number, std = 1): Float32Array {
  const u = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = std * Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  return out;
}
