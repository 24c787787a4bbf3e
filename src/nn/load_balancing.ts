/**
 * The Switch-Transformer load-balancing loss (Fedus et al. 2021, https://arxiv.org/abs/2101.03961,
 * eq. 4), as transformers' `load_balancing_loss_func` computes it for Mixtral, Qwen2-MoE,
 * Qwen3-MoE and OLMoE (no attention mask), pooled over the tokens of every MoE layer:
 *
 * ```
 * aux = E · Σ_e f_e · P_e
 * f_e = (number of top-k slots that picked e) / N     constant (N: tokens over all MoE layers)
 * P_e = (Σ over those N tokens of softmax(router logits)_e) / N   differentiable
 * ```
 *
 * `f` sums over the `K` slots, so `Σ_e f_e = K` and a perfectly balanced router gives `aux = K`.
 * Note the pooling: `f` and `P` are means over all layers' tokens before the product, which is
 * not the mean of per-layer losses.
 *
 * @example Two tokens, one layer, four experts, top-1
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tape } from "../autograd/mod.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { loadBalancingLoss } from "./load_balancing.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * using tape = new Tape();
 * const probs = tape.param(Tensor.fromArray(dev, [0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25], [2, 4])); // [T, E]
 * const aux = loadBalancingLoss([{ probs, selected: Int32Array.of(0, 1) }], 4); // [] = 4 · (½·¼ + ½·¼)
 * assert.ok(Math.abs((await aux.value.toArray())[0] - 1) < 1e-6);
 * ```
 * @module
 */
import { add, mul, scale } from "../autograd/elementwise.ts";
import { sum } from "../autograd/reduce.ts";
import type { Var } from "../autograd/tape.ts";
import { Tensor } from "../tensor/tensor.ts";

/** One MoE layer's routing, as `SparseMoE.forwardTrain` returns it. */
export interface LayerRouting {
  /** `[T, E]` router probabilities. */
  probs: Var;
  /** `[T·K]` selected experts (host). */
  selected: Int32Array;
}

/**
 * `E · Σ_e f_e · P_e` over the pooled tokens of `layers`.
 *
 * @param layers at least one layer's routing, all on one tape with the same `E`
 * @param numExperts `E`
 * @returns a `[]` Var (differentiable through every layer's `probs`)
 * @throws {TypeError} when `layers` is empty or a layer's shapes disagree with `E`
 */
export function loadBalancingLoss(layers: readonly LayerRouting[], numExperts: number): Var {
  const E = numExperts;
  if (layers.length === 0) {
    throw new TypeError("Cannot compute loadBalancingLoss: no MoE layer routing was given");
  }
  let N = 0;
  const counts = new Float64Array(E);
  for (const [i, { probs, selected }] of layers.entries()) {
    const [T, e] = probs.shape;
    if (probs.shape.length !== 2 || e !== E || selected.length % Math.max(T, 1) !== 0) {
      throw new TypeError(
        `Cannot compute loadBalancingLoss: layer ${i} has probs [${probs.shape}] and ${selected.length} ` +
          `selections; expected [T, ${E}] and T·K selections`,
      );
    }
    N += T;
    for (const s of selected) counts[s]++;
  }
  const tape = layers[0].probs.tape;
  const f = tape.constant(
    tape.keep(Tensor.fromArray(layers[0].probs.value.device, Float32Array.from(counts, (c) => c / N))),
  ); // [E]
  let total: Var | null = null;
  for (const { probs } of layers) {
    const term = sum(mul(probs, f)); // [T, E] ⊙ [E] -> []
    total = total ? add(total, term) : term;
  }
  return scale(total!, E / N); // []
}
