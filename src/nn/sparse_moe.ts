/**
 * `SparseMoE`: a sparse mixture-of-experts block (Shazeer et al. 2017,
 * https://arxiv.org/abs/1701.06538; Mixtral, https://arxiv.org/abs/2401.04088): a linear router
 * picks the top-`K` of `E` SwiGLU experts per token and mixes their outputs by the routing
 * weights, plus, for Qwen2-MoE, an always-on shared expert scaled by `sigmoid(x · gᵀ)`.
 *
 * Routing, as in transformers: `p = softmax(x Wrᵀ)`, the top-`K` of `p`, renormalised to sum 1
 * when `normTopkProb` (Mixtral always; Qwen/OLMoE by `norm_topk_prob`). Renormalised top-k
 * probabilities equal `softmax` over the top-k logits, which is how it is computed here. Routing
 * stays on the device: a decode step needs no readback of the selected experts.
 *
 * Legend: `T` tokens, `C` hidden, `E` experts, `K` experts per token, `F` expert width.
 *
 * @example Route three tokens to two of four experts
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { SwiGLUExperts } from "./experts.ts";
 * import { Linear } from "./linear.ts";
 * import { SparseMoE } from "./sparse_moe.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const [E, F, C] = [4, 8, 4];
 * const fill = (shape: number[], v: number) => Tensor.fromArray(dev, new Float32Array(shape.reduce((a, b) => a * b)).fill(v), shape);
 * const router = new Linear(Tensor.fromArray(dev, Float32Array.from({ length: E * C }, (_, i) => i % 3), [E, C]));
 * const experts = new SwiGLUExperts(fill([E, F, C], 0.1), fill([E, F, C], 0.2), fill([E, C, F], 0.3));
 * using moe = new SparseMoE({ router, experts }, { topK: 2, normTopkProb: true });
 * const { y, routerLogits, selected, weights } = moe.forward(fill([3, C], 1)); // [T=3, C]
 * assert.ok(y.shape.join() === "3,4" && routerLogits.shape.join() === "3,4"); // [T, C], [T, E]
 * assert.ok(selected.shape.join() === "3,2" && weights.shape.join() === "3,2"); // [T, K]
 * ```
 * @module
 */
import { z } from "zod";
import type { TrainContext } from "../autograd/train_context.ts";
import type { Var } from "../autograd/tape.ts";
import { parseConfig } from "../config.ts";
import { add, sigmoid } from "../ops/elementwise.ts";
import { matmul } from "../ops/matmul.ts";
import { softmax } from "../ops/softmax.ts";
import { topk } from "../ops/topk.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { expectLinear, type LinearLike } from "./linear_like.ts";
import { addPrefixed, type Module, type NamedParameters } from "./module.ts";
import type { Experts, ExpertsInput, MoeOutput, MoeTrainOutput } from "./moe_types.ts";
import { sparseMoeForwardTrain } from "./sparse_moe_train.ts";
import type { SwiGLU } from "./swiglu.ts";

export type { Experts, ExpertsInput, MoeOutput, MoeTrainOutput };

/** Options of {@link SparseMoE}. */
export const SparseMoeConfigSchema = z.strictObject({
  /** Experts per token `K` (`num_experts_per_tok`). */
  topK: z.number().int().positive(),
  /** Renormalise the top-k routing weights (`norm_topk_prob`; Mixtral: true). */
  normTopkProb: z.boolean(),
});

/** Parsed {@link SparseMoeConfigSchema}. */
export type SparseMoeConfig = z.output<typeof SparseMoeConfigSchema>;

/** The parts of a {@link SparseMoE}; ownership passes to it. */
export interface SparseMoeWeights {
  /** The router `[E, C]` (HF `gate`), no bias. */
  router: LinearLike;
  /** The routed experts (dense `SwiGLUExperts`, or a method's implementation). */
  experts: Experts;
  /** Qwen2-MoE's shared expert (`shared_expert`), with its gate `[1, C]` (`shared_expert_gate`). */
  sharedExpert?: SwiGLU;
  sharedExpertGate?: LinearLike;
}

