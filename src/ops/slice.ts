/**
 * Leading-axis slices and concatenation: `sliceRows` (a contiguous block of rows, e.g. one expert
 * of a stacked `[E, F, C]` weight or the tokens routed to one expert in an expert-sorted batch),
 * `concatRows` (blocks stacked back along the first axis), `padRows` (zero rows before and
 * after: the gradient of a slice) and `writeRows` (in place: fill a block of a freshly allocated
 * tensor, e.g. one expert's gradient into a stacked gradient). No kernel: both are contiguous
 * copies, a `copyBufferToBuffer` on WebGPU (recorded in the pending batch, no submit) and a typed
 * array copy on the CPU backend.
 *
 * Only 32-bit dtypes (`f32`, `i32`, `u32`): WebGPU copies need 4-byte aligned offsets.
 *
 * Legend: `R` rows (first axis), `...` the trailing axes, `n` rows taken.
 *
 * @example One expert of a stacked weight, and the stack rebuilt
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { concatRows, sliceRows } from "./slice.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const w = Tensor.fromArray(dev, [0, 1, 2, 3, 4, 5, 6, 7], [2, 2, 2]); // [E=2, F=2, C=2]
 * const w1 = sliceRows(w, 1, 1); // [1, 2, 2]: expert 1
 * assert.ok((await w1.toArray()).join() === "4,5,6,7");
 * const both = concatRows([sliceRows(w, 0, 1), w1]); // [2, 2, 2]
 * assert.ok((await both.toArray()).join() === "0,1,2,3,4,5,6,7");
 * ```
 * @module
 */
import type { DType } from "../tensor/dtype.ts";
import { type Shape, shapeSize, Tensor } from "../tensor/tensor.ts";
import { expectDType, expectRank, gpuOf, sameDevice } from "./_kernel.ts";

const WORD_DTYPES: DType[] = ["f32", "i32", "u32"];

/** Host reference: `out = x[start*rowSize .. (start+n)*rowSize]`. */
export function sliceRowsRef<A extends Float32Array | Int32Array | Uint32Array>(
  x: A,
  rowSize: number,
  start: number,
  n: number,
): A {
  return x.slice(start * rowSize, (start + n) * rowSize) as A;
}

/** Copies `src` (all of it) into `dst` at element offset `at`. */
function copyInto(src: Tensor, dst: Tensor, at: number): void {
  if (src.size === 0) return;
  if (src.device.kind === "cpu") {
    const words = (t: Tensor) => new Uint32Array(t.storage.host!, 0, t.size);
    words(dst).set(words(src), at);
  } else {
    gpuOf(src.device).copy(src.storage, 0, dst.storage, at * 4, src.size * 4);
  }
}

/**
 * Rows `start..start+n-1` of `x` along the first axis, as a new contiguous tensor.
 *
 * @param x `[R, ...]` f32, i32 or u32
 * @param start first row, `0 ≤ start`
 * @param n rows to take, `start + n ≤ R`
 * @returns `[n, ...]`, same dtype
 * @throws {RangeError} when the range is not inside `0..R`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { sliceRows } from "./slice.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const x = Tensor.fromArray(dev, [1, 2, 3, 4, 5, 6], [3, 2]); // [3, 2]
 * assert.ok((await sliceRows(x, 1, 2).toArray()).join() === "3,4,5,6"); // [2, 2]
 * ```
 */
export function sliceRows<T extends Tensor>(x: T, start: number, n: number): T {
  expectRank("sliceRows", "x", x, 1, Infinity);
  expectDType("sliceRows", "x", x, ...WORD_DTYPES);
  const R = x.shape[0];
  if (!(Number.isInteger(start) && Number.isInteger(n) && start >= 0 && n >= 0 && start + n <= R)) {
    throw new RangeError(
      `Cannot run sliceRows: rows ${start}..${start + n - 1} (start ${start}, n ${n}) are not inside ` +
        `the ${R} rows of x [${x.shape}]; pass integers with 0 ≤ start and start + n ≤ ${R}`,
    );
  }
  const rowSize = shapeSize(x.shape.slice(1));
  const y = Tensor.empty(x.device, [n, ...x.shape.slice(1)], { dtype: x.dtype });
  if (y.size === 0) return y as T;
  if (x.device.kind === "cpu") {
    const words = (t: Tensor) => new Uint32Array(t.storage.host!, 0, t.size);
    words(y).set(words(x).subarray(start * rowSize, (start + n) * rowSize));
  } else {
    gpuOf(x.device).copy(x.storage, start * rowSize * 4, y.storage, 0, y.size * 4);
  }
  return y as T;
}

