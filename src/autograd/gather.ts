/**
 * Differentiable row lookups: `embedding` (token ids into a `[V, C]` table) and `gatherRows`, and
 * their adjoint `scatterAddRows` (the MoE combine step). The lookups' backward passes scatter-add
 * the output gradient into a zero table, so a row picked several times gets the sum of its
 * gradients (`scatterAddRows` is deterministic: ascending index order); the scatter's backward
 * gathers. Indices are plain tensors (never differentiated).
 *
 * Memory: the table's gradient is dense `[V, C]`; a frozen table (`tape.constant`) costs none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { embedding, sum, Tape } from "./mod.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * using tape = new Tape();
 * const table = tape.param(Tensor.fromArray(dev, [0, 1, 10, 11, 20, 21], [3, 2])); // [V, C]
 * const ids = Tensor.fromArray(dev, new Int32Array([2, 0, 2])); // [N]
 * tape.backward(sum(embedding(table, ids))); // [3] -> [3, 2] -> []
 * assert.ok((await table.grad!.toArray()).join() === "1,1,0,0,2,2"); // counts per row
 * ```
 * @module
 */
import { embedding as embeddingOp } from "../ops/embedding.ts";
import { gatherRows as gatherRowsOp, scatterAddRows as scatterAddRowsOp } from "../ops/gather.ts";
import { Tensor } from "../tensor/tensor.ts";
import type { Var } from "./tape.ts";

/** `Σ_i onehot(idx[i]) ⊗ src[i]` into a fresh `[R, C]` table. */
function scatterGrad(shape: readonly number[], idx: Tensor, dy: Tensor): Tensor {
  const [R, C] = shape;
  using zeros = Tensor.zeros(dy.device, [R, C]);
  using flatIdx = idx.reshape([idx.size]); // [...] -> [N]
  using rows = dy.reshape([idx.size, C]); // [..., C] -> [N, C]
  return scatterAddRowsOp(zeros, flatIdx, rows);
}

/**
 * Looks up rows of `table` by id.
 *
 * @param table `[V, C]` (f32 when it requires a gradient; f16/bf16 tables only as constants)
 * @param ids `[...]` i32 or u32 token ids
 * @returns `[..., C]` f32
 */
export function embedding(table: Var, ids: Tensor): Var {
  const y = embeddingOp(table.value, ids); // [...] -> [..., C]
  return table.tape.record("embedding", [table], y, (dy) => [scatterGrad(table.shape, ids, dy)]);
}

/**
 * Rows of `x` picked by `idx` (repeats allowed).
 *
 * @param x `[R, C]` f32
 * @param idx `[n]` i32 row indices
 * @returns `[n, C]` f32
 */
export function gatherRows(x: Var, idx: Tensor): Var {
  const y = gatherRowsOp(x.value, idx); // [R, C] -> [n, C]
  return x.tape.record("gatherRows", [x], y, (dy) => [scatterGrad(x.shape, idx, dy)]);
}

/**
 * `dst` with `src[i]` added to row `idx[i]` (repeats accumulate in ascending `i`). Backward:
 * `d dst = dy`, `d src = dy[idx]` (a gather).
 *
 * @param dst `[R, C]` f32
 * @param idx `[n]` i32 destination rows
 * @param src `[n, C]` f32
 * @returns `[R, C]` f32
 */
export function scatterAddRows(dst: Var, idx: Tensor, src: Var): Var {
  const y = scatterAddRowsOp(dst.value, idx, src.value); // [R, C]
  return dst.tape.record("scatterAddRows", [dst, src], y, (dy, needs) => [
    needs[0] ? dy.reshape(dst.shape) : null, // [R, C]
    needs[1] ? gatherRowsOp(dy, idx) : null, // [R, C] -> [n, C]
  ]);
}
