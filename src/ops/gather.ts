/**
 * Index-driven row and column moves for expert channels: `gatherRows` (tokens routed to an
 * expert), `scatterRows` / `scatterAddRows` (write or combine expert outputs back per token)
 * and `gatherCols` (pick down-projection columns, as FloE does). Kernel: `kernels/gather.wgsl`.
 *
 * Index semantics, shared by every op here:
 * - `idx` is an i32 (or u32) tensor `[n]`; there is no negative wrap-around.
 * - CPU backend: every index is validated and an out-of-range one throws a `RangeError`
 *   naming its position. WebGPU cannot validate without a sync point, so an out-of-range
 *   index is skipped: its gathered row/column is zero, its scatter writes nothing.
 * - Repeated indices: gathers copy the row again; `scatterRows` keeps the last write
 *   (highest `i`); `scatterAddRows` sums every contribution in ascending `i`. Both are
 *   deterministic on WebGPU (one workgroup per destination row scans `idx`; no atomics).
 * - Scatters are functional: they return a new tensor and leave `dst` unchanged.
 *
 * Legend: `R` rows, `C` columns, `n` indices.
 *
 * @example Dispatch two tokens to an expert and combine its output back
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { gatherRows, scatterAddRows } from "./gather.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const x = Tensor.fromArray(dev, [1, 1, 2, 2, 3, 3], [3, 2]); // [T=3, C=2]
 * const idx = Tensor.fromArray(dev, new Int32Array([2, 0])); // tokens routed to this expert
 * const xe = gatherRows(x, idx); // [2, 2]
 * const w = Tensor.fromArray(dev, [0.5, 0.25]); // routing weights
 * const out = scatterAddRows(Tensor.zeros(dev, [3, 2]), idx, xe, { weights: w }); // [3, 2]
 * assert.ok((await out.toArray()).join() === "0.25,0.25,0,0,1.5,1.5");
 * ```
 * @module
 */
import code from "../../kernels/gather.wgsl" with { type: "text" };
import type { DType } from "../tensor/dtype.ts";
import { Tensor } from "../tensor/tensor.ts";
import { expectDType, expectRank, gpuOf, grid1d, params, sameDevice } from "./_kernel.ts";

const WG = 64;
const PER_THREAD = 4;
const WORD_DTYPES: DType[] = ["f32", "i32", "u32"];

/** Host arrays of 32-bit elements (gathers move raw words). */
export type Words = Float32Array | Int32Array | Uint32Array;
/** Host index arrays. */
export type Indices = Int32Array | Uint32Array;

// ---------------------------------------------------------------------------------------
// References (the CPU backend and the test oracle); out-of-range indices are skipped, as on WebGPU.

/** `out[i, :] = x[idx[i], :]`; `x` is `[R, C]`, `out` is `[n, C]` and stays untouched where `idx[i]` is out of range. */
export function gatherRowsRef<A extends Words>(x: A, R: number, C: number, idx: Indices, out: A): void {
  for (let i = 0; i < idx.length; i++) {
    const r = idx[i];
    if (r >= 0 && r < R) out.set(x.subarray(r * C, (r + 1) * C), i * C);
  }
}

/** `out[r, j] = x[r, idx[j]]`; `x` is `[R, C]`, `out` is `[R, n]` and stays untouched where `idx[j]` is out of range. */
export function gatherColsRef<A extends Words>(x: A, R: number, C: number, idx: Indices, out: A): void {
  const n = idx.length;
  for (let r = 0; r < R; r++) {
    for (let j = 0; j < n; j++) {
      const c = idx[j];
      if (c >= 0 && c < C) out[r * n + j] = x[r * C + c];
    }
  }
}

/**
 * `out = dst`, then for `i` ascending with `idx[i]` in range: `out[idx[i], :] = src[i, :]`
 * (or `+= weights[i] · src[i, :]` when `add`).
 */
export function scatterRowsRef(
  dst: Float32Array,
  R: number,
  C: number,
  idx: Indices,
  src: Float32Array,
  out: Float32Array,
  { add = false, weights }: { add?: boolean; weights?: Float32Array } = {},
): void {
  out.set(dst.subarray(0, R * C));
  for (let i = 0; i < idx.length; i++) {
    const r = idx[i];
    if (!(r >= 0 && r < R)) continue;
    if (!add) {
      out.set(src.subarray(i * C, (i + 1) * C), r * C);
      continue;
    }
    const w = weights ? weights[i] : 1;
    for (let c = 0; c < C; c++) out[r * C + c] += w * src[i * C + c];
  }
}

