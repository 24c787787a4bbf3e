/**
 * Transpose of the last two axes: `[..., R, C] -> [..., C, R]`, moving raw 32-bit words (f32, i32,
 * u32). The backward of `matmul` uses it for `dB = Aᵀ·dY`. Kernel: `kernels/transpose.wgsl`.
 *
 * Shapes: `B` batch (the product of the leading dims), `R` rows, `C` columns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { transpose2d } from "./transpose.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const x = Tensor.fromArray(dev, [1, 2, 3, 4, 5, 6], [2, 3]); // [R, C]
 * const y = transpose2d(x); // [2, 3] -> [3, 2]
 * assert.ok(y.shape.join() === "3,2" && (await y.toArray()).join() === "1,4,2,5,3,6");
 * ```
 * @module
 */
import code from "../../kernels/transpose.wgsl" with { type: "text" };
import { Tensor } from "../tensor/tensor.ts";
import { expectDType, expectRank, gpuOf, grid1d, params } from "./_kernel.ts";

const WG = 64;
const PER_THREAD = 4;

/** Host arrays of 32-bit elements. */
export type Words32 = Float32Array | Int32Array | Uint32Array;

/**
 * Reference: `y[z, c, r] = x[z, r, c]` for `batch` row-major `[R, C]` matrices.
 *
 * @param x `[B, R, C]`
 * @param y `[B, C, R]`, written
 */
export function transpose2dRef<A extends Words32>(x: A, y: A, batch: number, R: number, C: number): void {
  const plane = R * C;
  for (let z = 0; z < batch; z++) {
    const o = z * plane;
    for (let r = 0; r < R; r++) {
      for (let c = 0; c < C; c++) y[o + c * R + r] = x[o + r * C + c];
    }
  }
}

/**
 * Swaps the last two axes into a new contiguous tensor.
 *
 * @param x `[..., R, C]` f32, i32 or u32 (rank ≥ 2).
 * @returns `[..., C, R]`, same dtype.
 * @throws {TypeError} when `x` has rank < 2 or a 16-bit dtype.
 */
export function transpose2d<T extends Tensor>(x: T): T {
  expectRank("transpose2d", "x", x, 2, Infinity);
  expectDType("transpose2d", "x", x, "f32", "i32", "u32");
  const R = x.shape[x.rank - 2];
  const C = x.shape[x.rank - 1];
  const batch = x.size / (R * C) || 0;
  const y = Tensor.empty(x.device, [...x.shape.slice(0, -2), C, R], { dtype: x.dtype }); // [..., C, R]
  if (x.size === 0) return y as T;
  if (x.device.kind === "cpu") {
    const words = (t: Tensor) => new Uint32Array(t.storage.host!, 0, t.size);
    transpose2dRef(words(x), words(y), batch, R, C);
  } else {
    gpuOf(x.device).dispatch({ name: "transpose", code }, {
      bindings: [x.storage, y.storage],
      params: params(["u32", R], ["u32", C], ["u32", batch], ["u32", x.size]),
      workgroups: grid1d(Math.ceil(x.size / (WG * PER_THREAD))),
      constants: { WG },
    });
  }
  return y as T;
}
