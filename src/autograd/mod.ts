/**
 * Reverse-mode autodiff over Ferry's ops: a {@link Tape} of backward closures and the
 * differentiable functions that record on it. Gradients are computed only for `tape.param`s and
 * what depends on them, and live in the ledger category `"grads"`.
 *
 * @example Two-layer MLP, one gradient step's worth of gradients
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { randn } from "../tensor/random.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { crossEntropy, linear, silu, Tape } from "./mod.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * using tape = new Tape();
 * const x = tape.constant(Tensor.fromArray(dev, randn(4 * 8, 1), [4, 8])); // [N, C]
 * const w1 = tape.param(Tensor.fromArray(dev, randn(16 * 8, 2, 0.3), [16, 8])); // [H, C]
 * const w2 = tape.param(Tensor.fromArray(dev, randn(5 * 16, 3, 0.3), [5, 16])); // [V, H]
 * const logits = linear(silu(linear(x, w1)), w2); // [4, 8] -> [4, 16] -> [4, 5]
 * const loss = crossEntropy(logits, Tensor.fromArray(dev, new Int32Array([0, 4, 2, 1]))); // []
 * tape.backward(loss);
 * assert.ok(w1.grad!.shape.join() === "16,8" && w2.grad!.shape.join() === "5,16");
 * ```
 * @module
 */
export { asGrad, type BackwardFn, Tape, Var } from "./tape.ts";
export { add, mul, scale, sigmoid, silu, siluMul } from "./elementwise.ts";
export { dropout } from "./dropout.ts";
export { linear, matmul } from "./matmul.ts";
export { loraLinear, type LoraLinearInputs } from "./lora_linear.ts";
export { quantizedLoraLinear, type QuantizedLoraLinearInputs } from "./quantized_lora_linear.ts";
export { addGroupedLora, type GroupedLoraAdapter } from "./grouped_lora.ts";
export { embedding, gatherRows, scatterAddRows } from "./gather.ts";
export { concatRows, sliceRows } from "./slice.ts";
export { groupedLinear } from "./grouped.ts";
export { crossEntropy } from "./cross_entropy.ts";
export { reshape } from "./reshape.ts";
export { mean, sum } from "./reduce.ts";
export { attention, rmsNorm, rope, softmax } from "./transformer.ts";
export { TrainContext, type TrainContextOptions } from "./train_context.ts";
export { smoothL1Loss } from "./smooth_l1.ts";
