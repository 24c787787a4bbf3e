/**
 * Differentiable reductions to a scalar: `sum` and `mean` of every element (the usual way to turn
 * an output into a loss in tests and probes). Forward: `sumAll` / `meanAll` of `src/ops/reduce.ts`;
 * backward broadcasts `dy` (times `1/n` for the mean) back to the input's shape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { mean, Tape } from "./mod.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * using tape = new Tape();
 * const x = tape.param(Tensor.fromArray(dev, [1, 2, 3, 4], [2, 2])); // [2, 2]
 * tape.backward(mean(x)); // [2, 2] -> []
 * assert.ok((await x.grad!.toArray()).join() === "0.25,0.25,0.25,0.25");
 * ```
 * @module
 */
import { add, scale } from "../ops/elementwise.ts";
import { meanAll, sumAll } from "../ops/reduce.ts";
import { type Shape, Tensor } from "../tensor/tensor.ts";
import type { Var } from "./tape.ts";

/** `dy` (one element) times `k`, broadcast to `shape`. */
function fill(dy: Tensor, shape: Shape, k: number): Tensor {
  using zeros = Tensor.zeros(dy.device, shape);
  using g = dy.reshape([]);
  if (k === 1) return add(zeros, g);
  using filled = add(zeros, g);
  return scale(filled, k);
}

/** Σ of every element. `[...] -> []` */
export function sum(x: Var): Var {
  return x.tape.record("sum", [x], sumAll(x.value), (dy) => [fill(dy, x.shape, 1)]);
}

/** Mean of every element (NaN for an empty `x`). `[...] -> []` */
export function mean(x: Var): Var {
  return x.tape.record("mean", [x], meanAll(x.value), (dy) => [fill(dy, x.shape, 1 / x.value.size)]);
}
