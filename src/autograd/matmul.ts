/**
 * Differentiable `matmul` (all the forms of `src/ops/matmul.ts`) and `linear` (`x Wᵀ + bias`, HF
 * `Linear` layout).
 *
 * Backward, with `A` the (folded) `[M, K]` input and `dY` the `[M, N]` output gradient:
 * - `dA = dY · Bᵀ` (`B` stored `[K, N]`) or `dY · B` (`transB`, `B` stored `[N, K]`): one matmul.
 * - `dB = Aᵀ · dY` (`[K, N]`) or `dYᵀ · A` (`transB`, `[N, K]`): one matmul with `transA`.
 * - A `B` shared across a batch `[..., M, K]` gets the sum over the batch for free: the leading
 *   dims of `A` and `dY` fold into `M` before the product. A batched `B` `[Bt, K, N]` gets one
 *   gradient per batch entry.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { matmul, sum, Tape } from "./mod.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * using tape = new Tape();
 * const a = tape.param(Tensor.fromArray(dev, [1, 2, 3, 4], [2, 2])); // [M, K]
 * const b = tape.constant(Tensor.fromArray(dev, [1, 0, 0, 1], [2, 2])); // [K, N], frozen
 * tape.backward(sum(matmul(a, b))); // d/dA Σ(A·I) = ones
 * assert.ok((await a.grad!.toArray()).join() === "1,1,1,1" && b.grad === null);
 * ```
 * @module
 */
import { matmul as matmulOp, type MatmulOptions } from "../ops/matmul.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { add } from "./elementwise.ts";
import type { Var } from "./tape.ts";

/** `A` and `dY` with a shared `B`'s batch dims folded into rows: `[..., M, X] -> [R, X]`. */
function fold(t: Tensor): Tensor {
  return t.reshape([t.size / t.shape[t.rank - 1], t.shape[t.rank - 1]]);
}

/**
 * `[..., M, K] x [K, N] -> [..., M, N]`; `[B, M, K] x [B, K, N] -> [B, M, N]`; with `transB`, b is
 * `[N, K]` / `[B, N, K]`.
 */
export function matmul(a: Var, b: Var, options: Pick<MatmulOptions, "transB"> = {}): Var {
  const transB = options.transB ?? false;
  const y = matmulOp(a.value, b.value, { transB });
  return a.tape.record("matmul", [a, b], y, (dy, needs) => {
    const A = a.value;
    const B = b.value;
    // dA = dY · Bᵀ, or dY · B when B is stored transposed. [..., M, N] -> [..., M, K]
    const da = needs[0] ? matmulOp(dy, B, { transB: !transB }) : null;
    let db: Tensor | null = null;
    if (needs[1]) {
      const batched = B.rank === 3;
      using a2 = batched ? A.reshape(A.shape) : fold(A); // [R, K] or [Bt, M, K]
      using dy2 = batched ? dy.reshape(dy.shape) : fold(dy); // [R, N] or [Bt, M, N]
      db = transB
        ? matmulOp(dy2, a2, { transA: true }) // [.., M, N]ᵀ x [.., M, K] -> [.., N, K]
        : matmulOp(a2, dy2, { transA: true }); // [.., M, K]ᵀ x [.., M, N] -> [.., K, N]
    }
    return [da, db];
  });
}

/**
 * A linear layer as HF stores it: `y = x Wᵀ (+ bias)`.
 *
 * @param x `[..., in]`
 * @param weight `[out, in]`
 * @param bias optional `[out]`
 * @returns `[..., out]`
 */
export function linear(x: Var, weight: Var, bias?: Var): Var {
  const y = matmul(x, weight, { transB: true }); // [..., in] x [out, in]ᵀ -> [..., out]
  return bias ? add(y, bias) : y;
}
