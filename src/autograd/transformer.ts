/**
 * Differentiable transformer blocks: `rmsNorm`, `softmax`, `rope` and causal GQA `attention`.
 * Forward: `src/ops/{rmsnorm,softmax,rope,attention}.ts`; backward: the matching
 * `src/ops/*_backward.ts` kernels. Where a backward kernel returns several gradients at once
 * (`rmsNorm`, `attention`), the ones no input needs are freed right away.
 *
 * Shapes: `T` tokens, `S` key rows, `H`/`Hq`/`Hkv` heads, `D` head dim, `C` channels.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { rmsNorm, sum, Tape } from "./mod.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * using tape = new Tape();
 * const x = tape.constant(Tensor.fromArray(dev, [3, 4, -3, -4], [2, 2])); // [T, C]
 * const w = tape.param(Tensor.fromArray(dev, [1, 2])); // [C]
 * tape.backward(sum(rmsNorm(x, w, 0))); // d/dw Σ x̂ ⊙ w = Σ_rows x̂ = 0
 * assert.ok((await w.grad!.toArray()).every((g) => Math.abs(g) < 1e-6));
 * ```
 * @module
 */
import { attention as attentionOp, type AttentionOptions } from "../ops/attention.ts";
import { attentionBackward } from "../ops/attention_backward.ts";
import { rmsNorm as rmsNormOp } from "../ops/rmsnorm.ts";
import { rmsNormBackward } from "../ops/rmsnorm_backward.ts";
import { rope as ropeOp, type RopeOptions } from "../ops/rope.ts";
import { ropeBackward } from "../ops/rope_backward.ts";
import { softmax as softmaxOp } from "../ops/softmax.ts";
import { softmaxBackward } from "../ops/softmax_backward.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Var } from "./tape.ts";

/** Keeps the gradients that are needed and frees the rest. */
function keep(grads: Tensor[], needs: readonly boolean[]): (Tensor | null)[] {
  return grads.map((g, i) => {
    if (needs[i]) return g;
    g.dispose();
    return null;
  });
}

/** RMSNorm over the last axis (HF `LlamaRMSNorm`). `[..., C], [C] -> [..., C]` */
export function rmsNorm(x: Var, weight: Var, eps = 1e-6): Var {
  return x.tape.record("rmsNorm", [x, weight], rmsNormOp(x.value, weight.value, eps), (dy, needs) => {
    const { dx, dweight } = rmsNormBackward(x.value, weight.value, dy, eps);
    return keep([dx, dweight], needs);
  });
}

/** Softmax over the last axis; the backward reads the saved output. `[..., C] -> [..., C]` */
export function softmax(x: Var): Var {
  const out: Var = x.tape.record(
    "softmax",
    [x],
    softmaxOp(x.value),
    (dy) => [softmaxBackward(out.value, dy)],
  );
  return out;
}

/**
 * Rotary position embedding (a rotation, so the backward rotates `dy` back).
 * `[T, H, D] -> [T, H, D]`
 */
export function rope(x: Var, positions: Tensor | number, options: RopeOptions = {}): Var {
  return x.tape.record("rope", [x], ropeOp(x.value, positions, options), (dy) => [
    ropeBackward(dy, positions, options),
  ]);
}

/**
 * Causal GQA attention. `q [T, Hq, D], k/v [S, Hkv, D] -> [T, Hq, D]` (training: `pos = 0`, `S = T`).
 */
export function attention(q: Var, k: Var, v: Var, options: AttentionOptions): Var {
  const y = attentionOp(q.value, k.value, v.value, options);
  return q.tape.record("attention", [q, k, v], y, (dy, needs) => {
    const { dq, dk, dv } = attentionBackward(q.value, k.value, v.value, dy, options);
    return keep([dq, dk, dv], needs);
  });
}