// ---------------------------------------------------------------------------------------
// Ops

function words(t: Tensor): Uint32Array {
  return new Uint32Array(t.storage.host!, 0, t.size);
}

function checkIdx(op: string, idx: Tensor, extent: number, what: string): void {
  expectRank(op, "idx", idx, 1);
  expectDType(op, "idx", idx, "i32", "u32");
  if (idx.device.kind !== "cpu") return; // WebGPU: validated only in the kernel (skipped)
  const h = idx.host() as Indices;
  for (let i = 0; i < h.length; i++) {
    if (!(h[i] >= 0 && h[i] < extent)) {
      throw new RangeError(
        `Cannot run ${op}: idx[${i}] = ${h[i]} is out of range for ${what} (0..${extent - 1})`,
      );
    }
  }
}

function gather(
  op: "gather_rows" | "gather_cols",
  x: Tensor,
  idx: Tensor,
  shape: number[],
  count: number,
): Tensor {
  const y = Tensor.empty(x.device, shape, { dtype: x.dtype });
  if (count === 0) return y;
  gpuOf(x.device).dispatch({ name: "gather", code, entryPoint: op }, {
    bindings: [x.storage, idx.storage, y.storage],
    params: params(["u32", x.shape[0]], ["u32", x.shape[1]], ["u32", idx.size]),
    workgroups: grid1d(Math.ceil(count / (WG * PER_THREAD))),
    constants: { WG },
  });
  return y;
}

/**
 * Rows of `x` picked by `idx`.
 * @param x `[R, C]` f32, i32 or u32
 * @param idx `[n]` i32 row indices, repeats allowed
 * @returns `[n, C]`, same dtype as `x`
 * @throws {RangeError} on the CPU backend when an index is outside `0..R-1`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { gatherRows } from "./gather.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const x = Tensor.fromArray(dev, [0, 1, 10, 11, 20, 21], [3, 2]); // [3, 2]
 * const y = gatherRows(x, Tensor.fromArray(dev, new Int32Array([2, 2, 0]))); // [3, 2]
 * assert.ok((await y.toArray()).join() === "20,21,20,21,0,1");
 * ```
 */
export function gatherRows(x: Tensor, idx: Tensor): Tensor {
  sameDevice("gatherRows", x, idx);
  expectRank("gatherRows", "x", x, 2);
  expectDType("gatherRows", "x", x, ...WORD_DTYPES);
  const [R, C] = x.shape;
  checkIdx("gatherRows", idx, R, `x with ${R} rows`);
  if (x.device.kind !== "cpu") return gather("gather_rows", x, idx, [idx.size, C], idx.size * C);
  const y = Tensor.empty(x.device, [idx.size, C], { dtype: x.dtype });
  gatherRowsRef(words(x), R, C, idx.host() as Indices, words(y));
  return y;
}

/**
 * Columns of `x` picked by `idx`.
 * @param x `[R, C]` f32, i32 or u32
 * @param idx `[n]` i32 column indices, repeats allowed
 * @returns `[R, n]`, same dtype as `x`
 * @throws {RangeError} on the CPU backend when an index is outside `0..C-1`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { gatherCols } from "./gather.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const w = Tensor.fromArray(dev, [0, 1, 2, 10, 11, 12], [2, 3]); // [2, 3]
 * const y = gatherCols(w, Tensor.fromArray(dev, new Int32Array([2, 0]))); // [2, 2]
 * assert.ok((await y.toArray()).join() === "2,0,12,10");
 * ```
 */
export function gatherCols(x: Tensor, idx: Tensor): Tensor {
  sameDevice("gatherCols", x, idx);
  expectRank("gatherCols", "x", x, 2);
  expectDType("gatherCols", "x", x, ...WORD_DTYPES);
  const [R, C] = x.shape;
  checkIdx("gatherCols", idx, C, `x with ${C} columns`);
  if (x.device.kind !== "cpu") return gather("gather_cols", x, idx, [R, idx.size], R * idx.size);
  const y = Tensor.empty(x.device, [R, idx.size], { dtype: x.dtype });
  gatherColsRef(words(x), R, C, idx.host() as Indices, words(y));
  return y;
}

