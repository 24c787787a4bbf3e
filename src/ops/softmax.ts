/**
 * Numerically stable softmax over the last axis: the row max is subtracted before `exp`, so
 * logits of any magnitude give finite probabilities. Kernel: `kernels/softmax.wgsl`.
 *
 * Shapes: `R` rows (the product of the leading dims), `C` entries per row.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { softmax } from "./softmax.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const x = Tensor.fromArray(dev, [0, Math.log(3), 1000, 1000], [2, 2]); // [R, C]
 * const p = await softmax(x).toArray(); // [2, 2] -> [2, 2]
 * assert.ok(Math.abs(p[1] - 0.75) < 1e-6 && p[2] === 0.5);
 * ```
 * @module
 */
import { exp } from "./_exp.ts";
import code from "../../kernels/softmax.wgsl" with { type: "text" };
import { Tensor } from "../tensor/tensor.ts";
import { expectDType, expectRank, gpuOf, params } from "./_kernel.ts";
import { rowLaunch } from "./_rows.ts";

/**
 * Reference softmax of each row of `c` values (float64 math, result rounded to f32). A row of
 * only `-Infinity` gives NaN, as in PyTorch.
 *
 * @param x `[R, C]` logits, row-major.
 * @param y `[R, C]` output probabilities.
 * @param c Row length `C`.
 */
export function softmaxRef(x: Float32Array, y: Float32Array, c: number): void {
  if (c === 0) return;
  for (let o = 0; o < x.length; o += c) {
    let m = -Infinity;
    for (let j = 0; j < c; j++) m = Math.max(m, x[o + j]);
    let s = 0;
    for (let j = 0; j < c; j++) s += exp(x[o + j] - m);
    for (let j = 0; j < c; j++) y[o + j] = exp(x[o + j] - m) / s;
  }
}

/**
 * Softmax over the last axis.
 *
 * Against the float64 reference the kernel is within `rtol 1e-5, atol 1e-7` (f32 `exp` and an
 * f32 row sum); masked entries of `-Infinity` give exactly 0.
 *
 * @param x `[..., C]` f32 logits.
 * @returns `[..., C]` f32 probabilities; each row sums to 1.
 * @throws {TypeError} when `x` is not f32 or is a scalar.
 */
export function softmax(x: Tensor): Tensor<"f32"> {
  expectDType("softmax", "x", x, "f32");
  expectRank("softmax", "x", x, 1, Infinity);
  const c = x.shape[x.rank - 1];
  const y = Tensor.empty(x.device, x.shape); // [..., C] -> [..., C]
  if (x.size === 0) return y;
  const rows = x.size / c;
  if (x.device.kind === "cpu") {
    softmaxRef(x.host() as Float32Array, y.host(), c);
  } else {
    const entryPoint = c % 4 === 0 ? "main_vec4" : "main";
    gpuOf(x.device).dispatch({ name: "softmax", code, entryPoint }, {
      bindings: [x.storage, y.storage],
      params: params(["u32", rows], ["u32", c], ["u32", 0], ["u32", 0]),
      ...rowLaunch(x.device, rows, c),
    });
  }
  return y;
}
