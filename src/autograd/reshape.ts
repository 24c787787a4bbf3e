/**
 * Differentiable `reshape`: the value and the gradient share storage with their sources (views).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { reshape, Tape } from "./mod.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * using tape = new Tape();
 * const x = tape.param(Tensor.fromArray(dev, [1, 2, 3, 4, 5, 6], [2, 3])); // [2, 3]
 * assert.ok(reshape(x, [3, -1]).shape.join() === "3,2"); // [2, 3] -> [3, 2]
 * ```
 * @module
 */
import type { Shape } from "../tensor/tensor.ts";
import type { Var } from "./tape.ts";

/** Same elements, new shape (`-1` infers one extent). `[...] -> shape` */
export function reshape(x: Var, shape: Shape): Var {
  return x.tape.record("reshape", [x], x.value.reshape(shape), (dy) => [dy.reshape(x.shape)]);
}
