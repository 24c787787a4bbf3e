/**
 * Sums and means: over the last axis (`sum`, `mean`) or over every element (`sumAll`,
 * `meanAll`, which return a scalar tensor of shape `[]`). Kernel: `kernels/reduce.wgsl`.
 *
 * Shapes: `R` rows (the product of the leading dims), `C` entries per row.
 *
 * Numerics: the kernel adds in f32 in blocks of 32 per invocation, then pairwise across lanes
 * and chunks (see the kernel header for the bound). Against the float64 reference, results are
 * within `1e-6 · Σ|x|` of the row (or tensor) on rows up to ~4k and tensors of millions of values.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { mean, sumAll } from "./reduce.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const x = Tensor.fromArray(dev, [1, 2, 3, 4, 5, 6], [2, 3]); // [R, C]
 * assert.ok((await mean(x).toArray())[1] === 5); // [2, 3] -> [2]
 * const total = sumAll(x); // [2, 3] -> []
 * assert.ok(total.shape.length === 0 && (await total.toArray())[0] === 21);
 * ```
 * @module
 */
import code from "../../kernels/reduce.wgsl" with { type: "text" };
import type { Storage } from "../device/device.ts";
import { Tensor } from "../tensor/tensor.ts";
import { expectDType, gpuOf, params } from "./_kernel.ts";
import { mul } from "./elementwise.ts";
import { rowLaunch } from "./_rows.ts";

/** Elements per partial sum in the first passes of `sumAll` on WebGPU. */
const CHUNK = 4096;

/** Options of {@link sum} and {@link mean}. */
export interface ReduceOptions {
  /** Axis to reduce; only the last axis (`-1`, or `rank - 1`) is supported. Default `-1`. */
  axis?: number;
}

/**
 * Reference row sums in float64, rounded to f32: `y[r] = Σ_j x[r·c + j] / divisor`.
 *
 * @param x `[R, C]` values, row-major.
 * @param y `[R]` output.
 * @param c Row length `C` (`0` gives `0 / divisor`).
 * @param divisor `1` for sums, `C` (or the element count) for means.
 */
export function sumRef(x: Float32Array, y: Float32Array, c: number, divisor = 1): void {
  for (let r = 0; r < y.length; r++) {
    let s = 0;
    for (let j = r * c; j < r * c + c; j++) s += x[j];
    y[r] = s / divisor;
  }
}

function lastAxis(op: string, x: Tensor, options: ReduceOptions): number {
  expectDType(op, "x", x, "f32");
  if (x.rank === 0) throw new TypeError(`Cannot run ${op}: x must have rank at least 1: received shape []`);
  const axis = options.axis ?? -1;
  if (axis !== -1 && axis !== x.rank - 1) {
    throw new RangeError(
      `Cannot run ${op}: only the last axis (-1 or ${x.rank - 1}) is supported: received axis ${axis} ` +
        `for shape [${x.shape}]; use sumAll/meanAll for every element`,
    );
  }
  return x.shape[x.rank - 1];
}

/** Records one pass: `rows` sums of `c`-long chunks of the first `n` values of `src`. */
function dispatchSums(
  x: Tensor,
  src: Storage,
  dst: Storage,
  rows: number,
  c: number,
  n: number,
  div: number,
) {
  const entryPoint = c > 0 && c % 4 === 0 && n % 4 === 0 ? "main_vec4" : "main"; // vec4 bindings need >= 16 bytes
  gpuOf(x.device).dispatch({ name: "reduce", code, entryPoint }, {
    bindings: [src, dst],
    params: params(["u32", rows], ["u32", c], ["u32", n], ["f32", div]),
    ...rowLaunch(x.device, rows, c),
  });
}

