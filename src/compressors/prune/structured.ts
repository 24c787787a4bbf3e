/**
 * Structured pruning plans: which MLP channels and KV heads each layer in a range keeps, chosen by
 * an importance score (highest kept) at LoRAM's kept counts (`d_ff' = d_ff − ⌈p·d_ff⌉`,
 * `Hkv' = Hkv − ⌊p·Hkv⌋`; see {@link keptCounts}):
 *
 * - **random** (LoRAM-Rand, [LoRAM](https://arxiv.org/abs/2502.13533)): seeded uniform scores.
 * - **l2**: the L2 norm of all weights a structure owns: channel `c` →
 *   `‖[W_gate[c,:], W_up[c,:], W_down[:,c]]‖₂`; KV head `h` → the norm over its k and v rows and the
 *   q rows and o_proj columns of its query-head group.
 * - **activation** (activation-aware, in the spirit of Wanda and FLAP): the norm of a structure's
 *   output contribution over the calibration tokens, from {@link collectInputNorms}: channel `c` →
 *   `‖W_down[:,c]‖₂ · ‖a_c‖₂` (`a` is down_proj's input); KV head `h` →
 *   `sqrt(Σ_j (‖W_o[:,j]‖₂ · ‖x_j‖₂)²)` over the o_proj columns `j` of its group.
 *
 * Ties keep the lower index. Layers outside the range stay whole; the default range is LoRAM's
 * `[4, L−2)` ({@link loramLayerRange}).
 *
 * @example A seeded random plan for a small GQA model
 * ```ts
 * import assert from "node:assert/strict";
 * import { randomPlan } from "./structured.ts";
 * const dims = { layers: 4, hidden: 16, intermediate: 10, heads: 4, kvHeads: 2, headDim: 4 };
 * const plan = randomPlan(dims, { ratio: 0.5, layers: [1, 3], seed: 7 });
 * assert.deepEqual(plan.layers.map((l) => [l.index, l.mlpKeep.length, l.kvHeadKeep.length]), [[1, 5, 1], [2, 5, 1]]);
 * ```
 * @module
 */
import { z } from "zod";
import { parseConfig } from "../../config.ts";
import type { CausalLM } from "../../models/causal_lm.ts";
import { asDenseLinear, type LinearLike } from "../../nn/linear_like.ts";
import { SwiGLU } from "../../nn/swiglu.ts";
import { mulberry32 } from "../../tensor/random.ts";
import type { InputNorms } from "./calibration.ts";
import {
  createPruningPlan,
  keptCounts,
  type LayerPlan,
  type PlanDims,
  planDimsOf,
  type PruningPlan,
  qRowKeep,
} from "./pruning_plan.ts";

/** Options of the plan builders. */
export const StructuredPlanOptionsSchema = z.strictObject({
  /** Pruning ratio `p` in [0, 1). */
  ratio: z.number().min(0).lt(1),
  /** Half-open layer range `[start, end)` to prune; default LoRAM's `[4, L−2)`. */
  layers: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]).optional(),
  /** Prune MLP channels (default true). */
  mlp: z.boolean().default(true),
  /** Prune KV heads with their query groups (default true). */
  attention: z.boolean().default(true),
  /** Seed of the random plan (default 0). */
  seed: z.number().int().default(0),
});

/** What the plan builders accept. */
export type StructuredPlanOptions = z.input<typeof StructuredPlanOptionsSchema>;

/** Importance of one layer's structures (higher is kept first). */
export interface LayerScores {
  /** `[d_ff]` per MLP channel. */
  readonly mlp: ArrayLike<number>;
  /** `[Hkv]` per KV head (with its query group). */
  readonly kvHeads: ArrayLike<number>;
}

/** LoRAM's pruned layer range `[4, L−2)` (the first 4 and last 2 layers stay whole). */
export function loramLayerRange(layers: number): [number, number] {
  return [4, layers - 2];
}

