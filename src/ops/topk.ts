/**
 * `topk`: the `K` largest entries along the last axis, sorted descending, with their
 * indices — the MoE router's expert choice. Kernel: `kernels/topk.wgsl`.
 *
 * Tie rule: equal values come out lowest index first (a stable descending sort), the
 * order `torch.topk` on CPU typically returns for routing logits. `-0` equals `+0`.
 * Rows must be NaN-free; where they are not, the result is unspecified.
 *
 * Legend: `E` entries per row (experts), `K` picks.
 *
 * @example Route two tokens to their top-2 of 4 experts
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { topk } from "./topk.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const logits = Tensor.fromArray(dev, [0.1, 0.9, 0.3, 0.9, 2, -1, 0, 1], [2, 4]); // [T=2, E=4]
 * const { values, indices } = topk(logits, 2); // [2, 2], [2, 2]
 * assert.ok((await indices.toArray()).join() === "1,3,0,3"); // the 0.9 tie: index 1 first
 * assert.ok((await values.toArray())[2] === 2);
 * ```
 * @module
 */
import code from "../../kernels/topk.wgsl" with { type: "text" };
import { Tensor } from "../tensor/tensor.ts";
import { expectDType, expectRank, gpuOf, grid1d, params } from "./_kernel.ts";

const WG = 64;

/** Result of {@link topk}: both `[..., K]`. */
export interface TopK {
  /** The picked values, descending along the last axis. */
  values: Tensor<"f32">;
  /** Their positions along the last axis of the input. */
  indices: Tensor<"i32">;
}

/**
 * Row-wise top-k on host arrays by a stable descending sort of each row's indices.
 *
 * @param x `[R, E]` row-major
 * @param values `[R, K]`, written
 * @param indices `[R, K]`, written
 */
export function topkRef(
  x: Float32Array,
  E: number,
  k: number,
  values: Float32Array,
  indices: Int32Array,
): void {
  const rows = E === 0 ? 0 : x.length / E;
  const order = new Int32Array(E);
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * E, (r + 1) * E);
    for (let e = 0; e < E; e++) order[e] = e;
    // `|| a - b` also resolves ±Infinity ties, where the difference is NaN.
    order.sort((a, b) => row[b] - row[a] || a - b);
    for (let j = 0; j < k; j++) {
      values[r * k + j] = row[order[j]];
      indices[r * k + j] = order[j];
    }
  }
}

/**
 * The `k` largest entries along the last axis, sorted descending; ties go to the lower index.
 *
 * @param x `[..., E]` f32, NaN-free
 * @param k number of picks, an integer in `0..E`
 * @returns `values` f32 `[..., k]` and `indices` i32 `[..., k]`
 * @throws {TypeError} when `x` is not f32 or has rank 0
 * @throws {RangeError} when `k` is not an integer in `0..E`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { topk } from "./topk.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const { values, indices } = topk(Tensor.fromArray(dev, [3, 1, 4, 1, 5]), 3); // [5] -> [3]
 * assert.ok((await values.toArray()).join() === "5,4,3");
 * assert.ok((await indices.toArray()).join() === "4,2,0");
 * ```
 */
export function topk(x: Tensor, k: number): TopK {
  const op = "topk";
  expectRank(op, "x", x, 1, Infinity);
  expectDType(op, "x", x, "f32");
  const E = x.shape[x.rank - 1];
  if (!Number.isInteger(k) || k < 0 || k > E) {
    throw new RangeError(
      `Cannot run ${op}: k must be an integer in 0..${E} (the last axis of x): received ${k}`,
    );
  }
  const shape = [...x.shape.slice(0, -1), k];
  const values = Tensor.empty(x.device, shape);
  const indices = Tensor.empty(x.device, shape, { dtype: "i32" });
  if (values.size === 0) return { values, indices };
  const rows = x.size / E;
  if (x.device.kind === "cpu") {
    topkRef(x.host() as Float32Array, E, k, values.host(), indices.host());
  } else {
    gpuOf(x.device).dispatch({ name: "topk", code }, {
      bindings: [x.storage, values.storage, indices.storage],
      params: params(["u32", rows], ["u32", E], ["u32", k]),
      workgroups: grid1d(Math.ceil(rows / WG)),
      constants: { WG },
    });
  }
  return { values, indices };
}
