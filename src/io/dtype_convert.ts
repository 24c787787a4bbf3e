/**
 * Bit-exact conversions between 16-bit float storage (IEEE half `F16`, bfloat16 `BF16`) and
 * `Float32Array`. The 16-bit side is always raw bits in a `Uint16Array`, the way safetensors
 * stores them (little-endian, which is every platform Deno runs on).
 *
 * Widening (`f16ToF32`, `bf16ToF32`) is exact. Narrowing (`f32ToF16`, `f32ToBf16`) rounds to
 * nearest, ties to even, as PyTorch's `.half()` / `.bfloat16()` do; NaN stays NaN (quiet, sign kept)
 * and values past the largest finite half become ±Infinity.
 *
 * @example Round-trip a few values through F16
 * ```ts
 * import assert from "node:assert/strict";
 * import { f16ToF32, f32ToF16 } from "./dtype_convert.ts";
 * const half = f32ToF16(new Float32Array([1, 0.1, 65504]));
 * assert.ok(half[0] === 0x3c00); // 1.0 in half precision
 * assert.ok(f16ToF32(half)[2] === 65504); // the largest finite half
 * ```
 * @module
 */

/**
 * Widen IEEE-754 half-precision bits to float32. Exact: every half value, subnormals included,
 * is a float32 value.
 *
 * @param bits `[N]` raw half bits (`F16` storage).
 * @returns `[N]` float32 values.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { f16ToF32 } from "./dtype_convert.ts";
 * const out = f16ToF32(new Uint16Array([0x3c00, 0xc000, 0x0001, 0x7c00]));
 * assert.ok(out[0] === 1 && out[1] === -2 && out[2] === 2 ** -24 && out[3] === Infinity);
 * ```
 */
export function f16ToF32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i];
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0x1f) {
      // Inf (mant 0) or NaN: keep the payload in the top mantissa bits.
      outBits[i] = (sign | 0x7f800000 | (mant << 13)) >>> 0;
    } else if (exp !== 0) {
      // Normal: rebias the exponent from 15 to 127.
      outBits[i] = (sign | ((exp + 112) << 23) | (mant << 13)) >>> 0;
    } else if (mant === 0) {
      outBits[i] = sign >>> 0; // ±0
    } else {
      // Subnormal half = mant * 2^-24, a normal float32; the product is exact.
      out[i] = (sign ? -mant : mant) * 2 ** -24;
    }
  }
  return out;
}

/**
 * Widen bfloat16 bits to float32. Exact: bfloat16 is the top half of a float32.
 *
 * @param bits `[N]` raw bfloat16 bits (`BF16` storage).
 * @returns `[N]` float32 values.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bf16ToF32 } from "./dtype_convert.ts";
 * assert.ok(bf16ToF32(new Uint16Array([0x3f80, 0xbfc0]))[1] === -1.5);
 * ```
 */
export function bf16ToF32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  const outBits = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++) outBits[i] = bits[i] << 16 >>> 0;
  return out;
}

/** Round one float32 bit pattern to half bits, ties to even. */
function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0); // Inf / quiet NaN
  const e = exp - 112; // half exponent field: rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00; // overflow -> Inf
  if (e >= 1) {
    // Normal half: drop 13 mantissa bits. A carry out of the mantissa correctly bumps the
    // exponent, and from the largest exponent it lands exactly on Inf (0x7c00).
    const rem = mant & 0x1fff;
    const h = sign | (e << 10) | (mant >>> 13);
    return rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0) ? h + 1 : h;
  }
  // Subnormal half (or zero): value = full * 2^(exp-150) = (full >> shift) * 2^-24.
  // shift >= 25 means |x| < 2^-25, strictly below half the smallest subnormal: rounds to ±0.
  const shift = 14 - e;
  if (shift >= 25) return sign;
  const full = mant | 0x800000;
  const m = full >>> shift;
  const rem = full & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  // m + 1 may reach 0x400: that is the smallest normal half, the right answer.
  return sign | (rem > half || (rem === half && (m & 1) !== 0) ? m + 1 : m);
}

/**
 * Narrow float32 to IEEE half bits, rounding to nearest, ties to even. Overflow gives ±Infinity,
 * underflow gives subnormals then ±0, NaN gives a quiet NaN with the sign kept.
 *
 * @param values `[N]` float32 values (a `Float64Array` or `number[]` is first rounded to float32).
 * @returns `[N]` raw half bits, ready to write as `F16`.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { f32ToF16 } from "./dtype_convert.ts";
 * // 1 + 2^-11 is halfway between 1 and the next half (1 + 2^-10): ties go to even, 1.0.
 * assert.ok(f32ToF16(new Float32Array([1 + 2 ** -11]))[0] === 0x3c00);
 * ```
 */
export function f32ToF16(values: Float32Array | ArrayLike<number>): Uint16Array {
  const f32 = values instanceof Float32Array ? values : Float32Array.from(values);
  const inBits = new Uint32Array(f32.buffer, f32.byteOffset, f32.length);
  const out = new Uint16Array(f32.length);
  for (let i = 0; i < f32.length; i++) out[i] = f32BitsToF16(inBits[i]);
  return out;
}

/**
 * Narrow float32 to bfloat16 bits, rounding to nearest, ties to even (PyTorch's rule). NaN gives
 * a quiet NaN with the sign kept; values that round past the largest bfloat16 become ±Infinity.
 *
 * @param values `[N]` float32 values (a `Float64Array` or `number[]` is first rounded to float32).
 * @returns `[N]` raw bfloat16 bits, ready to write as `BF16`.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { f32ToBf16 } from "./dtype_convert.ts";
 * assert.ok(f32ToBf16(new Float32Array([1]))[0] === 0x3f80);
 * ```
 */
export function f32ToBf16(values: Float32Array | ArrayLike<number>): Uint16Array {
  const f32 = values instanceof Float32Array ? values : Float32Array.from(values);
  const inBits = new Uint32Array(f32.buffer, f32.byteOffset, f32.length);
  const out = new Uint16Array(f32.length);
  for (let i = 0; i < f32.length; i++) {
    const x = inBits[i];
    if ((x & 0x7f800000) === 0x7f800000 && (x & 0x7fffff) !== 0) {
      out[i] = (x >>> 16) | 0x40; // NaN: quiet it so truncation cannot turn it into Inf
    } else {
      // Adding 0x7fff plus the lowest kept bit rounds half to even; the carry may reach Inf.
      out[i] = (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
    }
  }
  return out;
}
