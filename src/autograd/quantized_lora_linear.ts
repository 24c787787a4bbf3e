/**
 * A linear layer over a **frozen packed weight** (NF4, or any `QuantizedTensor`) with an optional
 * LoRA adapter, as one tape node: `z = x Ŵᵀ (+ bias) + scaling · (xd Aᵀ) Bᵀ` — QLoRA's layer
 * ([Dettmers et al. 2023](https://arxiv.org/abs/2305.14314)) and QLoRAM's
 * ([LoRAM](https://arxiv.org/abs/2502.13533) §3.3). Ŵ is never stored in f32: the forward runs
 * `qmatmul` (codes dequantised in registers), and the backward's `dx = dz · Ŵ` dequantises `Ŵ`
 * into a transient tensor that is freed as soon as the product is taken, so at most one layer's
 * `Ŵ` exists at a time. The weight gets no gradient (it is frozen); bias and adapter do.
 *
 * Backward, with `ds = scaling · dz`, `g = ds · B`: `dxd = g · A`, `dA = gᵀ · xd`,
 * `dB = dsᵀ · (xd Aᵀ)`, `dx = dz · Ŵ`, `dbias = Σ dz` (as `loraLinear`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { quantize } from "../compressors/quant/quantize.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { quantizedLoraLinear, sum, Tape } from "./mod.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const q = await quantize(Tensor.fromArray(dev, new Float32Array(2 * 64).fill(0.5), [2, 64]), { method: "nf4" });
 * using tape = new Tape();
 * const x = tape.param(Tensor.fromArray(dev, new Float32Array(64).fill(1), [1, 64])); // [T=1, in=64]
 * const z = quantizedLoraLinear({ x, q }); // [1, 2]: 64 · 0.5 each
 * tape.backward(sum(z));
 * assert.deepEqual([...await z.value.toArray()], [32, 32]);
 * assert.equal((await x.grad!.toArray())[0], 1); // Σ_out Ŵ[:, 0] = 0.5 + 0.5
 * ```
 * @module
 */
import { dequantize } from "../ops/dequantize.ts";
import { add as addOp, scale as scaleOp } from "../ops/elementwise.ts";
import { matmul as matmulOp } from "../ops/matmul.ts";
import { qmatmul } from "../ops/qmatmul.ts";
import type { QuantizedTensor } from "../tensor/quantized_tensor.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { sumToShape } from "./_broadcast.ts";
import { weightGrad } from "./_products.ts";
import type { Var } from "./tape.ts";

/** The inputs of {@link quantizedLoraLinear}. */
export interface QuantizedLoraLinearInputs {
  /** `[..., in]`. */
  x: Var;
  /** The frozen weight `[out, in]`, packed. */
  q: QuantizedTensor;
  /** `[out]`, optional. */
  bias?: Var;
  /** The adapter, optional: its input (default `x`), `A` `[r, in]`, `B` `[out, r]`, scaling. */
  lora?: { xd?: Var; a: Var; b: Var; scaling: number };
}

/** `x Ŵᵀ (+ bias) (+ scaling · (xd Aᵀ) Bᵀ)` as one tape node; see the module doc. `[..., in] -> [..., out]` */
export function quantizedLoraLinear(inputs: QuantizedLoraLinearInputs): Var {
  const { x, q, bias, lora } = inputs;
  const tape = x.tape;
  let y: Tensor = qmatmul(x.value, q); // [..., in] x [out, in]ᵀ -> [..., out]
  if (bias) {
    using _y = y;
    y = addOp(y, bias.value); // [..., out] + [out]
  }
  let xa: Tensor | undefined;
  if (lora) {
    xa = tape.keep(matmulOp(lora.xd?.value ?? x.value, lora.a.value, { transB: true })); // [..., r]
    using xab = matmulOp(xa, lora.b.value, { transB: true }); // [..., r] x [out, r]ᵀ -> [..., out]
    using scaled = scaleOp(xab, lora.scaling); // [..., out]
    using _y = y;
    y = addOp(y, scaled); // [..., out]
  }
  const xd = lora?.xd ?? x;
  const ins: Var[] = lora ? [xd, lora.a, lora.b, x] : [x];
  if (bias) ins.push(bias);
  return tape.record("quantizedLoraLinear", ins, y, (dz, needs) => {
    const grads: (Tensor | null)[] = ins.map(() => null);
    let at = 0;
    if (lora) {
      if (needs[0] || needs[1] || needs[2]) {
        using ds = scaleOp(dz, lora.scaling); // [..., out]
        if (needs[0] || needs[1]) {
          using g = matmulOp(ds, lora.b.value); // [..., out] x [out, r] -> [..., r]
          grads[0] = needs[0] ? matmulOp(g, lora.a.value) : null; // [..., r] x [r, in] -> [..., in]
          grads[1] = needs[1] ? weightGrad(g, xd.value) : null; // [r, in]
        }
        grads[2] = needs[2] ? weightGrad(ds, xa!) : null; // [out, r]
      }
      at = 3;
    }
    if (needs[at]) {
      using w = dequantize(q); // [out, in], transient
      grads[at] = matmulOp(dz, w); // [..., out] x [out, in] -> [..., in]
    }
    if (bias && needs[at + 1]) grads[at + 1] = sumToShape(dz, bias.shape); // [out]
    return grads;
  });
}