function rowReduce(op: string, x: Tensor, options: ReduceOptions, isMean: boolean): Tensor<"f32"> {
  const c = lastAxis(op, x, options);
  const y = Tensor.empty(x.device, x.shape.slice(0, -1)); // [..., C] -> [...]
  const rows = y.size;
  if (rows === 0) return y;
  const div = isMean ? c : 1;
  if (x.device.kind === "cpu") sumRef(x.host() as Float32Array, y.host(), c, div);
  else dispatchSums(x, x.storage, y.storage, rows, c, rows * c, div);
  return y;
}

function allReduce(op: string, x: Tensor, isMean: boolean): Tensor<"f32"> {
  expectDType(op, "x", x, "f32");
  const n = x.size;
  const div = isMean ? n : 1;
  if (n === 0) return Tensor.fromArray(x.device, new Float32Array([0 / div]), []); // 0, or NaN for a mean
  const y = Tensor.empty(x.device, []); // [...] -> []
  if (x.device.kind === "cpu") {
    sumRef(x.host() as Float32Array, y.host(), n, div);
    return y;
  }
  // Chunk sums until one chunk is left; intermediate buffers are freed after the submit.
  let src: Tensor = x;
  let len = n;
  while (len > CHUNK) {
    const rows = Math.ceil(len / CHUNK);
    const partial = Tensor.empty(x.device, [rows]);
    dispatchSums(x, src.storage, partial.storage, rows, CHUNK, len, 1);
    if (src !== x) src.dispose();
    src = partial;
    len = rows;
  }
  dispatchSums(x, src.storage, y.storage, 1, len, len, div);
  if (src !== x) src.dispose();
  return y;
}

/**
 * Sum over the last axis.
 *
 * @param x `[..., C]` f32.
 * @param options `{ axis: -1 }` (the only supported axis).
 * @returns `[...]` f32 (shape `[]` for a 1-D `x`).
 * @throws {TypeError} when `x` is not f32 or is a scalar.
 * @throws {RangeError} when `axis` is not the last axis.
 */
export function sum(x: Tensor, options: ReduceOptions = {}): Tensor<"f32"> {
  return rowReduce("sum", x, options, false);
}

/**
 * Mean over the last axis (NaN for rows of length 0).
 *
 * @param x `[..., C]` f32.
 * @param options `{ axis: -1 }` (the only supported axis).
 * @returns `[...]` f32 (shape `[]` for a 1-D `x`).
 * @throws {TypeError} when `x` is not f32 or is a scalar.
 * @throws {RangeError} when `axis` is not the last axis.
 */
export function mean(x: Tensor, options: ReduceOptions = {}): Tensor<"f32"> {
  return rowReduce("mean", x, options, true);
}

/**
 * Sum of every element.
 *
 * @param x `[...]` f32, any rank.
 * @returns `[]` f32 scalar tensor (`0` for an empty `x`).
 * @throws {TypeError} when `x` is not f32.
 */
export function sumAll(x: Tensor): Tensor<"f32"> {
  return allReduce("sumAll", x, false);
}

/**
 * Mean of every element.
 *
 * @param x `[...]` f32, any rank.
 * @returns `[]` f32 scalar tensor (NaN for an empty `x`).
 * @throws {TypeError} when `x` is not f32.
 */
export function meanAll(x: Tensor): Tensor<"f32"> {
  return allReduce("meanAll", x, true);
}

/** Reference `Σ x²` in float64. */
export function sumSquaresRef(x: Float32Array): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}

/**
 * Sum of the squares of every element (a gradient norm's partial): one pass and no temporary on
 * the CPU backend; `mul` then {@link sumAll} on WebGPU.
 *
 * @param x `[...]` f32, any rank.
 * @returns `[]` f32 scalar tensor (`0` for an empty `x`).
 * @throws {TypeError} when `x` is not f32.
 */
export function sumSquaresAll(x: Tensor): Tensor<"f32"> {
  expectDType("sumSquaresAll", "x", x, "f32");
  if (x.device.kind === "cpu") {
    return Tensor.fromArray(x.device, new Float32Array([sumSquaresRef(x.host() as Float32Array)]), []);
  }
  using sq = mul(x, x); // [...] -> [...]
  return sumAll(sq); // [...] -> []
}
