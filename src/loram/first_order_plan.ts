/**
 * LoRAM-Stru's plan: LLM-Pruner-style first-order importance
 * ([LLM-Pruner, Ma et al. 2023](https://arxiv.org/abs/2305.11627) §3.2; used by
 * [LoRAM](https://arxiv.org/abs/2502.13533) for its structured variant). With `G = Σ_b ∂L_b/∂W`, the
 * gradient of the language-model loss summed over the calibration blocks (Ferry's autograd, only
 * the pruned range's projections trainable), a weight's importance is the first-order Taylor term
 * `|W_ij · G_ij|` (the loss change from removing it), summed over each structure's weights:
 *
 * ```
 * channel c  ← Σ_j |W_gate·G|[c,j] + Σ_j |W_up·G|[c,j] + Σ_r |W_down·G|[r,c]
 * KV head h  ← Σ over h's k and v rows, its query group's q rows and o_proj columns of |W·G|
 * ```
 *
 * The highest scores are kept at LoRAM's counts (`planFromScores`), in the layer range (default
 * `[4, L−2)`). Peak memory: one block's tape plus the gradients of one layer range's projections.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "../models/load.ts";
 * import { firstOrderPlan } from "./first_order_plan.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/llama-gqa-tied-f32", { device });
 * const plan = await firstOrderPlan(model, [Int32Array.of(1, 5, 9, 2, 7)], { ratio: 0.5, layers: [0, 2] });
 * assert.equal(plan.method, "llm-pruner");
 * assert.deepEqual(plan.layers.map((l) => l.mlpKeep.length), [32, 32]);
 * ```
 * @module
 */
import { Tape } from "../autograd/tape.ts";
import { TrainContext } from "../autograd/train_context.ts";
import { type LayerPlan, planDimsOf, type PruningPlan, qRowKeep } from "../compressors/prune/pruning_plan.ts";
import {
  type LayerScores,
  planFromScores,
  type StructuredPlanOptions,
} from "../compressors/prune/structured.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import type { Linear } from "../nn/linear.ts";
import { asDenseLinear, type LinearLike } from "../nn/linear_like.ts";
import { SwiGLU } from "../nn/swiglu.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { checkLayerRange } from "./param_count.ts";

const PROJ = ["q", "k", "v", "o", "gate", "up", "down"] as const;
type Proj = typeof PROJ[number];

/**
 * First-order importance (`|W·G|` per element) of the projections of layers `[start, end)`, from
 * the summed gradient over `calibration` blocks (each of `T + 1` ids, as the trainer reads them).
 *
 * @returns layer → projection → `[out·in]` importance, row-major as the weight
 * @throws {RangeError} when there is no calibration block
 */
export async function firstOrderImportance(
  model: CausalLM,
  calibration: readonly Int32Array[],
  layers: readonly [number, number],
): Promise<Map<number, Record<Proj, Float32Array>>> {
  if (calibration.length === 0) {
    throw new RangeError("Cannot score first-order importance: no calibration blocks; pass at least one");
  }
  const linears = new Map<number, Record<Proj, Linear>>();
  for (let i = layers[0]; i < layers[1]; i++) {
    const l = model.layers[i];
    if (!(l.mlp instanceof SwiGLU)) {
      throw new TypeError(`Cannot score layer ${i}: it is not a dense SwiGLU layer`);
    }
    const a = l.attention;
    const dense = (lin: LinearLike) => asDenseLinear(lin, `score layer ${i}'s channels`);
    linears.set(i, {
      q: dense(a.qProj),
      k: dense(a.kProj),
      v: dense(a.vProj),
      o: dense(a.oProj),
      gate: dense(l.mlp.gateProj),
      up: dense(l.mlp.upProj),
      down: dense(l.mlp.downProj),
    });
  }
  const weights: Tensor[] = [...linears.values()].flatMap((r) => PROJ.map((p) => r[p].weight));
  const sums = new Map<Tensor, Float64Array>(weights.map((w) => [w, new Float64Array(w.size)]));
  for (const ids of calibration) {
    using tape = new Tape();
    const ctx = new TrainContext(tape, new Set(weights), { training: false });
    const { loss } = await model.lossTrain(ctx, ids);
    tape.backward(loss);
    for (const w of weights) {
      const g = ctx.grad(w);
      if (!g) continue; // no path from this weight to the loss
      const host = await g.toArray() as Float32Array; // [out, in]
      const acc = sums.get(w)!;
      for (let j = 0; j < host.length; j++) acc[j] += host[j];
    }
  }
  const out = new Map<number, Record<Proj, Float32Array>>();
  for (const [i, rec] of linears) {
    const entry = {} as Record<Proj, Float32Array>;
    for (const p of PROJ) {
      const w = await rec[p].weight.toArray() as Float32Array;
      const g = sums.get(rec[p].weight)!;
      entry[p] = Float32Array.from(w, (v, j) => Math.abs(v * g[j]));
    }
    out.set(i, entry);
  }
  return out;
}

/**
 * The LLM-Pruner-style plan of a dense model (see the module doc); `method` is `"llm-pruner"`.
 *
 * @param calibration blocks of `T + 1` token ids
 * @throws {TypeError} for a MoE model; {RangeError} for a bad range or ratio, or no calibration
 */
export async function firstOrderPlan(
  model: CausalLM,
  calibration: readonly Int32Array[],
  options: StructuredPlanOptions,
): Promise<PruningPlan> {
  const dims = planDimsOf(model.config);
  const range = checkLayerRange(dims.layers, options.layers);
  const imp = await firstOrderImportance(model, calibration, range);
  const { hidden: C, intermediate: F, headDim: D, heads: H } = dims;
  const scores = (i: number): LayerScores => {
    const s = imp.get(i)!;
    const mlp = new Float64Array(F);
    for (let c = 0; c < F; c++) {
      for (let j = 0; j < C; j++) mlp[c] += s.gate[c * C + j] + s.up[c * C + j] + s.down[j * F + c];
    }
    const kvHeads = Float64Array.from({ length: dims.kvHeads }, (_, h) => {
      let t = 0;
      for (let r = h * D; r < (h + 1) * D; r++) {
        for (let j = 0; j < C; j++) t += s.k[r * C + j] + s.v[r * C + j];
      }
      const group: LayerPlan = { index: i, mlpKeep: [], kvHeadKeep: [h] };
      for (const r of qRowKeep(dims, group)) {
        for (let j = 0; j < C; j++) t += s.q[r * C + j] + s.o[j * H * D + r];
      }
      return t;
    });
    return { mlp, kvHeads };
  };
  return planFromScores(dims, "llm-pruner", scores, { ...options, layers: range });
}
