/**
 * `PruningPlan`: which MLP channels and which KV heads each pruned decoder layer keeps, as
 * LLM-Pruner's per-layer index records and LoRAM's structured pruning use them
 * ([LoRAM](https://arxiv.org/abs/2502.13533), [LLM-Pruner](https://arxiv.org/abs/2305.11627)).
 *
 * For layer `i` with kept channels `I_k` (`mlpKeep`) and kept KV heads `K_k` (`kvHeadKeep`), both
 * ascending in original order:
 *
 * ```
 * W_gate' = W_gate[I_k, :]   W_up' = W_up[I_k, :]   W_down' = W_down[:, I_k]        // d_ff' = |I_k|
 * W_k' = W_k[rows of K_k]    W_v' = W_v[rows of K_k]                               // Hkv' = |K_k|
 * W_q' = W_q[rows of Q_k]    W_o' = W_o[:, cols of Q_k]   Q_k = ∪_{h ∈ K_k} {h·g .. h·g+g−1}
 * ```
 *
 * with `g = H / Hkv` query heads per KV head and `D` rows per head (`qRowKeep`, `kvRowKeep`). Layers
 * the plan does not list stay whole. Plans round-trip through JSON ({@link planToJSON},
 * {@link planFromJSON}); every plan is validated when made, so an index out of range, unsorted or
 * repeated is reported with its layer and field.
 *
 * @example Keep channels 0 and 2 and KV head 1 of layer 0
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPruningPlan, planFromJSON, planToJSON, qRowKeep } from "./pruning_plan.ts";
 * const plan = createPruningPlan({
 *   method: "manual", ratio: 0.5,
 *   dims: { layers: 2, hidden: 8, intermediate: 4, heads: 4, kvHeads: 2, headDim: 2 },
 *   layers: [{ index: 0, mlpKeep: [0, 2], kvHeadKeep: [1] }],
 * });
 * assert.deepEqual(qRowKeep(plan.dims, plan.layers[0]), [4, 5, 6, 7]); // q heads 2, 3 (group of KV head 1)
 * assert.deepEqual(planFromJSON(JSON.parse(JSON.stringify(planToJSON(plan)))), plan);
 * ```
 * @module
 */
import { readTextFile } from "../../host/runtime.ts";
import { z } from "zod";
import { parseConfig } from "../../config.ts";
import { writeFileAtomic } from "../../io/atomic.ts";
import type { ModelConfig } from "../../models/config.ts";

/** The `format` tag of a plan's JSON. */
export const PRUNING_PLAN_FORMAT = "ferry.pruning_plan";

const count = z.number().int().positive();
const index = z.number().int().nonnegative();

/** The unpruned sizes a plan refers to (a dense Llama-family model). */
export const PlanDimsSchema = z.strictObject({
  /** Decoder layers `L`. */
  layers: count,
  /** Hidden size `C`. */
  hidden: count,
  /** SwiGLU width `d_ff`. */
  intermediate: count,
  /** Query heads `H`. */
  heads: count,
  /** Key/value heads `Hkv`; divides `H`. */
  kvHeads: count,
  /** Head dim `D`. */
  headDim: count,
});

/** One pruned layer. */
export const LayerPlanSchema = z.strictObject({
  /** Decoder layer index. */
  index,
  /** Kept MLP intermediate channels, ascending (`I_k`). */
  mlpKeep: z.array(index),
  /** Kept KV heads, ascending; their query-head groups and o_proj columns are kept with them. */
  kvHeadKeep: z.array(index),
});

/** A plan as callers write it (JSON without the `format` tag). */
export const PruningPlanSchema = z.strictObject({
  /** How the plan was made (`"random"`, `"l2"`, `"activation"`, `"llm-pruner"`, …). */
  method: z.string().min(1),
  /** The pruning ratio `p` the plan was built for (descriptive; the index lists are what count). */
  ratio: z.number().min(0).lt(1),
  dims: PlanDimsSchema,
  /** Pruned layers in ascending index order; layers not listed stay whole. */
  layers: z.array(LayerPlanSchema),
});

/** The unpruned sizes of a plan. */
export type PlanDims = Readonly<z.output<typeof PlanDimsSchema>>;
/** One pruned layer of a plan. */
export interface LayerPlan {
  readonly index: number;
  readonly mlpKeep: readonly number[];
  readonly kvHeadKeep: readonly number[];
}
/** A validated, frozen pruning plan. */
export interface PruningPlan {
  readonly method: string;
  readonly ratio: number;
  readonly dims: PlanDims;
  readonly layers: readonly LayerPlan[];
}
/** What {@link createPruningPlan} accepts (the shape of {@link PruningPlanSchema}). */
export type PruningPlanInput = PruningPlan;
/** A plan's JSON: the plan plus `format` and `version`. */
export interface PruningPlanJSON extends PruningPlanInput {
  format: typeof PRUNING_PLAN_FORMAT;
  version: 1;
}

