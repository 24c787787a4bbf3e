/**
 * Reorders the three axes of a tensor (numpy's `transpose(x, perm)` for rank 3), moving raw 32-bit
 * words (f32, i32, u32). Attention's matmul route uses it for `[T, H, D] <-> [H, T, D]`.
 * Kernel: `kernels/permute.wgsl`.
 *
 * Shapes: `x` is `[A0, A1, A2]`; `y` is `[A[perm[0]], A[perm[1]], A[perm[2]]]`.
 *
 * @example Token-major heads to head-major
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { permute3 } from "./permute.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const x = Tensor.fromArray(dev, [1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2]); // [T, H, D]
 * const y = permute3(x, [1, 0, 2]); // [H, T, D]
 * assert.ok((await y.toArray()).join() === "1,2,5,6,3,4,7,8");
 * ```
 * @module
 */
import code from "../../kernels/permute.wgsl" with { type: "text" };
import { Tensor } from "../tensor/tensor.ts";
import { expectDType, expectRank, gpuOf, grid1d, params } from "./_kernel.ts";
import type { Words32 } from "./transpose.ts";

const WG = 64;
const PER_THREAD = 4;

/** An order of the axes 0, 1, 2: output axis `i` is input axis `perm[i]`. */
export type Perm3 = readonly [number, number, number];

function checkPerm(perm: Perm3): void {
  if (perm.length !== 3 || [...perm].sort().join() !== "0,1,2") {
    throw new RangeError(`Cannot run permute3: perm must order the axes 0, 1, 2: received [${perm}]`);
  }
}

/**
 * Reference: `y[i0, i1, i2] = x[j]` with `j_perm[k] = i_k`, both row-major.
 *
 * @param x `[A0, A1, A2]` (a longer array: only the leading `A0·A1·A2` words are read)
 * @param dims `[A0, A1, A2]`
 * @param y `[A[perm[0]], A[perm[1]], A[perm[2]]]`, written (only the leading words)
 */
export function permute3Ref<A extends Words32>(x: A, dims: readonly number[], perm: Perm3, y: A): void {
  const strides = [dims[1] * dims[2], dims[2], 1];
  const [B0, B1, B2] = perm.map((a) => dims[a]);
  const [s0, s1, s2] = perm.map((a) => strides[a]);
  let o = 0;
  for (let i = 0; i < B0; i++) {
    for (let j = 0; j < B1; j++) {
      for (let k = 0; k < B2; k++) y[o++] = x[i * s0 + j * s1 + k * s2];
    }
  }
}

/**
 * Writes the permutation of the leading `A0·A1·A2` words of `x` (read as `[A0, A1, A2]`) into the
 * leading words of `y`; the rest of `y` is left alone. For ops that read a slice of rows (a KV cache)
 * or fill part of a zeroed result.
 *
 * @param x at least `A0·A1·A2` words, 32-bit dtype
 * @param dims `[A0, A1, A2]`
 * @param y at least as many words, same dtype
 */
export function permute3Into(x: Tensor, dims: readonly number[], perm: Perm3, y: Tensor): void {
  checkPerm(perm);
  const total = dims[0] * dims[1] * dims[2];
  if (x.dtype !== y.dtype || total > x.size || total > y.size) {
    throw new TypeError(
      `Cannot run permute3: [${dims}] does not fit x ${x.dtype}[${x.shape}] and y ${y.dtype}[${y.shape}]`,
    );
  }
  if (total === 0) return;
  if (x.device.kind === "cpu") {
    const words = (t: Tensor) => new Uint32Array(t.storage.host!, 0, t.size);
    permute3Ref(words(x), dims, perm, words(y));
    return;
  }
  // The last axis stays last and holds whole vec4s: move 16 bytes per load.
  const vec4 = perm[2] === 2 && dims[2] % 4 === 0;
  const w = vec4 ? 4 : 1;
  const d = [dims[0], dims[1], dims[2] / w];
  const strides = [d[1] * d[2], d[2], 1];
  const [, B1, B2] = perm.map((a) => d[a]);
  gpuOf(x.device).dispatch({ name: "permute", code, entryPoint: vec4 ? "main4" : "main" }, {
    bindings: [x.storage, y.storage],
    params: params(
      ["u32", B1],
      ["u32", B2],
      ["u32", strides[perm[0]]],
      ["u32", strides[perm[1]]],
      ["u32", strides[perm[2]]],
      ["u32", total / w],
    ),
    workgroups: grid1d(Math.ceil(total / w / (WG * PER_THREAD))),
    constants: { WG },
  });
}

/**
 * Reorders the axes of a rank-3 tensor into a new contiguous tensor.
 *
 * @param x `[A0, A1, A2]` f32, i32 or u32
 * @param perm output axis `i` is input axis `perm[i]`
 * @returns `[A[perm[0]], A[perm[1]], A[perm[2]]]`, same dtype
 * @throws {TypeError} when `x` is not rank 3 or has a 16-bit dtype
 * @throws {RangeError} when `perm` is not an order of 0, 1, 2
 */
export function permute3<T extends Tensor>(x: T, perm: Perm3): T {
  expectRank("permute3", "x", x, 3);
  expectDType("permute3", "x", x, "f32", "i32", "u32");
  checkPerm(perm);
  const y = Tensor.empty(x.device, perm.map((a) => x.shape[a]), { dtype: x.dtype });
  permute3Into(x, x.shape, perm, y);
  return y as T;
}
