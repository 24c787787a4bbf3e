/**
 * LoRAM's recovery `R(·)` ([LoRAM](https://arxiv.org/abs/2502.13533) §3, ALGORITHMS.md B.3): the
 * LoRA factors trained on a structurally pruned model, scattered back to the original model's
 * shapes at the plan's kept positions, so the merged update is zero on every pruned row and column.
 *
 * PEFT convention `ΔW = scaling·B·A`, `A` `[r, in]`, `B` `[out, r]`. For a planned layer with kept
 * channels `I_k`, kept q rows / o_proj columns `Q_k` and kept k/v rows `K_k`:
 *
 * ```
 * q_proj        B^R[Q_k, :] = B^P        A unchanged            // [H'·D, r] -> [H·D, r]
 * k/v_proj      B^R[K_k, :] = B^P        A unchanged            // [Hkv'·D, r] -> [Hkv·D, r]
 * o_proj        A^R[:, Q_k] = A^P        B unchanged            // [r, H'·D] -> [r, H·D]
 * gate/up_proj  B^R[I_k, :] = B^P        A unchanged            // [F', r] -> [F, r]
 * down_proj     A^R[:, I_k] = A^P        B unchanged            // [r, F'] -> [r, F]
 * ```
 *
 * Everything else is 0 (`zeroA`, the default and what LoRAM's evaluation uses), or, with `normA`,
 * the pruned columns of `A_o` and `A_down` are drawn from `N(0, (1/r)²)` (seeded; their `B` rows
 * stay as trained, so the merged update there is `scaling·B·A_noise`). Modules of unplanned layers
 * are copied. For masked plans (semi, unst) the shapes never changed and recovery is the identity
 * ({@link recoverFactors} with `plan` null).
 *
 * @example Scatter one down_proj adapter of a 2-channel-of-4 plan
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPruningPlan } from "../compressors/prune/pruning_plan.ts";
 * import { recoverFactors } from "./recover.ts";
 * const plan = createPruningPlan({
 *   method: "manual", ratio: 0.5,
 *   dims: { layers: 1, hidden: 2, intermediate: 4, heads: 1, kvHeads: 1, headDim: 2 },
 *   layers: [{ index: 0, mlpKeep: [1, 3], kvHeadKeep: [0] }],
 * });
 * const down = { A: Float32Array.of(5, 6), B: Float32Array.of(1, 2) }; // A [r=1, F'=2], B [C=2, 1]
 * const out = recoverFactors(plan, new Map([["model.layers.0.mlp.down_proj", down]]), () => 1);
 * assert.deepEqual([...out.get("model.layers.0.mlp.down_proj")!.A], [0, 5, 0, 6]); // A [1, F=4]
 * ```
 * @module
 */
import {
  kvRowKeep,
  type PlanDims,
  planDimsOf,
  type PruningPlan,
  qRowKeep,
} from "../compressors/prune/pruning_plan.ts";
import { LoraModel } from "../lora/lora_model.ts";
import { fromPeftJson, toPeftJson } from "../lora/lora_config.ts";
import { loadAdapter, type LoraFactors, saveAdapter } from "../lora/peft_io.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import type { ModelConfig } from "../models/config.ts";
import { randn } from "../tensor/random.ts";

/** How the pruned columns of `A_o` / `A_down` are filled (B.3). */
export type RecoverType = "zeroA" | "normA";

/** Options of {@link recoverFactors}. */
export interface RecoverOptions {
  /** `zeroA` (default) or `normA`. */
  type?: RecoverType;
  /** Seed of the `normA` noise (default 0). */
  seed?: number;
}

/** Which factor of a module is scattered, along which axis, over which original indices. */
interface Scatter {
  readonly factor: "A" | "B";
  /** Indices of the original `out` (rows of B) or `in` (columns of A). */
  readonly keep: readonly number[];
  /** The original size along that axis. */
  readonly full: number;
}

const MODULE = /^model\.layers\.(\d+)\.(self_attn\.[qkvo]_proj|mlp\.(?:gate|up|down)_proj)$/;

/** The scatter of `module` under `plan`, or undefined when its factors keep their shapes. */
export function scatterOf(plan: PruningPlan, module: string): Scatter | undefined {
  const m = MODULE.exec(module);
  if (!m) return undefined;
  const layer = plan.layers.find((l) => l.index === Number(m[1]));
  if (!layer) return undefined;
  const d: PlanDims = plan.dims;
  switch (m[2]) {
    case "self_attn.q_proj":
      return { factor: "B", keep: qRowKeep(d, layer), full: d.heads * d.headDim };
    case "self_attn.k_proj":
    case "self_attn.v_proj":
      return { factor: "B", keep: kvRowKeep(d, layer), full: d.kvHeads * d.headDim };
    case "self_attn.o_proj":
      return { factor: "A", keep: qRowKeep(d, layer), full: d.heads * d.headDim };
    case "mlp.gate_proj":
    case "mlp.up_proj":
      return { factor: "B", keep: layer.mlpKeep, full: d.intermediate };
    default: // mlp.down_proj
      return { factor: "A", keep: layer.mlpKeep, full: d.intermediate };
  }
}

