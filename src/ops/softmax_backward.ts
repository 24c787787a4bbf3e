/**
 * Backward of softmax over the last axis, from the forward's output `y = softmax(x)`:
 * `dx = y ⊙ (dy − Σ_j dy_j·y_j)` per row (the Jacobian `diag(y) − y yᵀ` applied to `dy`).
 * Kernel: `kernels/softmax_backward.wgsl`.
 *
 * Shapes: `R` rows (the product of the leading dims), `C` entries per row.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { softmaxBackward } from "./softmax_backward.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const y = Tensor.fromArray(dev, [0.25, 0.75], [1, 2]); // [R, C] softmax output
 * const dy = Tensor.fromArray(dev, [1, 0], [1, 2]); // [R, C]
 * const dx = await softmaxBackward(y, dy).toArray(); // [1, 2]: y ⊙ (dy − 0.25)
 * assert.ok(Math.abs(dx[0] - 0.1875) < 1e-7 && Math.abs(dx[1] + 0.1875) < 1e-7);
 * ```
 * @module
 */
import code from "../../kernels/softmax_backward.wgsl" with { type: "text" };
import { Tensor } from "../tensor/tensor.ts";
import { expectDType, expectRank, gpuOf, params, sameDevice } from "./_kernel.ts";
import { rowLaunch } from "./_rows.ts";

/**
 * Reference softmax backward of each row of `c` values (float64 dot product, results rounded to f32).
 *
 * @param y `[R, C]` softmax output, row-major.
 * @param dy `[R, C]` upstream gradient.
 * @param dx `[R, C]` written.
 * @param c Row length `C`.
 */
export function softmaxBackwardRef(y: Float32Array, dy: Float32Array, dx: Float32Array, c: number): void {
  if (c === 0) return;
  for (let o = 0; o < y.length; o += c) {
    let s = 0;
    for (let j = 0; j < c; j++) s += dy[o + j] * y[o + j];
    for (let j = 0; j < c; j++) dx[o + j] = y[o + j] * (dy[o + j] - s);
  }
}

/**
 * Gradient of softmax (over the last axis) with respect to its logits, given its output.
 *
 * Against the float64 reference the kernel is within `rtol 1e-4` plus an `atol` of about
 * `1e-6 · max|y|·Σ|dy·y|` (the f32 row dot product) for rows of thousands of entries.
 *
 * @param y `[..., C]` f32 softmax output of the forward.
 * @param dy `[..., C]` f32 gradient of the loss with respect to `y`.
 * @returns `[..., C]` f32 gradient with respect to the logits.
 * @throws {TypeError} when dtypes are not f32, `y` is a scalar or `dy` differs in shape from `y`.
 */
export function softmaxBackward(y: Tensor, dy: Tensor): Tensor<"f32"> {
  const op = "softmaxBackward";
  const device = sameDevice(op, y, dy);
  expectDType(op, "y", y, "f32");
  expectDType(op, "dy", dy, "f32");
  expectRank(op, "y", y, 1, Infinity);
  if (dy.rank !== y.rank || dy.shape.some((d, i) => d !== y.shape[i])) {
    throw new TypeError(
      `Cannot run ${op}: dy must have the shape of y [${y.shape}]: received [${dy.shape}]`,
    );
  }
  const c = y.shape[y.rank - 1];
  const dx = Tensor.empty(device, y.shape); // [..., C] -> [..., C]
  if (y.size === 0) return dx;
  const rows = y.size / c;
  if (device.kind === "cpu") {
    softmaxBackwardRef(y.host() as Float32Array, dy.host() as Float32Array, dx.host(), c);
  } else {
    gpuOf(device).dispatch(
      { name: "softmax_backward", code, entryPoint: c % 4 === 0 ? "main_vec4" : "main" },
      {
        bindings: [y.storage, dy.storage, dx.storage],
        params: params(["u32", rows], ["u32", c], ["u32", 0], ["u32", 0]),
        ...rowLaunch(device, rows, c),
      },
    );
  }
  return dx;
}
