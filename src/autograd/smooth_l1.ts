/**
 * `smoothL1Loss(pred, target, β)`: the mean SmoothL1 (Huber, `torch.nn.SmoothL1Loss` with
 * `reduction="mean"`) of `pred − target` on the tape, with gradients for both inputs
 * (`∂/∂pred = clamp(d/β, −1, 1) / N`, the negative for `target`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { Tape } from "./tape.ts";
 * import { smoothL1Loss } from "./smooth_l1.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * using tape = new Tape();
 * const p = tape.param(Tensor.fromArray(dev, [0.5, 3], [2]));
 * const loss = smoothL1Loss(p, tape.constant(Tensor.fromArray(dev, [0, 0], [2]))); // (0.125 + 2.5) / 2
 * tape.backward(loss);
 * assert.deepEqual([(await loss.value.toArray())[0], Array.from(await p.grad!.toArray())], [1.3125, [0.25, 0.5]]);
 * ```
 * @module
 */
import { scale } from "../ops/elementwise.ts";
import { smoothL1 as smoothL1Op, smoothL1Grad } from "../ops/smooth_l1.ts";
import { mean } from "./reduce.ts";
import type { Var } from "./tape.ts";

/** SmoothL1 of `pred − target`, element by element (same number of elements). `[...] -> [...]` */
export function smoothL1(pred: Var, target: Var, beta = 1): Var {
  return pred.tape.record(
    "smooth_l1",
    [pred, target],
    smoothL1Op(pred.value, target.value, beta),
    (dy, needs) => {
      const dp = smoothL1Grad(pred.value, target.value, dy, beta); // [...]
      const dt = needs[1] ? scale(dp, -1).reshape(target.shape) : null;
      if (!needs[0]) dp.dispose();
      return [needs[0] ? dp : null, dt];
    },
  );
}

/** Mean SmoothL1 of `pred − target`. `[...], [...] -> []` */
export function smoothL1Loss(pred: Var, target: Var, beta = 1): Var {
  return mean(smoothL1(pred, target, beta));
}
