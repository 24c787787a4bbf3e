/**
 * TypeScript reference of dequantisation for every {@link QuantizedTensor} layout: the CPU
 * backend of `dequantize`, and the oracle of the packed kernels and the quantizers' tests.
 * The layout (codes, groups, metadata) is documented in `src/tensor/quantized_tensor.ts`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dequantizeRef, groupOf } from "./dequantize_ref.ts";
 * import { packCodes } from "../tensor/quantized_tensor.ts";
 * // one row of 4 two-bit codes, one group: scale 0.5, zero 1.5 -> (q - 1.5) * 0.5
 * const codes = packCodes([0, 1, 2, 3], 1, 4, 2);
 * const w = dequantizeRef({
 *   scheme: "affine", bits: 2, groupSize: 4, axis: 1, shape: [1, 4], codes,
 *   scale: new Float32Array([0.5]), zero: new Float32Array([1.5]),
 * });
 * assert.ok(w.join() === "-0.75,-0.25,0.25,0.75" && groupOf(0, 3, 1, 4, 4, 1) === 0);
 * ```
 * @module
 */
import { DYNAMIC8, NF4 } from "../tensor/codebooks.ts";
import { codesPerWord, type QuantBits, wordsPerRow } from "../tensor/quantized_tensor.ts";

/** Host arrays of a quantized weight, metadata already unpacked to f32 per group. */
export interface HostQuantized {
  scheme: "affine" | "nf4";
  bits: QuantBits;
  groupSize: number;
  axis: 0 | 1;
  shape: readonly [number, number];
  /** Packed codes, row-aligned (`rows · wordsPerRow(cols, bits)` words). */
  codes: Uint32Array;
  /** affine: step per group; nf4: absmax per group. */
  scale: Float32Array;
  /** affine: zero-point per group (in code units); nf4: unused. */
  zero?: Float32Array;
}

/**
 * Group index of element `(r, c)` of a `[rows, cols]` weight (see the layout doc): axis 1, `g`
 * consecutive elements of a row; axis 0, HQQ's `reshape(g, −1)`, rows `rows/g` apart in a column.
 */
export function groupOf(
  r: number,
  c: number,
  rows: number,
  cols: number,
  groupSize: number,
  axis: 0 | 1,
): number {
  return axis === 1
    ? r * (cols / groupSize) + Math.floor(c / groupSize)
    : (r % (rows / groupSize)) * cols + c;
}

/** Flat index of the first element of group `g` and the flat stride between its elements. */
export function groupSpan(
  g: number,
  rows: number,
  cols: number,
  groupSize: number,
  axis: 0 | 1,
): { start: number; stride: number } {
  return axis === 1 ? { start: g * groupSize, stride: 1 } : { start: g, stride: (rows / groupSize) * cols };
}

/** `Ŵ[r, c]` for every element, as f32 (`(q − zero)·scale` or `NF4[q]·absmax`, f32 arithmetic). */
export function dequantizeRef(q: HostQuantized): Float32Array {
  const [rows, cols] = q.shape;
  const n = codesPerWord(q.bits);
  const W = wordsPerRow(cols, q.bits);
  const mask = (1 << q.bits) - 1;
  const out = new Float32Array(rows * cols);
  const f = Math.fround;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const code = (q.codes[r * W + Math.floor(c / n)] >>> ((c % n) * q.bits)) & mask;
      const g = groupOf(r, c, rows, cols, q.groupSize, q.axis);
      out[r * cols + c] = q.scheme === "affine"
        ? f(f(code - q.zero![g]) * q.scale[g])
        : f(NF4[code] * q.scale[g]);
    }
  }
  return out;
}

/** Splits `pack2x16float(scale, zero)` words into f32 scale and zero arrays. */
export function unpackAffineMeta(meta: Uint32Array): { scale: Float32Array; zero: Float32Array } {
  const halves = new Float32Array(new Float16Array(meta.buffer, meta.byteOffset, meta.length * 2));
  const scale = new Float32Array(meta.length);
  const zero = new Float32Array(meta.length);
  for (let g = 0; g < meta.length; g++) {
    scale[g] = halves[2 * g];
    zero[g] = halves[2 * g + 1];
  }
  return { scale, zero };
}

/** Packs f32 scale and zero arrays as `pack2x16float(scale, zero)` words (round to nearest f16). */
export function packAffineMeta(scale: Float32Array, zero: Float32Array): Uint32Array {
  const halves = new Float16Array(scale.length * 2);
  for (let g = 0; g < scale.length; g++) {
    halves[2 * g] = scale[g];
    halves[2 * g + 1] = zero[g];
  }
  return new Uint32Array(halves.buffer);
}

/** NF4 absmax values from double-quantised metadata: `DYNAMIC8[code]·meta2[⌊g/256⌋] + offset`. */
export function nf4AbsmaxRef(
  metaCodes: Uint32Array,
  meta2: Float32Array,
  offset: number,
  groups: number,
): Float32Array {
  const out = new Float32Array(groups);
  for (let g = 0; g < groups; g++) {
    const code = (metaCodes[g >> 2] >>> ((g & 3) * 8)) & 255;
    out[g] = Math.fround(Math.fround(DYNAMIC8[code] * meta2[g >> 8]) + offset);
  }
  return out;
}
