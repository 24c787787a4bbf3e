/**
 * RMSNorm over the last axis, as HF `LlamaRMSNorm`: `y = x / sqrt(mean(x²) + eps) * weight`,
 * computed in f32 with the weight applied after normalisation. Kernel: `kernels/rmsnorm.wgsl`.
 *
 * Shapes: `R` rows (the product of the leading dims), `C` channels.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { rmsNorm } from "./rmsnorm.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const x = Tensor.fromArray(dev, [3, 4, -3, -4], [2, 2]); // [R, C]
 * const w = Tensor.fromArray(dev, [1, 2]); // [C]
 * const y = await rmsNorm(x, w, 0).toArray(); // [2, 2] -> [2, 2]; rms of each row is sqrt(12.5)
 * assert.ok(Math.abs(y[1] - 8 / Math.sqrt(12.5)) < 1e-6);
 * ```
 * @module
 */
import code from "../../kernels/rmsnorm.wgsl" with { type: "text" };
import { Tensor } from "../tensor/tensor.ts";
import { expectDType, expectRank, gpuOf, params, sameDevice } from "./_kernel.ts";
import { rowLaunch } from "./_rows.ts";

/**
 * Reference RMSNorm, row by row (sum of squares in float64, result rounded to f32).
 *
 * @param x `[R, C]` input, row-major.
 * @param weight `[C]` scale.
 * @param y `[R, C]` output.
 * @param eps Added to the mean square before the square root.
 */
export function rmsNormRef(x: Float32Array, weight: Float32Array, y: Float32Array, eps: number): void {
  const c = weight.length;
  if (c === 0) return;
  for (let o = 0; o < x.length; o += c) {
    let ss = 0;
    for (let j = 0; j < c; j++) ss += x[o + j] * x[o + j];
    const inv = 1 / Math.sqrt(ss / c + eps);
    for (let j = 0; j < c; j++) y[o + j] = x[o + j] * inv * weight[j];
  }
}

/**
 * RMSNorm over the last axis: `x / sqrt(mean(x²) + eps) * weight`.
 *
 * The kernel sums squares in f32 per invocation; against the float64 reference the result is
 * within `rtol 2e-5, atol 1e-6` for rows of up to a few thousand channels.
 *
 * @param x `[..., C]` f32 activations.
 * @param weight `[C]` f32 gain.
 * @param eps Non-negative; `1e-6` (Llama) or `1e-5` are common.
 * @returns `[..., C]` f32.
 * @throws {TypeError} when dtypes are not f32 or `weight` is not `[C]`.
 * @throws {RangeError} when `eps` is negative or not finite.
 */
export function rmsNorm(x: Tensor, weight: Tensor, eps = 1e-6): Tensor<"f32"> {
  const device = sameDevice("rmsNorm", x, weight);
  expectDType("rmsNorm", "x", x, "f32");
  expectDType("rmsNorm", "weight", weight, "f32");
  expectRank("rmsNorm", "x", x, 1, Infinity);
  const c = x.shape[x.rank - 1];
  if (weight.rank !== 1 || weight.shape[0] !== c) {
    throw new TypeError(
      `Cannot run rmsNorm: weight must have shape [${c}] to match the last dim of x [${x.shape}]: ` +
        `received [${weight.shape}]`,
    );
  }
  if (!Number.isFinite(eps) || eps < 0) {
    throw new RangeError(`Cannot run rmsNorm: eps must be a finite non-negative number: received ${eps}`);
  }
  const y = Tensor.empty(device, x.shape); // [..., C] -> [..., C]
  if (x.size === 0) return y;
  const rows = x.size / c;
  if (device.kind === "cpu") {
    rmsNormRef(x.host() as Float32Array, weight.host() as Float32Array, y.host(), eps);
  } else {
    const entryPoint = c % 4 === 0 ? "main_vec4" : "main";
    gpuOf(device).dispatch({ name: "rmsnorm", code, entryPoint }, {
      bindings: [x.storage, weight.storage, y.storage],
      params: params(["u32", rows], ["u32", c], ["f32", eps], ["u32", 0]),
      ...rowLaunch(device, rows, c),
    });
  }
  return y;
}
