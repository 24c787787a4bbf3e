/**
 * `QuantizedTensor`: a 2-D weight `[rows, cols]` (HF `[out, in]`) held as packed integer codes
 * plus per-group metadata, the form quantizers return and packed kernels consume directly.
 *
 * **Codes.** Row-major over `[rows, cols]`; each row is packed on its own into
 * `wordsPerRow(cols, bits)` `u32` words, `codesPerWord(bits)` codes per word, the first code in
 * the lowest bits: code `(r, c)` is `(codes[r·W + ⌊c/n⌋] >> (c mod n)·bits) & (2^bits − 1)` with
 * `n = codesPerWord(bits)`, `W = wordsPerRow`. 2, 4 and 8 bits fill a word (16, 8, 4 codes);
 * 3 bits packs 10 codes in the low 30 bits (as HQQ's `pack_3bit_32`), so 3.2 stored bits per code.
 * Rows are padded to whole words, so every row starts on a word (a GEMV row is contiguous).
 *
 * **Groups.** As HQQ groups a weight (`W.reshape(-1, g)` for axis 1, `W.reshape(g, -1)` for axis 0):
 * `axis: 1` — a group is `groupSize` consecutive elements of one row (along the input features, HQQ's
 * default); group of `(r, c)` is `r·(cols/g) + ⌊c/g⌋`. `axis: 0` — group `j` holds the flat elements
 * `j + t·N/g`, `t < g`, i.e. `g` rows `rows/g` apart in one column; group of `(r, c)` is
 * `(r mod rows/g)·cols + c`. `groupSize` must divide the grouped dimension (cols for axis 1, rows
 * for axis 0).
 *
 * **Metadata.**
 * - `affine` (RTN, HQQ): `meta` holds one `u32` per group, `pack2x16float(scale, zero)` (f16 each,
 *   as HQQ keeps them in the compute dtype); `Ŵ = (q − zero) · scale`, where `scale` is the step
 *   (HQQ's stored, inverted scale).
 * - `nf4`: `meta` holds one f32 absmax per group (bitsandbytes blocks along the flat tensor, which is
 *   `axis: 1` here); `Ŵ = NF4[q] · absmax`. With double quantisation, `meta` holds the absmax
 *   values as 8-bit codes of the bitsandbytes dynamic map, four per `u32`, and `meta2` one f32
 *   scale per 256 absmax values, `metaOffset` the subtracted mean:
 *   `absmax = DYNAMIC8[code] · meta2[⌊g/256⌋] + metaOffset`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { codesPerWord, packCodes, unpackCodes, wordsPerRow } from "./quantized_tensor.ts";
 * const codes = new Uint8Array([0, 1, 2, 3, 3, 2, 1]); // one row of 7 two-bit codes
 * const packed = packCodes(codes, 1, 7, 2); // -> 1 word
 * assert.ok(codesPerWord(3) === 10 && wordsPerRow(7, 2) === 1);
 * assert.ok(unpackCodes(packed, 1, 7, 2).join() === codes.join());
 * ```
 * @module
 */
import type { Tensor } from "./tensor.ts";

/**
 * How a quantizer made the codes: the name of a registered quantizer (built in: `"rtn"`, `"hqq"`,
 * `"nf4"`; `registerQuantizer` in `src/compressors/quant/quantizer.ts` adds more). Kernels read
 * `scheme`, never the method, so a new method needs no change here.
 */
export type QuantMethod = string;

/** Bit widths with packed kernels. */
export type QuantBits = 2 | 3 | 4 | 8;

/** Every supported bit width, for validation and sweeps. */
export const QUANT_BITS: readonly QuantBits[] = [2, 3, 4, 8];

/** Packed codes plus metadata; see the module doc for the exact layout. */
export interface QuantizedTensor {
  readonly method: QuantMethod;
  /** `"affine"`: `(q − zero)·scale`; `"nf4"`: `NF4[q]·absmax`. */
  readonly scheme: "affine" | "nf4";
  readonly bits: QuantBits;
  readonly groupSize: number;
  readonly axis: 0 | 1;
  /** Original `[rows, cols]`. */
  readonly shape: readonly [number, number];
  /** `u32[rows · wordsPerRow(cols, bits)]`. */
  readonly codes: Tensor<"u32">;
  /** affine: `u32[groups]` of packed f16 (scale, zero); nf4: `f32[groups]` absmax, or `u32[⌈groups/4⌉]` 8-bit codes with double quantisation. */
  readonly meta: Tensor<"u32"> | Tensor<"f32">;
  /** nf4 with double quantisation: `f32[⌈groups/256⌉]` second-level scales. */
  readonly meta2?: Tensor<"f32">;
  /** nf4 with double quantisation: the mean subtracted from the absmax values before quantising them; an f32 value (`Math.fround`), as the kernels add it in f32. */
  readonly metaOffset?: number;
  /** HQQ: the zero-point updates behind the kept (best) zero, and its mean |W − Ŵ| before f16 rounding; RTN/NF4: undefined. */
  readonly info?: { readonly iterations: number; readonly meanAbsError: number };
}

