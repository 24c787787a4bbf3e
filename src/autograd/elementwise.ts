/**
 * Differentiable elementwise functions: `add`, `mul` (with suffix broadcasting of `b`), `scale`,
 * `silu`, `sigmoid` and the SwiGLU gate `siluMul`. Forward: `src/ops/elementwise.ts`; the backward passes
 * compose the same ops, and a broadcast `b` gets its gradient summed over the copies.
 *
 * Derivatives: `silu'(x) = σ(x) · (1 + x · (1 − σ(x)))`; for `y = silu(a) ⊙ b`,
 * `da = dy ⊙ b ⊙ silu'(a)` and `db = Σ_broadcast dy ⊙ silu(a)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { mul, sum, Tape } from "./mod.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * using tape = new Tape();
 * const a = tape.param(Tensor.fromArray(dev, [1, 2, 3, 4], [2, 2])); // [2, 2]
 * const b = tape.param(Tensor.fromArray(dev, [10, 20])); // [2], broadcast over rows
 * tape.backward(sum(mul(a, b))); // [2, 2] -> []
 * assert.ok((await b.grad!.toArray()).join() === "4,6"); // column sums of a
 * ```
 * @module
 */
import * as ops from "../ops/elementwise.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { siluMulBackward } from "../ops/silu_mul_backward.ts";
import { sumToShape } from "./_broadcast.ts";
import type { Var } from "./tape.ts";

/** σ(x) · (1 + x · (1 − σ(x))), composed from ops. `[...] -> [...]` */
function siluGrad(x: Tensor): Tensor {
  using s = ops.sigmoid(x);
  using oneMinus = ops.scale(s, -1, 1);
  using xs = ops.mul(x, oneMinus);
  using inner = ops.scale(xs, 1, 1);
  return ops.mul(s, inner);
}

/**
 * `a + b`, with `b` a scalar or matching `a`'s trailing dims. `[..., C] + [C] -> [..., C]`
 * @returns a Var shaped like `a`.
 */
export function add(a: Var, b: Var): Var {
  return a.tape.record("add", [a, b], ops.add(a.value, b.value), (dy, needs) => [
    needs[0] ? dy.reshape(a.shape) : null,
    needs[1] ? sumToShape(dy, b.shape) : null,
  ]);
}

/**
 * `a ⊙ b`, with `b` a scalar or matching `a`'s trailing dims.
 * @returns a Var shaped like `a`.
 */
export function mul(a: Var, b: Var): Var {
  return a.tape.record("mul", [a, b], ops.mul(a.value, b.value), (dy, needs) => {
    let db: Tensor | null = null;
    if (needs[1]) {
      using prod = ops.mul(dy, a.value);
      db = sumToShape(prod, b.shape);
    }
    return [needs[0] ? ops.mul(dy, b.value) : null, db];
  });
}

/** `a · alpha + beta`. `[...] -> [...]` */
export function scale(a: Var, alpha: number, beta = 0): Var {
  return a.tape.record("scale", [a], ops.scale(a.value, alpha, beta), (dy) => [ops.scale(dy, alpha)]);
}

/** SiLU: `x · σ(x)`. `[...] -> [...]` */
export function silu(x: Var): Var {
  return x.tape.record("silu", [x], ops.silu(x.value), (dy) => {
    using g = siluGrad(x.value);
    return [ops.mul(dy, g)];
  });
}

/** Logistic sigmoid `σ(x)`; the backward reads the saved output: `dx = dy ⊙ σ ⊙ (1 − σ)`. `[...] -> [...]` */
export function sigmoid(x: Var): Var {
  const out: Var = x.tape.record("sigmoid", [x], ops.sigmoid(x.value), (dy) => {
    using oneMinus = ops.scale(out.value, -1, 1); // 1 − σ
    using d = ops.mul(out.value, oneMinus); // σ (1 − σ)
    return [ops.mul(dy, d)];
  });
  return out;
}

/**
 * The SwiGLU gate `silu(a) ⊙ b` (b a scalar or matching `a`'s trailing dims).
 * `[T, F] ⊙ [T, F] -> [T, F]`
 */
export function siluMul(a: Var, b: Var): Var {
  return a.tape.record("siluMul", [a, b], ops.siluMul(a.value, b.value), (dy, needs) => {
    if (b.value.size === a.value.size && needs[0] && needs[1]) { // SwiGLU: one fused pass
      const { da, db } = siluMulBackward(a.value, b.value, dy);
      return [da, db];
    }
    let da: Tensor | null = null;
    let db: Tensor | null = null;
    if (needs[0]) {
      using dyb = ops.mul(dy, b.value);
      using g = siluGrad(a.value);
      da = ops.mul(dyb, g);
    }
    if (needs[1]) {
      using s = ops.silu(a.value);
      using prod = ops.mul(dy, s);
      db = sumToShape(prod, b.shape);
    }
    return [da, db];
  });
}
