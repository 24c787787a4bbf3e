/**
 * Backward of `rmsNorm` (HF `LlamaRMSNorm`, in `./rmsnorm.ts`): for `y = w ⊙ x·r` with
 * `r = 1 / sqrt(mean(x²) + eps)` per row,
 *
 * - `dx = r·(w ⊙ dy) − x · r³/C · Σ_j dy_j·w_j·x_j`
 * - `dweight = Σ_rows dy ⊙ x·r`
 *
 * Kernel: `kernels/rmsnorm_backward.wgsl` (no atomics: `dweight` is summed per column over row
 * blocks, then over blocks, always in the same order, so results are bit-reproducible).
 *
 * Shapes: `R` rows (the product of the leading dims), `C` channels.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { rmsNormBackward } from "./rmsnorm_backward.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const x = Tensor.fromArray(dev, [3, 4], [1, 2]); // [R, C]; r = 1 / sqrt(12.5)
 * const w = Tensor.fromArray(dev, [1, 1]); // [C]
 * const dy = Tensor.fromArray(dev, [1, 0], [1, 2]); // [R, C]: gradient of y[0] only
 * const { dx, dweight } = rmsNormBackward(x, w, dy, 0); // [1, 2], [2]
 * const r = 1 / Math.sqrt(12.5);
 * assert.ok(Math.abs((await dx.toArray())[0] - (r - 9 * r ** 3 / 2)) < 1e-6);
 * assert.ok(Math.abs((await dweight.toArray())[0] - 3 * r) < 1e-6);
 * ```
 * @module
 */
import code from "../../kernels/rmsnorm_backward.wgsl" with { type: "text" };
import { Tensor } from "../tensor/tensor.ts";
import { expectDType, expectRank, gpuOf, grid1d, params, sameDevice } from "./_kernel.ts";
import { rowLaunch } from "./_rows.ts";

/** Rows per partial column sum of `dweight` on WebGPU. */
const ROWS_PER_BLOCK = 64;
const WG = 64;

/** Gradients returned by {@link rmsNormBackward}. */
export interface RmsNormGrads {
  /** `[..., C]` gradient with respect to `x`. */
  dx: Tensor<"f32">;
  /** `[C]` gradient with respect to `weight`, summed over rows. */
  dweight: Tensor<"f32">;
}

/**
 * Reference RMSNorm backward, row by row, accumulating in float64 (results rounded to f32).
 *
 * @param x `[R, C]` forward input.
 * @param weight `[C]` gain.
 * @param dy `[R, C]` upstream gradient.
 * @param dx `[R, C]` written.
 * @param dweight `[C]` written (not accumulated into).
 * @param eps As in the forward.
 */
export function rmsNormBackwardRef(
  x: Float32Array,
  weight: Float32Array,
  dy: Float32Array,
  dx: Float32Array,
  dweight: Float32Array,
  eps: number,
): void {
  const c = weight.length;
  const dw = new Float64Array(c);
  if (c > 0) {
    for (let o = 0; o < x.length; o += c) {
      let ss = 0;
      let dot = 0;
      for (let j = 0; j < c; j++) {
        ss += x[o + j] * x[o + j];
        dot += dy[o + j] * weight[j] * x[o + j];
      }
      const r = 1 / Math.sqrt(ss / c + eps);
      const k = r * r * r * dot / c;
      for (let j = 0; j < c; j++) {
        dx[o + j] = r * weight[j] * dy[o + j] - k * x[o + j];
        dw[j] += dy[o + j] * x[o + j] * r;
      }
    }
  }
  dweight.set(dw);
}