/** Options of {@link SparseMoE.forward}. */
export interface MoeForwardOptions {
  /** The decoder layer's index, handed to the experts (default `-1`: the block on its own). */
  layer?: number;
}

/** Router plus stacked SwiGLU experts plus an optional shared expert. Owns all of them. */
export class SparseMoE implements Module {
  readonly config: SparseMoeConfig;
  readonly router: LinearLike;
  readonly sharedExpert: SwiGLU | undefined;
  readonly sharedExpertGate: LinearLike | undefined;
  /**
   * Called with the experts' input on every {@link SparseMoE.forward} (not `forwardTrain`), before
   * the experts run: calibration and routing traces. The hook must not dispose the tensors.
   */
  expertsHook: ((input: ExpertsInput) => void) | undefined = undefined;
  #experts: Experts;

  /**
   * @throws {ConfigError} on invalid options
   * @throws {TypeError} when the router, experts and shared expert disagree on `E` or `C`
   */
  constructor(weights: SparseMoeWeights, options: z.input<typeof SparseMoeConfigSchema>) {
    const config = parseConfig("SparseMoE", SparseMoeConfigSchema, options);
    const { router, experts, sharedExpert, sharedExpertGate } = weights;
    const E = experts.numExperts;
    const C = experts.hidden;
    expectLinear("SparseMoE", "gate.weight", router, [E, C]);
    if (config.topK > E) {
      throw new RangeError(
        `Cannot create SparseMoE: topK must be at most the ${E} experts: received ${config.topK}`,
      );
    }
    if (!sharedExpert !== !sharedExpertGate) {
      throw new TypeError("Cannot create SparseMoE: sharedExpert and sharedExpertGate come together");
    }
    if (sharedExpert && sharedExpertGate) {
      expectLinear("SparseMoE", "shared_expert_gate.weight", sharedExpertGate, [1, C]);
      expectLinear("SparseMoE", "shared_expert.gate_proj.weight", sharedExpert.gateProj, [
        sharedExpert.gateProj.outFeatures,
        C,
      ]);
    }
    this.config = config;
    this.router = router;
    this.#experts = experts;
    this.sharedExpert = sharedExpert;
    this.sharedExpertGate = sharedExpertGate;
  }

  /** The routed experts. */
  get experts(): Experts {
    return this.#experts;
  }

  /** Experts `E`. */
  get numExperts(): number {
    return this.#experts.numExperts;
  }

  /**
   * Swaps the routed experts for another implementation of the same `E` and `C` (FloE's sparse
   * experts, an offloading runtime) and returns the previous one, which the caller now owns.
   *
   * @throws {TypeError} when `next` has a different number of experts or hidden size
   */
  replaceExperts(next: Experts): Experts {
    const prev = this.#experts;
    if (next.numExperts !== prev.numExperts || next.hidden !== prev.hidden) {
      throw new TypeError(
        `Cannot replace the experts: expected ${prev.numExperts} experts of hidden size ${prev.hidden}: ` +
          `received ${next.numExperts} of ${next.hidden}`,
      );
    }
    this.#experts = next;
    return prev;
  }

  /**
   * Routes every token, runs its `K` experts and mixes them.
   *
   * @param x `[T, C]` f32
   * @param options `layer`: the decoder layer's index, handed to the experts
   * @returns `y [T, C]`, `routerLogits [T, E]`, `selected [T, K]` i32, `weights [T, K]`
   */
  forward(x: Tensor, options: MoeForwardOptions = {}): MoeOutput {
    const T = x.shape[0];
    const C = x.shape[1];
    const { routerLogits, selected, weights } = this.route(x);
    const input: ExpertsInput = { layer: options.layer ?? -1, x, selected, weights };
    this.expertsHook?.(input);
    let y = this.#experts.forward(input); // [T, C]
    if (this.sharedExpert && this.sharedExpertGate) {
      using s = this.sharedExpert.forward(x); // [T, C]
      using gl = this.sharedExpertGate.forward(x); // [T, C] -> [T, 1]
      using g = sigmoid(gl); // [T, 1]
      using g3 = g.reshape([T, 1, 1]); // [T, 1, 1]
      using s3 = s.reshape([T, 1, C]); // [T, 1, C]
      using gs = matmul(g3, s3); // [T, 1, 1] x [T, 1, C] -> [T, 1, C]: σ(g) scales each token's row
      using gs2 = gs.reshape([T, C]); // [T, C]
      using routed = y;
      y = add(routed, gs2); // [T, C]
    }
    return { y, routerLogits, selected, weights };
  }

