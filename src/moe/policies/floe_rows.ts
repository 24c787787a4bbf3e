/**
 * The floe policy's expert compute from streamed rows: one expert (`sparseExpert`) over the first
 * `rows` rows of a buffer slot (gate and transposed down `[R, C]`, f32 or f16, read in place), and
 * the running sum of experts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../../device/create_device.ts";
 * import { Tensor } from "../../tensor/tensor.ts";
 * import { sparseFromRows } from "./floe_rows.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const slot = { gate: Tensor.fromArray(dev, [0, 0, 100, 0, 9, 9], [3, 2]), downT: Tensor.fromArray(dev, [7, 7, 1, 2, 9, 9], [3, 2]) }; // [R=3, C=2]
 * const y = sparseFromRows(slot, 2, {
 *   x: Tensor.fromArray(dev, [1, 0], [1, 2]), v: Tensor.fromArray(dev, [0.5, -3], [1, 2]), // rows 0..1 only
 *   selected: Tensor.fromArray(dev, Int32Array.of(4), [1, 1], { dtype: "i32" }), weights: Tensor.fromArray(dev, [0.5], [1, 1]), expert: 4,
 * }, { mode: "topk", k: 1 });
 * assert.deepEqual(Array.from(await y.toArray()), [-150, -300]);
 * ```
 * @module
 */
import { add } from "../../ops/elementwise.ts";
import { type ChannelSelection, sparseExpert, type SparseExpertInput } from "../../ops/sparse_expert.ts";
import type { Tensor } from "../../tensor/tensor.ts";

/** `[T, C]`: one expert from the first `rows` rows of a slot (`gate`, `downT` `[R, C]`). */
export function sparseFromRows(
  slot: { gate: Tensor; downT: Tensor },
  rows: number,
  input: Omit<SparseExpertInput, "gate" | "downT">,
  selection: ChannelSelection,
): Tensor<"f32"> {
  return sparseExpert({ ...input, gate: slot.gate, downT: slot.downT, rows }, selection); // rows of [R, C] -> [T, C]
}

/** `y + ye` (both disposed), `[T, C]`. */
export function addInto(y: Tensor<"f32">, ye: Tensor<"f32">): Tensor<"f32"> {
  using a = y;
  using b = ye;
  return add(a, b); // [T, C]
}