/**
 * Validates and freezes a plan.
 *
 * @throws {ConfigError} on a missing or mistyped field (a non-integer index, a ratio outside [0, 1))
 * @throws {RangeError} naming the layer and field: a layer index outside `0..L-1`, layers listed out
 *   of order or twice, `kvHeads` not dividing `heads`, an empty keep list, or a kept index outside its
 *   range, unsorted, or repeated
 */
export function createPruningPlan(input: PruningPlanInput): PruningPlan {
  const plan: PruningPlan = parseConfig("PruningPlan", PruningPlanSchema, input);
  checkPlan(plan);
  return plan;
}

function checkPlan(plan: PruningPlan): void {
  const { dims } = plan;
  const fail = (msg: string): never => {
    throw new RangeError(`Invalid PruningPlan: ${msg}`);
  };
  if (dims.heads % dims.kvHeads !== 0) {
    fail(`dims.kvHeads ${dims.kvHeads} must divide dims.heads ${dims.heads}`);
  }
  let prev = -1;
  plan.layers.forEach((l, n) => {
    const where = `layers[${n}] (layer ${l.index})`;
    if (l.index >= dims.layers) {
      fail(`${where}: index ${l.index} is outside the model's layers 0..${dims.layers - 1}`);
    }
    if (l.index === prev) fail(`${where}: layer ${l.index} is listed twice`);
    if (l.index < prev) fail(`${where}: layers must be listed in ascending index order (after ${prev})`);
    prev = l.index;
    checkKeep(where, "mlpKeep", l.mlpKeep, dims.intermediate, "intermediate channels", fail);
    checkKeep(where, "kvHeadKeep", l.kvHeadKeep, dims.kvHeads, "KV heads", fail);
  });
}

function checkKeep(
  where: string,
  field: string,
  keep: readonly number[],
  size: number,
  what: string,
  fail: (msg: string) => never,
): void {
  if (keep.length === 0) fail(`${where}: ${field} is empty; a layer must keep at least one of its ${what}`);
  keep.forEach((k, j) => {
    if (k >= size) fail(`${where}: ${field}[${j}] = ${k} is outside the ${size} ${what} (0..${size - 1})`);
    if (j > 0 && k === keep[j - 1]) fail(`${where}: ${field}[${j}] = ${k} repeats ${field}[${j - 1}]`);
    if (j > 0 && k < keep[j - 1]) {
      fail(`${where}: ${field} must be ascending: ${field}[${j}] = ${k} follows ${keep[j - 1]}; sort it`);
    }
  });
}

/** The JSON form of `plan` (`JSON.stringify` it, or use {@link savePlan}). */
export function planToJSON(plan: PruningPlan): PruningPlanJSON {
  return {
    format: PRUNING_PLAN_FORMAT,
    version: 1,
    method: plan.method,
    ratio: plan.ratio,
    dims: { ...plan.dims },
    layers: plan.layers.map((l) => ({
      index: l.index,
      mlpKeep: [...l.mlpKeep],
      kvHeadKeep: [...l.kvHeadKeep],
    })),
  };
}

/**
 * Reads a plan from its parsed JSON.
 *
 * @throws {TypeError} when `format`/`version` are not a Ferry pruning plan's
 * @throws {ConfigError} / {RangeError} as {@link createPruningPlan}
 */
export function planFromJSON(json: unknown): PruningPlan {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new TypeError(`Cannot read PruningPlan: expected a JSON object: received ${JSON.stringify(json)}`);
  }
  const { format, version, ...rest } = json as Record<string, unknown>;
  if (format !== PRUNING_PLAN_FORMAT || version !== 1) {
    throw new TypeError(
      `Cannot read PruningPlan: expected format "${PRUNING_PLAN_FORMAT}" version 1: received format ` +
        `${JSON.stringify(format)} version ${JSON.stringify(version)}`,
    );
  }
  const plan: PruningPlan = parseConfig("PruningPlan", PruningPlanSchema, rest);
  checkPlan(plan);
  return plan;
}

/** Writes `plan` as JSON to `path` atomically. */
export async function savePlan(plan: PruningPlan, path: string): Promise<void> {
  await writeFileAtomic(path, JSON.stringify(planToJSON(plan)) + "\n");
}

/**
 * Reads a plan written by {@link savePlan}.
 * @throws {SyntaxError} on invalid JSON, and as {@link planFromJSON}
 */
export async function loadPlan(path: string): Promise<PruningPlan> {
  return planFromJSON(JSON.parse(await readTextFile(path)));
}

/**
 * The plan dims of a model config (its unpruned sizes).
 * @throws {TypeError} for a MoE model or one that is already structurally pruned
 */