/**
 * Stacks tensors along the first axis into a new tensor.
 *
 * @param parts `[n_i, ...]` tensors with the same trailing shape and dtype (f32, i32 or u32), at least one
 * @returns `[Σ n_i, ...]`
 * @throws {TypeError} when `parts` is empty or the parts disagree on trailing shape, dtype or device
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { concatRows } from "./slice.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const a = Tensor.fromArray(dev, [1, 2], [1, 2]); // [1, 2]
 * const b = Tensor.fromArray(dev, [3, 4, 5, 6], [2, 2]); // [2, 2]
 * assert.ok((await concatRows([a, b]).toArray()).join() === "1,2,3,4,5,6"); // [3, 2]
 * ```
 */
export function concatRows<T extends Tensor>(parts: readonly T[]): T {
  if (parts.length === 0) {
    throw new TypeError("Cannot run concatRows: parts is empty; pass at least one tensor");
  }
  const device = sameDevice("concatRows", ...parts);
  const first = parts[0];
  const tail: Shape = first.shape.slice(1);
  let rows = 0;
  for (const [i, p] of parts.entries()) {
    expectRank("concatRows", `parts[${i}]`, p, 1, Infinity);
    expectDType("concatRows", `parts[${i}]`, p, ...WORD_DTYPES);
    const same = p.dtype === first.dtype && p.rank === first.rank &&
      p.shape.every((d, j) => j === 0 || d === tail[j - 1]);
    if (!same) {
      throw new TypeError(
        `Cannot run concatRows: parts[${i}] is ${p.dtype}[${p.shape}] but parts[0] is ${first.dtype}[${first.shape}]; ` +
          `every part needs the same dtype and trailing shape`,
      );
    }
    rows += p.shape[0];
  }
  const y = Tensor.empty(device, [rows, ...tail], { dtype: first.dtype });
  let at = 0;
  for (const p of parts) {
    copyInto(p, y, at);
    at += p.size;
  }
  return y as T;
}

/**
 * `x` with `before` zero rows in front and `after` zero rows behind (the gradient of a `sliceRows`).
 *
 * @param x `[n, ...]` f32, i32 or u32
 * @param before zero rows in front, a non-negative integer
 * @param after zero rows behind, a non-negative integer
 * @returns `[before + n + after, ...]`, same dtype
 * @throws {RangeError} when `before` or `after` is not a non-negative integer
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { padRows } from "./slice.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const x = Tensor.fromArray(dev, [1, 2], [1, 2]); // [1, 2]
 * assert.ok((await padRows(x, 1, 2).toArray()).join() === "0,0,1,2,0,0,0,0"); // [4, 2]
 * ```
 */
export function padRows<T extends Tensor>(x: T, before: number, after: number): T {
  expectRank("padRows", "x", x, 1, Infinity);
  expectDType("padRows", "x", x, ...WORD_DTYPES);
  if (!(Number.isInteger(before) && Number.isInteger(after) && before >= 0 && after >= 0)) {
    throw new RangeError(
      `Cannot run padRows: before and after must be non-negative integers: received ${before}, ${after}`,
    );
  }
  const y = Tensor.zeros(x.device, [before + x.shape[0] + after, ...x.shape.slice(1)], { dtype: x.dtype });
  copyInto(x, y, before * shapeSize(x.shape.slice(1)));
  return y as T;
}

/**
 * Writes `src` into rows `start..start+n-1` of `dst`, **in place** (the one mutating op here, as
 * `kvWrite`): use it to fill a tensor you just allocated, never one an earlier op of the pending
 * batch still reads.
 *
 * @param dst `[R, ...]` f32, i32 or u32, modified
 * @param src `[n, ...]` same trailing shape and dtype
 * @param start first row of `dst` to write
 * @throws {TypeError} when the trailing shapes or dtypes differ
 * @throws {RangeError} when `start + n > R`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { writeRows } from "./slice.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const dst = Tensor.zeros(dev, [3, 2]); // [3, 2]
 * writeRows(dst, Tensor.fromArray(dev, [7, 8], [1, 2]), 2);
 * assert.ok((await dst.toArray()).join() === "0,0,0,0,7,8");
 * ```
 */
export function writeRows(dst: Tensor, src: Tensor, start: number): void {
  sameDevice("writeRows", dst, src);
  expectRank("writeRows", "dst", dst, 1, Infinity);
  expectDType("writeRows", "dst", dst, ...WORD_DTYPES);
  const same = src.dtype === dst.dtype && src.rank === dst.rank &&
    src.shape.every((d, j) => j === 0 || d === dst.shape[j]);
  if (!same) {
    throw new TypeError(
      `Cannot run writeRows: src ${src.dtype}[${src.shape}] does not match the rows of dst ${dst.dtype}[${dst.shape}]; ` +
        `src needs dst's dtype and trailing shape`,
    );
  }
  const n = src.shape[0];
  if (!(Number.isInteger(start) && start >= 0 && start + n <= dst.shape[0])) {
    throw new RangeError(
      `Cannot run writeRows: rows ${start}..${start + n - 1} do not fit the ${dst.shape[0]} rows of dst; ` +
        `pass an integer start with start + ${n} ≤ ${dst.shape[0]}`,
    );
  }
  copyInto(src, dst, start * shapeSize(dst.shape.slice(1)));
}