  /**
   * The routing alone (what {@link SparseMoE.forward} computes before its experts run): code that
   * runs the experts itself, such as an offloading runtime that must read the choice back first.
   *
   * @param x `[T, C]` f32
   * @returns `routerLogits [T, E]`, `selected [T, K]` i32 and `weights [T, K]`; the caller owns them
   */
  route(x: Tensor): Omit<MoeOutput, "y"> {
    const { topK: K, normTopkProb } = this.config;
    const routerLogits = this.router.forward(x); // [T, C] -> [T, E]
    let selected: Tensor<"i32">;
    let weights: Tensor<"f32">;
    if (normTopkProb) {
      const top = topk(routerLogits, K); // [T, E] -> [T, K], [T, K]
      using _v = top.values;
      selected = top.indices;
      weights = softmax(top.values); // [T, K]: the renormalised top-k probabilities
    } else {
      using probs = softmax(routerLogits); // [T, E]
      const top = topk(probs, K); // [T, K], [T, K]
      selected = top.indices;
      weights = top.values;
    }
    return { routerLogits, selected, weights };
  }

  /**
   * The training forward with gradients through the routing weights (see `sparse_moe_train.ts`).
   * Async: the selected experts are read back to the host to sort the tokens by expert.
   *
   * @param x `[T, C]`
   * @param ctx the step's {@link TrainContext}
   * @returns `y [T, C]`, `routerLogits [T, E]`, `probs [T, E]` (Vars) and `selected` (host `[T·K]`)
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { createDevice } from "../device/create_device.ts";
   * import { sum, Tape, TrainContext } from "../autograd/mod.ts";
   * import { Tensor } from "../tensor/tensor.ts";
   * import { SwiGLUExperts } from "./experts.ts";
   * import { Linear } from "./linear.ts";
   * import { SparseMoE } from "./sparse_moe.ts";
   * const dev = await createDevice({ backend: "cpu" });
   * const [E, F, C] = [4, 8, 4];
   * const fill = (shape: number[], v: number) => Tensor.fromArray(dev, Float32Array.from({ length: shape.reduce((a, b) => a * b) }, (_, i) => v * ((i % 7) - 3)), shape);
   * const router = new Linear(fill([E, C], 0.3));
   * const moe = new SparseMoE({ router, experts: new SwiGLUExperts(fill([E, F, C], 0.1), fill([E, F, C], 0.2), fill([E, C, F], 0.3)) }, { topK: 2, normTopkProb: true });
   * using tape = new Tape();
   * const ctx = new TrainContext(tape, new Set([router.weight]));
   * const { y, selected } = await moe.forwardTrain(ctx.v(fill([3, C], 1)), ctx); // [T=3, C]
   * tape.backward(sum(y));
   * assert.ok(selected.length === 6 && ctx.grad(router.weight)!.shape.join() === "4,4");
   * ```
   */
  forwardTrain(x: Var, ctx: TrainContext): Promise<MoeTrainOutput> {
    return sparseMoeForwardTrain(this, x, ctx);
  }

  /** `gate.weight`, `experts.{gate,up,down}_proj` (stacked) and, for Qwen2-MoE, `shared_expert.*`, `shared_expert_gate.weight`. */
  parameters(): NamedParameters {
    const p: NamedParameters = new Map();
    addPrefixed(p, "gate", this.router.parameters());
    addPrefixed(p, "experts", this.experts.parameters());
    if (this.sharedExpert) addPrefixed(p, "shared_expert", this.sharedExpert.parameters());
    if (this.sharedExpertGate) addPrefixed(p, "shared_expert_gate", this.sharedExpertGate.parameters());
    return p;
  }

  dispose(): void {
    for (const m of [this.router, this.#experts, this.sharedExpert, this.sharedExpertGate]) m?.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
