/**
 * Differentiable leading-axis `sliceRows` and `concatRows` (forward: `src/ops/slice.ts`, plain
 * copies). The backward of a slice pads `dy` with zero rows back to the input's shape; the
 * backward of a concatenation slices `dy` into one block per part.
 *
 * Memory: a slice's gradient is as large as its whole input (a dense zero-padded tensor), so use
 * it on activations; stacked expert weights take {@link groupedLinear} instead, which writes each
 * expert's gradient into one stacked gradient.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { concatRows, sliceRows, sum, Tape } from "./mod.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * using tape = new Tape();
 * const x = tape.param(Tensor.fromArray(dev, [1, 2, 3, 4, 5, 6], [3, 2])); // [3, 2]
 * const y = concatRows([sliceRows(x, 2, 1), sliceRows(x, 2, 1)]); // [2, 2]: row 2 twice
 * tape.backward(sum(y));
 * assert.ok((await x.grad!.toArray()).join() === "0,0,0,0,2,2");
 * ```
 * @module
 */
import { concatRows as concatOp, padRows, sliceRows as sliceOp } from "../ops/slice.ts";
import type { Var } from "./tape.ts";

/**
 * Rows `start..start+n-1` along the first axis. `[R, ...] -> [n, ...]`
 * @throws {RangeError} when the range is not inside the input
 */
export function sliceRows(x: Var, start: number, n: number): Var {
  const R = x.shape[0];
  return x.tape.record("sliceRows", [x], sliceOp(x.value, start, n), (dy) => [
    padRows(dy, start, R - start - n), // [n, ...] -> [R, ...]
  ]);
}

/**
 * Parts stacked along the first axis. `[n_i, ...] -> [Σ n_i, ...]`
 * @throws {TypeError} when `parts` is empty or the trailing shapes differ
 */
export function concatRows(parts: readonly Var[]): Var {
  if (parts.length === 0) throw new TypeError("Cannot run concatRows: parts is empty; pass at least one Var");
  const y = concatOp(parts.map((p) => p.value)); // [Σ n_i, ...]
  return parts[0].tape.record("concatRows", parts, y, (dy, needs) => {
    let at = 0;
    return parts.map((p, i) => {
      const start = at;
      at += p.shape[0];
      return needs[i] ? sliceOp(dy, start, p.shape[0]) : null; // [n_i, ...]
    });
  });
}
