/**
 * Differentiable `groupedLinear`: the routed-expert projection of a sparse MoE layer in training.
 * The rows of `x` are sorted by expert (a contiguous group per expert, sizes known on the host) and
 * group `e` is multiplied by expert `e`'s matrix of a stacked `[E, out, in]` weight, HF `Linear`
 * layout: `y[g_e] = x[g_e] W[e]ᵀ`.
 *
 * Forward: one `gatherMatmul` with a per-row expert id (the inference kernel, so training and
 * inference logits agree to rounding). Backward, group by group with `sliceRows` copies:
 * - `dx[g_e] = dy[g_e] · W[e]` (one `[out, in]` slice of `W` alive at a time, never a transposed
 *   copy of the whole stack);
 * - `dW[e] = dy[g_e]ᵀ · x[g_e]`, written in place into one zero `[E, out, in]` gradient (experts
 *   that got no rows keep zeros). The stacked gradient is the only weight-sized allocation.
 *
 * @example Two experts, three rows (two routed to expert 0, one to expert 1)
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { groupedLinear, sum, Tape } from "./mod.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * using tape = new Tape();
 * const x = tape.constant(Tensor.fromArray(dev, [1, 0, 0, 1, 1, 1], [3, 2])); // [N=3, in=2]
 * const w = tape.param(Tensor.fromArray(dev, [1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 2])); // [E=2, out=2, in=2]
 * const y = groupedLinear(x, w, [2, 1]); // [3, 2]
 * assert.ok((await y.value.toArray()).join() === "1,3,2,4,11,15");
 * tape.backward(sum(y));
 * assert.ok((await w.grad!.toArray()).join() === "1,1,1,1,1,1,1,1");
 * ```
 * @module
 */
import { gatherMatmul } from "../ops/gather_matmul.ts";
import { matmul as matmulOp } from "../ops/matmul.ts";
import { sliceRows, writeRows } from "../ops/slice.ts";
import { Tensor } from "../tensor/tensor.ts";
import { asGrad, type Var } from "./tape.ts";

/**
 * Expert-grouped linear layer over a stacked weight.
 *
 * @param x `[N, in]` f32, rows sorted by expert
 * @param w `[E, out, in]` f32 stacked expert weights
 * @param groups `E` row counts (group `e` is rows `Σ_{j<e} groups[j]` onward); they sum to `N`
 * @returns `[N, out]` f32
 * @throws {TypeError} when the shapes or the group sizes do not fit together
 */
export function groupedLinear(x: Var, w: Var, groups: readonly number[]): Var {
  const [E, O, I] = w.shape;
  const N = x.shape[0];
  const total = groups.reduce((a, b) => a + b, 0);
  if (
    w.shape.length !== 3 || x.shape.length !== 2 || x.shape[1] !== I || groups.length !== E || total !== N ||
    groups.some((n) => !Number.isInteger(n) || n < 0)
  ) {
    throw new TypeError(
      `Cannot run groupedLinear: expected x [N, in], w [E, out, in] and E non-negative group sizes summing ` +
        `to N: received x [${x.shape}], w [${w.shape}], groups [${groups}]`,
    );
  }
  const ids = new Int32Array(N);
  let at = 0;
  groups.forEach((n, e) => {
    ids.fill(e, at, at + n);
    at += n;
  });
  const dev = x.value.device;
  using idx = Tensor.fromArray(dev, ids, [N, 1]); // [N, K=1] expert per row
  using y3 = gatherMatmul(x.value, w.value, idx); // [N, in] -> [N, 1, out]
  const y = y3.reshape([N, O]); // [N, out]
  return x.tape.record("groupedLinear", [x, w], y, (dy, needs) => {
    const dx = needs[0] ? Tensor.zeros(dev, [N, I]) : null; // [N, in]
    const dw = needs[1] ? asGrad(Tensor.zeros(dev, [E, O, I])) : null; // [E, out, in]
    let start = 0;
    for (let e = 0; e < E; e++) {
      const n = groups[e];
      if (n === 0) continue;
      using dye = sliceRows(dy, start, n); // [n, out]
      if (dx) {
        using we3 = sliceRows(w.value, e, 1); // [1, out, in]
        using we = we3.reshape([O, I]); // [out, in]
        using dxe = matmulOp(dye, we); // [n, out] x [out, in] -> [n, in]
        writeRows(dx, dxe, start);
      }
      if (dw) {
        using xe = sliceRows(x.value, start, n); // [n, in]
        using dwe = matmulOp(dye, xe, { transA: true }); // [n, out]ᵀ x [n, in] -> [out, in]
        using dwe3 = dwe.reshape([1, O, I]); // [1, out, in]
        writeRows(dw, dwe3, e);
      }
      start += n;
    }
    return [dx, dw];
  });
}
