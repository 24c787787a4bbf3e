/**
 * A LoRA linear layer as ONE tape node: `z = x Wᵀ (+ bias) + scaling · (xd Aᵀ) Bᵀ`
 * (Hu et al., LoRA, https://arxiv.org/abs/2106.09685; PEFT's `lora.Linear`), where `xd` is the
 * adapter's (possibly dropped-out) input.
 *
 * Recorded op by op, the tape would keep four `[..., out]` tensors per adapted layer (`x Wᵀ`, the
 * adapter product, its scaled copy and the sum) for the whole step: LoRA would hold about twice
 * the activations of full fine-tuning. As one node only `z` and the small `[..., r]` product
 * `xd Aᵀ` stay; the intermediates are freed as soon as the forward is done. The forward computes
 * exactly the same sequence of ops as the unfused form, so values are bit-identical; the backward
 * gives the same gradients, contributed in the same order.
 *
 * Backward, with `ds = scaling · dz`, `g = ds · B` (`[..., r]`):
 * `dxd = g · A`, `dA = gᵀ · xd`, `dB = dsᵀ · (xd Aᵀ)`, `dx = dz · W`, `dW = dzᵀ · x`, `dbias = Σ dz`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { loraLinear, sum, Tape } from "./mod.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * using tape = new Tape();
 * const x = tape.constant(Tensor.fromArray(dev, [1, 2], [1, 2])); // [T=1, in=2]
 * const w = tape.constant(Tensor.fromArray(dev, [1, 0, 0, 1], [2, 2])); // [out, in], frozen
 * const a = tape.param(Tensor.fromArray(dev, [1, 1], [1, 2])); // [r=1, in]
 * const b = tape.param(Tensor.zeros(dev, [2, 1])); // [out, r]
 * const z = loraLinear({ x, weight: w, a, b, scaling: 2 }); // [1, 2]
 * tape.backward(sum(z));
 * assert.equal((await b.grad!.toArray()).join(), "6,6"); // 2 · (x·Aᵀ = 3) per output
 * ```
 * @module
 */
import { add as addOp, scale as scaleOp } from "../ops/elementwise.ts";
import { matmul as matmulOp } from "../ops/matmul.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { sumToShape } from "./_broadcast.ts";
import { weightGrad } from "./_products.ts";
import type { Var } from "./tape.ts";

/** The inputs of {@link loraLinear}. */
export interface LoraLinearInputs {
  /** `[..., in]`. */
  x: Var;
  /** `[out, in]`. */
  weight: Var;
  /** `[out]`, optional. */
  bias?: Var;
  /** The adapter's input (`dropout(x)` while training with dropout); default `x`. */
  xd?: Var;
  /** `[r, in]`. */
  a: Var;
  /** `[out, r]`. */
  b: Var;
  scaling: number;
}

/** `x Wᵀ (+ bias) + scaling · (xd Aᵀ) Bᵀ` as one tape node; see the module doc. `[..., in] -> [..., out]` */
export function loraLinear(inputs: LoraLinearInputs): Var {
  const { x, weight, bias, a, b, scaling } = inputs;
  const xd = inputs.xd ?? x;
  const tape = x.tape;
  // The same ops, in the same order, as linear + linear + linear + scale + add recorded one by one.
  const xw = matmulOp(x.value, weight.value, { transB: true }); // [..., in] x [out, in]ᵀ -> [..., out]
  let y: Tensor = xw;
  if (bias) {
    y = addOp(xw, bias.value); // [..., out] + [out]
    xw.dispose();
  }
  const xa = tape.keep(matmulOp(xd.value, a.value, { transB: true })); // [..., in] x [r, in]ᵀ -> [..., r]
  const z = (() => {
    using xab = matmulOp(xa, b.value, { transB: true }); // [..., r] x [out, r]ᵀ -> [..., out]
    using scaled = scaleOp(xab, scaling); // [..., out]
    using _y = y;
    return addOp(y, scaled); // [..., out]
  })();
  // Adapter inputs first: their gradient reaches a shared x before the base path's, as unfused.
  const ins: Var[] = [xd, a, b, x, weight, ...(bias ? [bias] : [])];
  return tape.record("loraLinear", ins, z, (dz, needs) => {
    const grads: (Tensor | null)[] = [null, null, null, null, null, null];
    if (needs[0] || needs[1] || needs[2]) {
      using ds = scaleOp(dz, scaling); // [..., out]
      if (needs[0] || needs[1]) {
        using g = matmulOp(ds, b.value); // [..., out] x [out, r] -> [..., r]
        grads[0] = needs[0] ? matmulOp(g, a.value) : null; // [..., r] x [r, in] -> [..., in]
        grads[1] = needs[1] ? weightGrad(g, xd.value) : null; // [r, in]
      }
      grads[2] = needs[2] ? weightGrad(ds, xa) : null; // [out, r]
    }
    grads[3] = needs[3] ? matmulOp(dz, weight.value) : null; // [..., out] x [out, in] -> [..., in]
    grads[4] = needs[4] ? weightGrad(dz, x.value) : null; // [out, in]
    if (bias) grads[5] = needs[5] ? sumToShape(dz, bias.shape) : null; // [out]
    return grads.slice(0, ins.length);
  });
}
