/**
 * Products shared by the fused tape nodes. Private to `src/autograd/`.
 * @module
 */
import { matmul } from "../ops/matmul.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** `[R, X]` view of `[..., X]`. */
export function foldRows(t: Tensor): Tensor {
  return t.reshape([t.size / t.shape[t.rank - 1], t.shape[t.rank - 1]]);
}

/** `dYᵀ · A` for `Y = A Mᵀ`: the gradient of the `[N, K]` matrix M. `[..., N], [..., K] -> [N, K]` */
export function weightGrad(dy: Tensor, a: Tensor): Tensor {
  using dy2 = foldRows(dy); // [R, N]
  using a2 = foldRows(a); // [R, K]
  return matmul(dy2, a2, { transA: true }); // [R, N]ᵀ x [R, K] -> [N, K]
}