/**
 * A plan keeping the highest-scored channels and KV heads of every layer in the range.
 *
 * @param scores importance of layer `i`'s channels and KV heads
 * @throws {RangeError} on an empty or out-of-range layer range, scores of the wrong length, a ratio
 *   that leaves nothing; {ConfigError} on invalid options
 */
export function planFromScores(
  dims: PlanDims,
  method: string,
  scores: (layer: number) => LayerScores,
  options: StructuredPlanOptions,
): PruningPlan {
  const o = parseOptions(options);
  const [start, end] = layerRange(dims, o.layers);
  const kept = keptCounts(dims, o.ratio);
  const layers: LayerPlan[] = [];
  for (let i = start; i < end; i++) {
    const s = scores(i);
    for (
      const [name, got, want] of [["mlp", s.mlp, dims.intermediate], [
        "kvHeads",
        s.kvHeads,
        dims.kvHeads,
      ]] as const
    ) {
      if (got.length !== want) {
        throw new RangeError(
          `Cannot build ${method} plan: layer ${i} ${name} scores need ${want} entries: received ${got.length}`,
        );
      }
    }
    layers.push({
      index: i,
      mlpKeep: o.mlp ? topIndices(s.mlp, kept.intermediate) : range(dims.intermediate),
      kvHeadKeep: o.attention ? topIndices(s.kvHeads, kept.kvHeads) : range(dims.kvHeads),
    });
  }
  return createPruningPlan({ method, ratio: o.ratio, dims, layers });
}

/** LoRAM-Rand: channels and KV heads kept uniformly at random (seeded). */
export function randomPlan(dims: PlanDims, options: StructuredPlanOptions): PruningPlan {
  const u = mulberry32(parseOptions(options).seed);
  const draw = (n: number) => Float64Array.from({ length: n }, () => u());
  return planFromScores(
    dims,
    "random",
    () => ({ mlp: draw(dims.intermediate), kvHeads: draw(dims.kvHeads) }),
    options,
  );
}

/** The L2-of-weights plan of a dense model (reads the pruned range's weights back to the host). */
export async function l2Plan(model: CausalLM, options: StructuredPlanOptions): Promise<PruningPlan> {
  const dims = planDimsOf(model.config);
  const scores = new Map<number, LayerScores>();
  const [start, end] = layerRange(dims, parseOptions(options).layers);
  for (let i = start; i < end; i++) {
    const w = await layerWeights(model, dims, i);
    const { intermediate: F, hidden: C } = dims;
    const mlp = new Float64Array(F);
    for (let c = 0; c < F; c++) {
      mlp[c] = sumSq(w.gate, c * C, C) + sumSq(w.up, c * C, C) + colSumSq(w.down, F, c, C);
    }
    const kvHeads = headScores(dims, (h) => {
      const D = dims.headDim;
      let s = sumSq(w.k, h * D * C, D * C) + sumSq(w.v, h * D * C, D * C);
      for (const j of groupRows(dims, h)) s += sumSq(w.q, j * C, C) + colSumSq(w.o, dims.heads * D, j, C);
      return s;
    });
    scores.set(i, { mlp: mlp.map(Math.sqrt), kvHeads: kvHeads.map(Math.sqrt) });
  }
  return planFromScores(dims, "l2", (i) => scores.get(i)!, options);
}

/**
 * The activation-aware plan of a dense model from calibration norms (see the module doc).
 * @throws {RangeError} when `norms` lacks a layer's `mlp.down_proj` or `self_attn.o_proj`
 */
