/**
 * Float format casts: `f16`/`bf16` storage to `f32` (exact), `f32` to `f16`/`bf16` (round to
 * nearest, ties to even, as PyTorch's `.half()` / `.bfloat16()`), and identity copies. 16-bit
 * tensors hold two elements per 4-byte word (little-endian halves, the storage padded to 4 bytes),
 * so odd lengths are fine. Kernel: `kernels/cast.wgsl`, bit-exact against {@link castRef}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { cast, castToBf16 } from "./cast.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const h = Tensor.fromArray(dev, new Uint16Array([0x3c00, 0xc000, 0x0001]), [3], { dtype: "f16" });
 * const x = await cast(h, "f32").toArray(); // [3] f16 -> [3] f32
 * assert.ok(x[0] === 1 && x[1] === -2 && x[2] === 2 ** -24);
 * assert.ok((await castToBf16(cast(h, "f32")).toArray())[0] === 0x3f80); // 1.0 in bf16
 * ```
 * @module
 */
import code from "../../kernels/cast.wgsl" with { type: "text" };
import { Tensor } from "../tensor/tensor.ts";
import { expectDType, gpuOf, grid1d, params } from "./_kernel.ts";

const WG = 64;
const PER_THREAD = 4;

/** The float dtypes `cast` converts between. */
export type FloatDType = "f32" | "f16" | "bf16";

const FLOATS: readonly FloatDType[] = ["f32", "f16", "bf16"];

// ---------------------------------------------------------------------------------------
// References: scalar bit-pattern conversions (the kernel's integer code, line for line)

/** IEEE half bits → float32 bits (exact; subnormals become normal f32, NaN payloads kept). */
export function f16ToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return (sign | 0x7f800000 | (m << 13)) >>> 0;
  if (e !== 0) return (sign | ((e + 112) << 23) | (m << 13)) >>> 0;
  if (m === 0) return sign >>> 0;
  const b = 31 - Math.clz32(m); // leading bit of the subnormal mantissa
  return (sign | ((b + 103) << 23) | ((m << (23 - b)) & 0x7fffff)) >>> 0;
}

/** bfloat16 bits → float32 bits (exact: bf16 is the top half of an f32). */
export function bf16ToF32Bits(b: number): number {
  return (b << 16) >>> 0;
}

/** Float32 bits → IEEE half bits, round to nearest even; overflow → ±inf, NaN → quiet NaN. */
export function f32ToF16Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return mant !== 0 ? sign | 0x7e00 | (mant >>> 13) : sign | 0x7c00;
  const e = exp - 112;
  if (e >= 31) return sign | 0x7c00;
  if (e >= 1) {
    const rem = mant & 0x1fff;
    const h = sign | (e << 10) | (mant >>> 13);
    return rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0) ? h + 1 : h;
  }
  const shift = 14 - e;
  if (shift >= 25) return sign;
  const full = mant | 0x800000;
  const m = full >>> shift;
  const rem = full & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return sign | (rem > half || (rem === half && (m & 1) !== 0) ? m + 1 : m);
}

/** Float32 bits → bfloat16 bits, round to nearest even; NaN → quiet NaN (never inf). */
export function f32ToBf16Bits(x: number): number {
  if ((x & 0x7fffffff) >>> 0 > 0x7f800000) return (x >>> 16) | 0x40;
  return ((x >>> 0) + 0x7fff + ((x >>> 16) & 1)) >>> 16;
}

/**
 * Reference cast of `x` (dtype `from`) into `y` (dtype `to`): f32 data as `Float32Array`, 16-bit
 * data as raw bits in a `Uint16Array`. 16-bit to 16-bit goes through f32 (exact, then one rounding).
 *
 * @param x `[N]` source.
 * @param y `[N]` destination.
 */
export function castRef(
  x: Float32Array | Uint16Array,
  from: FloatDType,
  y: Float32Array | Uint16Array,
  to: FloatDType,
): void {
  const n = x.length;
  const src = from === "f32" ? new Uint32Array(x.buffer, x.byteOffset, n) : x;
  const dst = to === "f32" ? new Uint32Array(y.buffer, y.byteOffset, n) : y;
  const widen = from === "f16" ? f16ToF32Bits : from === "bf16" ? bf16ToF32Bits : (b: number) => b;
  const narrow = to === "f16" ? f32ToF16Bits : to === "bf16" ? f32ToBf16Bits : (b: number) => b;
  for (let i = 0; i < n; i++) dst[i] = narrow(widen(src[i]));
}

// ---------------------------------------------------------------------------------------
// Op

function dispatchCast(x: Tensor, y: Tensor, entryPoint: string): void {
  gpuOf(x.device).dispatch({ name: "cast", code, entryPoint }, {
    bindings: [x.storage, y.storage],
    params: params(["u32", x.size], ["u32", 0], ["u32", 0], ["u32", 0]),
    workgroups: grid1d(Math.ceil(Math.ceil(x.size / 2) / (WG * PER_THREAD))),
    constants: { WG },
  });
}

/**
 * Casts a float tensor to `dtype`. Widening to f32 is exact; narrowing rounds to nearest, ties to
 * even (values past the format's range become ±inf, NaN stays NaN). The same dtype gives a copy.
 *
 * @param x `[...]` f32, f16 or bf16.
 * @param dtype Target: `"f32"`, `"f16"` or `"bf16"`.
 * @returns `[...]` tensor of `dtype` (a new tensor, also when the dtype is unchanged).
 * @throws {TypeError} when `x` or `dtype` is not a float dtype.
 */
export function cast<D extends FloatDType>(x: Tensor, dtype: D): Tensor<D> {
  expectDType("cast", "x", x, ...FLOATS);
  if (!FLOATS.includes(dtype)) {
    throw new TypeError(`Cannot run cast: dtype must be one of ${FLOATS.join(", ")}: received ${dtype}`);
  }
  const from = x.dtype as FloatDType;
  const y = Tensor.empty(x.device, x.shape, { dtype }); // [...] -> [...]
  if (x.size === 0) return y;
  if (x.device.kind === "cpu") {
    castRef(x.host() as Float32Array | Uint16Array, from, y.host() as Float32Array | Uint16Array, dtype);
  } else if (from === dtype) {
    gpuOf(x.device).copy(x.storage, 0, y.storage, 0, y.storage.bytes);
  } else if (from === "f32") {
    dispatchCast(x, y, dtype === "f16" ? "f32_to_f16" : "f32_to_bf16");
  } else if (dtype === "f32") {
    dispatchCast(x, y, from === "f16" ? "f16_to_f32" : "bf16_to_f32");
  } else {
    using wide = cast(x, "f32"); // f16 <-> bf16: widen exactly, then round once
    dispatchCast(wide, y, dtype === "f16" ? "f32_to_f16" : "f32_to_bf16");
  }
  return y;
}

/** `cast(x, "f16")`: f32 (or bf16) to IEEE half, round to nearest even. `[...] -> [...]` */
export function castToF16(x: Tensor): Tensor<"f16"> {
  return cast(x, "f16");
}

/** `cast(x, "bf16")`: f32 (or f16) to bfloat16, round to nearest even. `[...] -> [...]` */
export function castToBf16(x: Tensor): Tensor<"bf16"> {
  return cast(x, "bf16");
}
