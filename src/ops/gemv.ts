/**
 * Matrix-vector product for decoding one token: `gemv(W, x) = W x` with W `[out, in]`
 * row-major as HF stores `Linear` weights, so `gemv(W, x)` equals
 * `matmul(x, W, { transB: true })` for a single row. Kernel: `kernels/gemv.wgsl` (several
 * rows per invocation from vec4 loads of W, x read uniformly; no barriers). On the CPU device,
 * `cblas_sgemv` when a BLAS is loaded.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { gemv } from "./gemv.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const w = Tensor.fromArray(dev, [1, 2, 3, 4, 5, 6], [2, 3]); // [out, in]
 * const x = Tensor.fromArray(dev, [1, 0, -1]); // [in]
 * const y = gemv(w, x); // [2, 3] · [3] -> [2]
 * assert.ok((await y.toArray()).join() === "-2,-2");
 * ```
 * @module
 */
import code from "../../kernels/gemv.wgsl" with { type: "text" };
import { Tensor } from "../tensor/tensor.ts";
import { blasOf } from "./_blas.ts";
import { hostF32 } from "./_f16.ts";
import { dispatchGatherMatmul } from "./gather_matmul.ts";
import { expectDType, expectRank, gpuOf, grid1d, params, sameDevice } from "./_kernel.ts";

/** Kernel configuration: invocations per workgroup and rows per invocation. */
export const GEMV_KERNEL = { WG: 16, R: 4 } as const;

// ---------------------------------------------------------------------------------------
// Reference (the CPU backend and the test oracle)

/** y[o] = Σ_i w[o·cols + i] · x[i] for o < rows, accumulated in float64, rounded once to f32. */
export function gemvRef(w: Float32Array, x: Float32Array, y: Float32Array, rows: number, cols: number): void {
  for (let o = 0; o < rows; o++) {
    const off = o * cols;
    let s = 0;
    for (let i = 0; i < cols; i++) s += w[off + i] * x[i];
    y[o] = s;
  }
}

// ---------------------------------------------------------------------------------------
// Op

/**
 * `[out, in] · [in] -> [out]`, or `[out, in] · [1, in] -> [1, out]` (x keeps its leading 1).
 * W f32 or f16 (halves widen in registers: `kernels/gather_matmul.wgsl`, DIRECT mode; on the
 * CPU they are widened exactly first), x and the result f32, accumulated in f32 on the GPU.
 */
export function gemv(w: Tensor, x: Tensor): Tensor<"f32"> {
  const device = sameDevice("gemv", w, x);
  expectDType("gemv", "W", w, "f32", "f16");
  expectDType("gemv", "x", x, "f32");
  expectRank("gemv", "W", w, 2);
  expectRank("gemv", "x", x, 1, 2);
  const [rows, cols] = w.shape;
  const xCols = x.shape[x.rank - 1];
  if ((x.rank === 2 && x.shape[0] !== 1) || xCols !== cols) {
    throw new TypeError(
      `Cannot run gemv: W of shape [${w.shape}] and x of shape [${x.shape}]: x must be [${cols}] or [1, ${cols}]` +
        (x.rank === 2 && x.shape[0] !== 1 ? "; for several rows use matmul(x, W, { transB: true })" : ""),
    );
  }
  const y = Tensor.empty(device, x.rank === 2 ? [1, rows] : [rows]);
  if (rows === 0 || cols === 0) return y; // device memory starts zeroed
  if (device.kind === "cpu") {
    const blas = blasOf(device); // cblas_sgemv when loaded, else the reference
    const w32 = hostF32(w); // f16 weights widened exactly
    if (blas) blas.gemv(false, rows, cols, w32, x.host() as Float32Array, y.host());
    else gemvRef(w32, x.host() as Float32Array, y.host(), rows, cols);
    return y;
  }
  if (w.dtype === "f16") {
    dispatchGatherMatmul(w, x, undefined, y, { T: 1, K: 1, Kx: 1, E: 1, N: rows, C: cols }); // halves widen in registers
    return y;
  }
  const { WG, R } = GEMV_KERNEL;
  gpuOf(device).dispatch({ name: "gemv", code, entryPoint: cols % 4 === 0 ? "rows4" : "rows1" }, {
    bindings: [w.storage, x.storage, y.storage],
    params: params(["u32", rows], ["u32", cols]),
    workgroups: grid1d(Math.ceil(rows / (R * WG))),
    constants: { WG, R },
  });
  return y;
}