export function planDimsOf(config: ModelConfig): PlanDims {
  if (config.family !== "dense") {
    throw new TypeError(
      `Cannot plan structured pruning for a ${config.modelType} model: only dense Llama-family models ` +
        `(llama, mistral, qwen2) are supported; MoE expert channels are not pruned`,
    );
  }
  const { layers, hidden, intermediate, heads, kvHeads, headDim } = config;
  return Object.freeze({ layers, hidden, intermediate, heads, kvHeads, headDim });
}

/**
 * Kept counts at ratio `p` (LoRAM, ALGORITHMS B.3/B.7): `d_ff' = d_ff − ⌈p·d_ff⌉`; with GQA
 * `Hkv' = Hkv − ⌊p·Hkv⌋`; with multi-head attention (`H = Hkv`) `H' = ⌊H·(1 − p)⌋`.
 *
 * @throws {RangeError} when `p` is outside [0, 1) or leaves no channel or no head
 */
export function keptCounts(dims: PlanDims, ratio: number): { intermediate: number; kvHeads: number } {
  if (!(ratio >= 0 && ratio < 1)) {
    throw new RangeError(`Cannot size a pruned layer: ratio must be in [0, 1): received ${ratio}`);
  }
  const intermediate = dims.intermediate - Math.ceil(ratio * dims.intermediate);
  const kvHeads = dims.heads === dims.kvHeads
    ? Math.floor(dims.heads * (1 - ratio))
    : dims.kvHeads - Math.floor(ratio * dims.kvHeads);
  if (intermediate < 1 || kvHeads < 1) {
    throw new RangeError(
      `Cannot size a pruned layer: ratio ${ratio} leaves ${intermediate} of ${dims.intermediate} channels and ` +
        `${kvHeads} of ${dims.kvHeads} KV heads; use a smaller ratio`,
    );
  }
  return { intermediate, kvHeads };
}

/** Kept query heads: the whole group `h·g .. h·g+g−1` of every kept KV head `h` (`g = H / Hkv`). */
export function queryHeadKeep(dims: PlanDims, layer: LayerPlan): number[] {
  const g = dims.heads / dims.kvHeads;
  return layer.kvHeadKeep.flatMap((h) => Array.from({ length: g }, (_, j) => h * g + j));
}

/** Kept rows of q_proj, which are also the kept columns of o_proj: `D` per kept query head. */
export function qRowKeep(dims: PlanDims, layer: LayerPlan): number[] {
  return headRows(queryHeadKeep(dims, layer), dims.headDim);
}

/** Kept rows of k_proj and v_proj: `D` per kept KV head. */
export function kvRowKeep(dims: PlanDims, layer: LayerPlan): number[] {
  return headRows(layer.kvHeadKeep, dims.headDim);
}

function headRows(heads: readonly number[], D: number): number[] {
  return heads.flatMap((h) => Array.from({ length: D }, (_, d) => h * D + d));
}

/** One layer of an LLM-Pruner / LoRAM pruning record: the *removed* indices. */
export interface PrunedIndexRecord {
  /** Decoder layer index. */
  readonly index: number;
  /** Removed MLP channels (gate_proj output rows), any order. */
  readonly mlpPruned: readonly number[];
  /** Removed k_proj output dims (whole KV heads: all `D` dims of each), any order. */
  readonly kProjPruned: readonly number[];
}

/**
 * A plan from removed-index records, as LoRAM's scripts read LLM-Pruner's per-layer pruning
 * records (gate_proj channels; k_proj output dims, which must cover whole KV heads).
 *
 * @throws {RangeError} when k_proj dims cover part of a head, and as {@link createPruningPlan}
 */
export function planFromPrunedIndices(
  method: string,
  ratio: number,
  dims: PlanDims,
  records: readonly PrunedIndexRecord[],
): PruningPlan {
  const D = dims.headDim;
  const layers = records.map((r) => {
    const removedDims = new Set(r.kProjPruned);
    const kvHeadKeep: number[] = [];
    for (let h = 0; h < dims.kvHeads; h++) {
      const n = Array.from({ length: D }, (_, d) => h * D + d).filter((d) => removedDims.has(d)).length;
      if (n !== 0 && n !== D) {
        throw new RangeError(
          `Invalid pruning record for layer ${r.index}: kProjPruned removes ${n} of the ${D} dims of KV head ${h}; ` +
            `whole heads must be removed`,
        );
      }
      if (n === 0) kvHeadKeep.push(h);
    }
    const removed = new Set(r.mlpPruned);
    const mlpKeep = Array.from({ length: dims.intermediate }, (_, c) => c).filter((c) => !removed.has(c));
    return { index: r.index, mlpKeep, kvHeadKeep };
  });
  return createPruningPlan({ method, ratio, dims, layers });
}
