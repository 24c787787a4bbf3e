/**
 * Expert predictors (FloE, Zhou et al., ICML 2025, https://arxiv.org/abs/2505.05950; ALGORITHMS.md
 * A.5): from layer `i`'s MoE input `h_i`, scores over layer `i+1`'s experts, so their weights can be
 * fetched before layer `i+1` routes. {@link RouterReusePredictor} applies layer `i+1`'s own router to
 * `h_i` (the parameter-free predictor FloE uses for most layers; mixtral-offloading's speculative
 * routing). The interface takes the target layer, so the kind can be chosen per layer.
 *
 * Legend: `T` tokens, `C` hidden, `E` experts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "../models/load.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { RouterReusePredictor } from "./expert_predictor.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/mixtral-top2-f32", { device });
 * const p = new RouterReusePredictor(model);
 * const scores = p.predict(1, Tensor.zeros(device, [3, 32])); // h_0 [T, C] -> [T, E] for layer 1
 * assert.deepEqual(scores.shape, [3, 4]);
 * ```
 * @module
 */
import type { CausalLM } from "../models/causal_lm.ts";
import { SparseMoE } from "../nn/sparse_moe.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** Predicts a MoE layer's expert scores from the previous layer's MoE input. */
export interface ExpertPredictor {
  /** A short name for tables (e.g. `"router-reuse"`). */
  readonly kind: string;
  /**
   * @param target the MoE layer whose experts are predicted (`i + 1`)
   * @param h `[T, C]` the MoE input of the layer before it (`h_i`)
   * @returns `[T, E]` scores; the top-k are the prediction
   */
  predict(target: number, h: Tensor): Tensor<"f32">;
}

/** Layer `i+1`'s router on `h_i`. Borrows the model's routers. */
export class RouterReusePredictor implements ExpertPredictor {
  readonly kind = "router-reuse";
  readonly #model: CausalLM;

  constructor(model: CausalLM) {
    this.#model = model;
  }

  /** @throws {RangeError} when `target` is not a MoE layer */
  predict(target: number, h: Tensor): Tensor<"f32"> {
    const mlp = this.#model.layers[target]?.mlp;
    if (!(mlp instanceof SparseMoE)) {
      throw new RangeError(
        `Cannot predict experts of layer ${target}: it is not a MoE layer (MoE layers: ${this.#model.moeLayers})`,
      );
    }
    return mlp.router.forward(h); // [T, C] -> [T, E]
  }
}