export async function activationPlan(
  model: CausalLM,
  norms: InputNorms,
  options: StructuredPlanOptions,
): Promise<PruningPlan> {
  const dims = planDimsOf(model.config);
  const scores = new Map<number, LayerScores>();
  const [start, end] = layerRange(dims, parseOptions(options).layers);
  for (let i = start; i < end; i++) {
    const get = (m: string, n: number) => {
      const v = norms.get(`model.layers.${i}.${m}`);
      if (!v || v.length !== n) {
        throw new RangeError(
          `Cannot build activation plan: input norms of model.layers.${i}.${m} (${n} values) are missing; ` +
            `collect them with collectInputNorms(model, sequences)`,
        );
      }
      return v;
    };
    const { intermediate: F, hidden: C, heads: H, headDim: D } = dims;
    const a = get("mlp.down_proj", F);
    const x = get("self_attn.o_proj", H * D);
    const w = await layerWeights(model, dims, i);
    const mlp = Float64Array.from({ length: F }, (_, c) => Math.sqrt(colSumSq(w.down, F, c, C)) * a[c]);
    const kvHeads = headScores(dims, (h) => {
      let s = 0;
      for (const j of groupRows(dims, h)) s += colSumSq(w.o, H * D, j, C) * x[j] * x[j];
      return Math.sqrt(s);
    });
    scores.set(i, { mlp, kvHeads });
  }
  return planFromScores(dims, "activation", (i) => scores.get(i)!, options);
}

function parseOptions(options: StructuredPlanOptions) {
  return parseConfig("StructuredPlanOptions", StructuredPlanOptionsSchema, options);
}

function layerRange(dims: PlanDims, layers: readonly [number, number] | undefined): [number, number] {
  const [start, end] = layers ?? loramLayerRange(dims.layers);
  if (!(start < end && end <= dims.layers)) {
    throw new RangeError(
      `Cannot build pruning plan: layer range [${start}, ${end}) is empty or beyond the model's ${dims.layers} ` +
        `layers; pass layers: [start, end] with 0 ≤ start < end ≤ ${dims.layers}`,
    );
  }
  return [start, end];
}

/** The indices of the `k` highest scores (ties: lower index), ascending. */
function topIndices(scores: ArrayLike<number>, k: number): number[] {
  const order = Array.from({ length: scores.length }, (_, i) => i);
  order.sort((a, b) => scores[b] - scores[a] || a - b);
  return order.slice(0, k).sort((a, b) => a - b);
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

function headScores(dims: PlanDims, score: (h: number) => number): Float64Array {
  return Float64Array.from({ length: dims.kvHeads }, (_, h) => score(h));
}

/** q_proj rows (= o_proj columns) of KV head `h`'s query group. */
function groupRows(dims: PlanDims, h: number): number[] {
  return qRowKeep(dims, { index: 0, mlpKeep: [], kvHeadKeep: [h] });
}

function sumSq(w: Float32Array, start: number, n: number): number {
  let s = 0;
  for (let i = start; i < start + n; i++) s += w[i] * w[i];
  return s;
}

/** Σ_r W[r, c]² of a `[rows, cols]` matrix. */
function colSumSq(w: Float32Array, cols: number, c: number, rows: number): number {
  let s = 0;
  for (let r = 0; r < rows; r++) s += w[r * cols + c] * w[r * cols + c];
  return s;
}

async function layerWeights(model: CausalLM, dims: PlanDims, i: number) {
  const layer = model.layers[i];
  if (!(layer.mlp instanceof SwiGLU)) {
    throw new TypeError(`Cannot score layer ${i}: it is not a dense SwiGLU layer`);
  }
  const a = layer.attention;
  if (layer.mlp.gateProj.outFeatures !== dims.intermediate || a.config.kvHeads !== dims.kvHeads) {
    throw new RangeError(
      `Cannot score layer ${i}: it is already pruned (${layer.mlp.gateProj.outFeatures} channels, ` +
        `${a.config.kvHeads} KV heads); plan on the unpruned model`,
    );
  }
  const read = async (l: LinearLike) =>
    await asDenseLinear(l, `score layer ${i}`).weight.toArray() as Float32Array;
  return {
    q: await read(a.qProj), // [H·D, C]
    k: await read(a.kProj), // [Hkv·D, C]
    v: await read(a.vProj), // [Hkv·D, C]
    o: await read(a.oProj), // [C, H·D]
    gate: await read(layer.mlp.gateProj), // [F, C]
    up: await read(layer.mlp.upProj), // [F, C]
    down: await read(layer.mlp.downProj), // [C, F]
  };
}
