/**
 * Differentiable mean token cross-entropy (PyTorch `F.cross_entropy` with `ignore_index`). Forward
 * and backward kernels: `src/ops/cross_entropy.ts`; the backward recomputes the softmax from the
 * logits instead of keeping a `[N, V]` probability tensor alive between the passes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { crossEntropy, Tape } from "./mod.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * using tape = new Tape();
 * const logits = tape.param(Tensor.fromArray(dev, [0, 0, 0, 0], [2, 2])); // [N, V]
 * const loss = crossEntropy(logits, Tensor.fromArray(dev, new Int32Array([1, -100]))); // []
 * tape.backward(loss);
 * assert.ok((await logits.grad!.toArray()).join() === "0.5,-0.5,0,0");
 * ```
 * @module
 */
import {
  crossEntropy as crossEntropyOp,
  crossEntropyBackward,
  type CrossEntropyOptions,
} from "../ops/cross_entropy.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Var } from "./tape.ts";

/**
 * Mean cross-entropy over the rows whose target is not `ignoreIndex` (0 when none is).
 *
 * @param logits `[..., V]` f32
 * @param targets `[...]` i32 class ids (a plain tensor; never differentiated)
 * @param options `ignoreIndex` (default `-100`)
 * @returns a `[]` Var
 */
export function crossEntropy(logits: Var, targets: Tensor, options: CrossEntropyOptions = {}): Var {
  const loss = crossEntropyOp(logits.value, targets, options); // [..., V] -> []
  return logits.tape.record("crossEntropy", [logits], loss, (dy) => [
    crossEntropyBackward(logits.value, targets, dy, options), // [..., V]
  ]);
}