/** Codes per `u32` word: 16, 10, 8, 4 for 2, 3, 4, 8 bits. */
export function codesPerWord(bits: QuantBits): number {
  return bits === 3 ? 10 : 32 / bits;
}

/** `u32` words holding one row of `cols` codes. */
export function wordsPerRow(cols: number, bits: QuantBits): number {
  return Math.ceil(cols / codesPerWord(bits));
}

/** Number of groups of a `[rows, cols]` weight. */
export function numGroups(shape: readonly [number, number], groupSize: number): number {
  return (shape[0] * shape[1]) / groupSize;
}

/** Throws a `RangeError` naming the problem unless `bits`, `groupSize` and `axis` suit `shape`. */
export function checkQuantLayout(
  what: string,
  shape: readonly number[],
  bits: number,
  groupSize: number,
  axis: number,
): void {
  if (shape.length !== 2) {
    throw new RangeError(`Cannot ${what}: expected a 2-D weight [rows, cols]: received shape [${shape}]`);
  }
  if (!(QUANT_BITS as readonly number[]).includes(bits)) {
    throw new RangeError(`Cannot ${what}: bits must be one of ${QUANT_BITS.join(", ")}: received ${bits}`);
  }
  if (axis !== 0 && axis !== 1) throw new RangeError(`Cannot ${what}: axis must be 0 or 1: received ${axis}`);
  const dim = shape[axis === 1 ? 1 : 0];
  if (!Number.isInteger(groupSize) || groupSize < 1 || dim % groupSize !== 0) {
    const name = axis === 1 ? "row length (cols)" : "column length (rows)";
    throw new RangeError(
      `Cannot ${what}: group size ${groupSize} must be a positive integer dividing the ${name} ${dim} ` +
        `of weight [${shape}] (axis ${axis}); pick a divisor of ${dim}, or the other axis`,
    );
  }
}

/** Packs `rows·cols` codes (each `< 2^bits`) into the row-aligned `u32` layout. */
export function packCodes(
  codes: ArrayLike<number>,
  rows: number,
  cols: number,
  bits: QuantBits,
): Uint32Array {
  const n = codesPerWord(bits);
  const W = wordsPerRow(cols, bits);
  const out = new Uint32Array(rows * W);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      out[r * W + Math.floor(c / n)] |= codes[r * cols + c] << ((c % n) * bits);
    }
  }
  return out;
}

/** Inverse of {@link packCodes}. */
export function unpackCodes(packed: Uint32Array, rows: number, cols: number, bits: QuantBits): Uint8Array {
  const n = codesPerWord(bits);
  const W = wordsPerRow(cols, bits);
  const mask = (1 << bits) - 1;
  const out = new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      out[r * cols + c] = (packed[r * W + Math.floor(c / n)] >>> ((c % n) * bits)) & mask;
    }
  }
  return out;
}

/** Stored bytes of `q`: codes alone, and with every metadata tensor. */
export function quantizedBytes(q: QuantizedTensor): { codes: number; total: number } {
  const codes = q.codes.size * 4;
  const meta = q.meta.size * 4 + (q.meta2 ? q.meta2.size * 4 : 0) + (q.metaOffset !== undefined ? 4 : 0);
  return { codes, total: codes + meta };
}

/** Bits per weight parameter: codes alone (padding included), and with metadata. */
export function bitsPerParam(q: QuantizedTensor): { codes: number; total: number } {
  const params = q.shape[0] * q.shape[1];
  const b = quantizedBytes(q);
  return { codes: (8 * b.codes) / params, total: (8 * b.total) / params };
}

/** Frees every tensor of `q`. */
export function disposeQuantized(q: QuantizedTensor): void {
  q.codes.dispose();
  q.meta.dispose();
  q.meta2?.dispose();
}