/**
 * Recovers pruned-model LoRA factors to the original model's shapes (see the module doc).
 *
 * @param plan the structured plan the adapter's model was pruned with; `null` for masked plans
 *   (semi/unst), where recovery is the identity (the factors are copied)
 * @param factors module (HF name) → `A` `[r, in']`, `B` `[out', r]` of the pruned model
 * @param rank module → `r` (the adapter config's `rank`)
 * @returns module → `A` `[r, in]`, `B` `[out, r]` of the original model (new arrays)
 * @throws {RangeError} when a factor's length does not fit the plan (naming the module, the
 *   expected and the received shape): the adapter was trained on another pruned model
 */
export function recoverFactors(
  plan: PruningPlan | null,
  factors: ReadonlyMap<string, LoraFactors>,
  rank: (module: string) => number,
  options: RecoverOptions = {},
): Map<string, LoraFactors> {
  const type = options.type ?? "zeroA";
  let seed = options.seed ?? 0;
  const out = new Map<string, LoraFactors>();
  for (const [module, { A, B }] of factors) {
    const s = plan ? scatterOf(plan, module) : undefined;
    if (!s) {
      out.set(module, { A: Float32Array.from(A), B: Float32Array.from(B) });
      continue;
    }
    const r = rank(module);
    const n = s.keep.length;
    const pruned = s.factor === "A" ? A : B;
    if (pruned.length !== r * n) {
      const shape = s.factor === "A" ? `[${r}, ${n}]` : `[${n}, ${r}]`;
      const got = s.factor === "A" ? `[${r}, ${A.length / r}]` : `[${B.length / r}, ${r}]`;
      throw new RangeError(
        `Cannot recover the LoRA adapter of ${module}: the plan keeps ${n} of its ${s.full} ` +
          `${
            s.factor === "A" ? "input columns" : "output rows"
          }, so lora_${s.factor} must be ${shape}: received ${got}; ` +
          `was the adapter trained on a model pruned with another plan?`,
      );
    }
    if (s.factor === "B") {
      const full = new Float32Array(s.full * r); // [out, r], zero rows where pruned
      s.keep.forEach((row, i) => full.set(B.subarray(i * r, (i + 1) * r), row * r));
      out.set(module, { A: Float32Array.from(A), B: full });
    } else {
      // [r, in]: pruned columns zero (zeroA) or N(0, (1/r)²) (normA)
      const full = type === "normA" ? randn(r * s.full, seed++, 1 / r) : new Float32Array(r * s.full);
      if (type === "normA") {
        const kept = new Uint8Array(s.full);
        for (const c of s.keep) kept[c] = 1;
        for (let k = 0; k < r; k++) for (let c = 0; c < s.full; c++) if (kept[c]) full[k * s.full + c] = 0;
      }
      for (let k = 0; k < r; k++) s.keep.forEach((c, j) => (full[k * s.full + c] = A[k * n + j]));
      out.set(module, { A: full, B: Float32Array.from(B) });
    }
  }
  return out;
}

/**
 * Checks that `plan` was made for the model of `config` (its unpruned sizes).
 * @throws {TypeError} for a MoE model; {RangeError} naming every size that differs
 */
export function checkPlanFor(config: ModelConfig, plan: PruningPlan, what: string): void {
  const dims = planDimsOf(config);
  const keys = Object.keys(dims) as (keyof PlanDims)[];
  const off = keys.filter((k) => dims[k] !== plan.dims[k]);
  if (off.length > 0) {
    throw new RangeError(
      `Cannot ${what}: the plan is for another model: ${
        off.map((k) => `${k} ${plan.dims[k]} (model: ${dims[k]})`).join(", ")
      }; build the plan from this model`,
    );
  }
}

/**
 * Recovers the adapters of `lora` (attached to the pruned model) and attaches them to `original`,
 * the unpruned model, under the same LoRA config.
 *
 * @param plan the structured plan, or `null` for masked plans (identity)
 * @returns a {@link LoraModel} on `original` (merge it with `mergeAndUnload`)
 * @throws {RangeError} when the plan is for another model or an adapter's shape does not fit it
 */
export async function recoverLora(
  plan: PruningPlan | null,
  lora: LoraModel,
  original: CausalLM,
  options: RecoverOptions = {},
): Promise<LoraModel> {
  if (plan) checkPlanFor(original.config, plan, "recover the LoRA adapter");
  const factors = new Map<string, LoraFactors>();
  for (const name of lora.modules) {
    const { a, b } = lora.adapter(name)!;
    factors.set(name, { A: await a.toArray() as Float32Array, B: await b.toArray() as Float32Array });
  }
  const recovered = recoverFactors(plan, factors, (m) => lora.config.rank(m), options);
  return new LoraModel(original, lora.config, recovered);
}

/**
 * Recovers a PEFT adapter folder trained on the pruned model into a PEFT folder for the original
 * model (`base_model_name_or_path` set to `baseModel` when given); files are written atomically.
 *
 * @throws {FormatError} for a malformed folder; {RangeError} as {@link recoverFactors}
 */
export async function recoverAdapterFolder(
  plan: PruningPlan | null,
  prunedDir: string,
  outDir: string,
  options: RecoverOptions & { baseModel?: string } = {},
): Promise<void> {
  const { config, tensors } = await loadAdapter(prunedDir);
  const recovered = recoverFactors(plan, tensors, (m) => config.rank(m), options);
  const base = options.baseModel ?? config.baseModelNameOrPath;
  await saveAdapter(
    outDir,
    fromPeftJson({ ...toPeftJson(config), base_model_name_or_path: base }),
    recovered,
  );
}