function scatter(
  op: string,
  dst: Tensor,
  idx: Tensor,
  src: Tensor,
  add: boolean,
  weights?: Tensor,
): Tensor<"f32"> {
  const device = sameDevice(op, dst, idx, src, ...(weights ? [weights] : []));
  expectRank(op, "dst", dst, 2);
  expectRank(op, "src", src, 2);
  expectDType(op, "dst", dst, "f32");
  expectDType(op, "src", src, "f32");
  const [R, C] = dst.shape;
  checkIdx(op, idx, R, `dst with ${R} rows`);
  const n = idx.size;
  if (src.shape[0] !== n || src.shape[1] !== C) {
    throw new TypeError(
      `Cannot run ${op}: src must be [${n}, ${C}] (idx length, dst columns): received [${src.shape}]`,
    );
  }
  if (weights) {
    expectDType(op, "weights", weights, "f32");
    if (weights.rank !== 1 || weights.size !== n) {
      throw new TypeError(
        `Cannot run ${op}: weights must be [${n}] (one per index): received [${weights.shape}]`,
      );
    }
  }
  const y = Tensor.empty(device, [R, C]);
  if (y.size === 0) return y;
  if (device.kind === "cpu") {
    const w = weights?.host() as Float32Array | undefined;
    scatterRowsRef(
      dst.host() as Float32Array,
      R,
      C,
      idx.host() as Indices,
      src.host() as Float32Array,
      y.host(),
      {
        add,
        weights: w,
      },
    );
    return y;
  }
  gpuOf(device).dispatch({ name: "gather", code, entryPoint: "scatter_rows" }, {
    // Unweighted runs bind idx in the weights slot: the kernel never reads it then.
    bindings: [dst.storage, idx.storage, src.storage, (weights ?? idx).storage, y.storage],
    params: params(["u32", R], ["u32", C], ["u32", n], ["u32", add ? 1 : 0], ["u32", weights ? 1 : 0]),
    workgroups: grid1d(R),
    constants: { WG },
  });
  return y;
}

/**
 * A copy of `dst` with row `idx[i]` replaced by `src[i]`; with repeated indices the last wins.
 * @param dst `[R, C]` f32, not modified
 * @param idx `[n]` i32 destination rows
 * @param src `[n, C]` f32
 * @returns a new `[R, C]` f32 tensor
 * @throws {RangeError} on the CPU backend when an index is outside `0..R-1`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { scatterRows } from "./gather.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const dst = Tensor.zeros(dev, [3, 1]); // [3, 1]
 * const y = scatterRows(dst, Tensor.fromArray(dev, new Int32Array([1, 1])), Tensor.fromArray(dev, [5, 7], [2, 1]));
 * assert.ok((await y.toArray()).join() === "0,7,0"); // [3, 1]; last write wins
 * ```
 */
export function scatterRows(dst: Tensor, idx: Tensor, src: Tensor): Tensor<"f32"> {
  return scatter("scatterRows", dst, idx, src, false);
}

/**
 * A copy of `dst` with `weights[i] · src[i]` (or `src[i]`) added to row `idx[i]`, in ascending `i`:
 * the MoE combine step. Repeated indices accumulate.
 * @param dst `[R, C]` f32, not modified
 * @param idx `[n]` i32 destination rows
 * @param src `[n, C]` f32
 * @param options `weights`: optional `[n]` f32 per-row factors (routing weights)
 * @returns a new `[R, C]` f32 tensor
 * @throws {RangeError} on the CPU backend when an index is outside `0..R-1`
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { scatterAddRows } from "./gather.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const dst = Tensor.fromArray(dev, [1, 1], [2, 1]); // [2, 1]
 * const y = scatterAddRows(dst, Tensor.fromArray(dev, new Int32Array([0, 0])), Tensor.fromArray(dev, [2, 3], [2, 1]));
 * assert.ok((await y.toArray()).join() === "6,1"); // [2, 1]; 1 + 2 + 3
 * ```
 */
export function scatterAddRows(
  dst: Tensor,
  idx: Tensor,
  src: Tensor,
  options: { weights?: Tensor } = {},
): Tensor<"f32"> {
  return scatter("scatterAddRows", dst, idx, src, true, options.weights);
}