/**
 * Gradients of `rmsNorm` (`./rmsnorm.ts`) with respect to its input and its weight.
 *
 * On WebGPU the row sums and column sums run in f32: against the float64 reference the kernel is
 * within `rtol 1e-4` (with `atol` scaled to the gradient's magnitude) for rows of thousands of
 * channels.
 *
 * @param x `[..., C]` f32 forward input.
 * @param weight `[C]` f32 gain.
 * @param dy `[..., C]` f32 gradient of the loss with respect to the forward output.
 * @param eps As passed to the forward (default `1e-6`).
 * @returns `dx` `[..., C]` and `dweight` `[C]`, both f32.
 * @throws {TypeError} when dtypes are not f32, `weight` is not `[C]` or `dy` differs in shape from `x`.
 * @throws {RangeError} when `eps` is negative or not finite.
 */
export function rmsNormBackward(x: Tensor, weight: Tensor, dy: Tensor, eps = 1e-6): RmsNormGrads {
  const op = "rmsNormBackward";
  const device = sameDevice(op, x, weight, dy);
  expectDType(op, "x", x, "f32");
  expectDType(op, "weight", weight, "f32");
  expectDType(op, "dy", dy, "f32");
  expectRank(op, "x", x, 1, Infinity);
  const c = x.shape[x.rank - 1];
  if (weight.rank !== 1 || weight.shape[0] !== c) {
    throw new TypeError(
      `Cannot run ${op}: weight must have shape [${c}] to match the last dim of x [${x.shape}]: ` +
        `received [${weight.shape}]`,
    );
  }
  if (dy.rank !== x.rank || dy.shape.some((d, i) => d !== x.shape[i])) {
    throw new TypeError(
      `Cannot run ${op}: dy must have the shape of x [${x.shape}]: received [${dy.shape}]`,
    );
  }
  if (!Number.isFinite(eps) || eps < 0) {
    throw new RangeError(`Cannot run ${op}: eps must be a finite non-negative number: received ${eps}`);
  }
  const dx = Tensor.empty(device, x.shape); // [..., C] -> [..., C]
  const dweight = Tensor.zeros(device, [c]); // [C]
  if (x.size === 0) return { dx, dweight };
  const rows = x.size / c;
  if (device.kind === "cpu") {
    rmsNormBackwardRef(
      x.host() as Float32Array,
      weight.host() as Float32Array,
      dy.host() as Float32Array,
      dx.host(),
      dweight.host(),
      eps,
    );
    return { dx, dweight };
  }
  const gpu = gpuOf(device);
  const vec4 = c % 4 === 0;
  const suffix = vec4 ? "_vec4" : "";
  const cols = vec4 ? c / 4 : c;
  const blocks = Math.ceil(rows / ROWS_PER_BLOCK);
  const p = params(["u32", rows], ["u32", c], ["f32", eps], ["u32", ROWS_PER_BLOCK]);
  // Scratch, freed once the pending work is submitted.
  using rstd = Tensor.empty(device, [rows]); // [R]: 1 / rms of each row
  gpu.dispatch({ name: "rmsnorm_backward", code, entryPoint: vec4 ? "dx_vec4" : "dx_main" }, {
    bindings: [x.storage, weight.storage, dy.storage, dx.storage, rstd.storage],
    params: p,
    ...rowLaunch(device, rows, c),
  });
  using part = blocks > 1 ? Tensor.empty(device, [blocks, c]) : null; // [R / rpb, C]
  gpu.dispatch({ name: "rmsnorm_backward", code, entryPoint: `dw_part${suffix}` }, {
    bindings: [x.storage, dy.storage, rstd.storage, (part ?? dweight).storage],
    params: p,
    workgroups: grid1d(Math.ceil(cols * blocks / WG)),
    constants: { WG },
  });
  if (part) {
    gpu.dispatch({ name: "rmsnorm_backward", code, entryPoint: `dw_sum${suffix}` }, {
      bindings: [part.storage, dweight.storage],
      params: params(["u32", blocks], ["u32", c], ["f32", 0], ["u32", 0]),
      workgroups: grid1d(Math.ceil(cols / WG)),
      constants: { WG },
    });
  }
  return { dx, dweight };
}
