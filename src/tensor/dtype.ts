/**
 * Element types a tensor can hold.
 *
 * Compute kernels work in `f32` (and `i32`/`u32` for indices). `f16` and `bf16` are
 * storage types: checkpoints arrive in them, and `cast()` widens them to `f32` on the
 * device (two halves per `u32` word, unpacked in registers).
 * @module
 */

/** Element type of a tensor. */
export type DType = "f32" | "f16" | "bf16" | "i32" | "u32";

/** Every dtype, for error messages and validation. */
export const DTYPES: readonly DType[] = ["f32", "f16", "bf16", "i32", "u32"];

/** Bytes per element. */
export const DTYPE_BYTES: Readonly<Record<DType, number>> = { f32: 4, f16: 2, bf16: 2, i32: 4, u32: 4 };

/** Host-side array type per dtype. `f16` and `bf16` travel as their raw 16-bit patterns. */
export interface HostArrayOf {
  f32: Float32Array;
  f16: Uint16Array;
  bf16: Uint16Array;
  i32: Int32Array;
  u32: Uint32Array;
}

/** Any host array a tensor can be built from or read into. */
export type HostArray = HostArrayOf[DType];

/** A typed view of `buffer` for `dtype` (`length` elements from `byteOffset`). */
export function hostView<D extends DType>(
  dtype: D,
  buffer: ArrayBufferLike,
  byteOffset = 0,
  length?: number,
): HostArrayOf[D] {
  switch (dtype) {
    case "f32":
      return new Float32Array(buffer, byteOffset, length) as HostArrayOf[D];
    case "i32":
      return new Int32Array(buffer, byteOffset, length) as HostArrayOf[D];
    case "u32":
      return new Uint32Array(buffer, byteOffset, length) as HostArrayOf[D];
    default:
      return new Uint16Array(buffer, byteOffset, length) as HostArrayOf[D];
  }
}

/** The dtype a host array most naturally represents (`Uint16Array` reads as `f16`). */
export function dtypeOf(data: HostArray): DType {
  if (data instanceof Float32Array) return "f32";
  if (data instanceof Int32Array) return "i32";
  if (data instanceof Uint32Array) return "u32";
  return "f16";
}

/** Throws a `TypeError` unless `dtype` is one of {@link DTYPES}. */
export function checkDType(dtype: string, what: string): DType {
  if (!(DTYPES as readonly string[]).includes(dtype)) {
    throw new TypeError(`Cannot ${what}: unknown dtype "${dtype}": expected one of ${DTYPES.join(", ")}`);
  }
  return dtype as DType;
}
