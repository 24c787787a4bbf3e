/**
 * `applyPlan(model, plan)`: a physically smaller copy of a dense Llama-family model (Llama,
 * Mistral, Qwen2) with each planned layer's kept rows and columns copied (LoRAM step 0, "pruned
 * full-rank weight generation", [LoRAM](https://arxiv.org/abs/2502.13533) §3):
 *
 * ```
 * gate_proj, up_proj  [F, C] -> [F', C]       rows mlpKeep (and their biases)
 * down_proj           [C, F] -> [C, F']       columns mlpKeep
 * k_proj, v_proj      [Hkv·D, C] -> [Hkv'·D, C] rows of the kept KV heads (and biases)
 * q_proj              [H·D, C] -> [H'·D, C]   rows of the kept query groups (and bias)
 * o_proj              [C, H·D] -> [C, H'·D]   the same columns
 * ```
 *
 * The new model's `config.json` is the original plus the `ferry_pruning` per-layer sizes (see
 * `src/models/config.ts`), so it runs forward, generate, perplexity and LoRA training, and
 * `saveModel` / `loadModel` round-trip it. `maskWithPlan(model, plan)` builds the same-shape masked
 * equivalent (pruned rows/columns zeroed), whose logits equal the pruned model's: a pruned channel's
 * gate and up rows are zero, so `silu(0)·0 = 0` reaches down_proj; a pruned head's v rows and o_proj
 * columns are zero, so its attention output contributes nothing.
 *
 * MoE models are refused: stacked experts share one width, and expert channels are not planned.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../../device/create_device.ts";
 * import { loadModel } from "../../models/load.ts";
 * import { applyPlan } from "./apply_plan.ts";
 * import { planDimsOf } from "./pruning_plan.ts";
 * import { randomPlan } from "./structured.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/llama-gqa-tied-f32", { device });
 * const plan = randomPlan(planDimsOf(model.config), { ratio: 0.5, layers: [0, 1] });
 * using small = await applyPlan(model, plan);
 * assert.ok(small.numParameters().total < model.numParameters().total);
 * small.forward(Int32Array.of(1, 2, 3)).logits.dispose();
 * ```
 * @module
 */
import { CausalLM } from "../../models/causal_lm.ts";
import { layerSizesAt, type ModelConfig, parseModelConfig } from "../../models/config.ts";
import { parameterSpecs } from "../../models/weights.ts";
import { Tensor } from "../../tensor/tensor.ts";
import { decoderLinears } from "./calibration.ts";
import { kvRowKeep, type PlanDims, planDimsOf, type PruningPlan, qRowKeep } from "./pruning_plan.ts";

/** How one parameter of a planned layer is cut: kept rows or kept columns of `[rows, cols]`. */
interface Cut {
  readonly axis: 0 | 1;
  readonly keep: readonly number[];
}

/**
 * A physically smaller copy of `model` with `plan` applied (`model` is left as it was).
 *
 * @returns a new model owning new weights (ledger category `"weights"`); dispose it
 * @throws {TypeError} for a MoE model, or when a Linear carries a LoRA adapter (merge or unload first)
 * @throws {RangeError} when the plan's dims do not match the model (layer count, widths, heads), or a
 *   planned layer is already pruned
 */
export async function applyPlan(model: CausalLM, plan: PruningPlan): Promise<CausalLM> {
  checkModel(model, plan, "applyPlan");
  const cuts = planCuts(plan);
  const sizes = Array.from({ length: model.config.layers }, (_, i) => layerSizesAt(model.config, i));
  for (const l of plan.layers) {
    sizes[l.index] = { ...sizes[l.index], intermediate: l.mlpKeep.length, kvHeads: l.kvHeadKeep.length };
  }
  const hfConfig = {
    ...model.hfConfig,
    ferry_pruning: {
      intermediate_sizes: sizes.map((s) => s.intermediate),
      num_key_value_heads: sizes.map((s) => s.kvHeads),
    },
  };
  const config = parseModelConfig(hfConfig);
  return await rebuild(model, config, hfConfig, cuts, select);
}

/**
 * The same-shape masked equivalent of `applyPlan(model, plan)`: a copy of `model` whose pruned
 * rows and columns (and their bias entries) are zero. Its logits equal the pruned model's.
 *
 * @throws as {@link applyPlan}
 */
export async function maskWithPlan(model: CausalLM, plan: PruningPlan): Promise<CausalLM> {
  checkModel(model, plan, "maskWithPlan");
  return await rebuild(model, model.config, model.hfConfig, planCuts(plan), zeroOut);
}

function checkModel(model: CausalLM, plan: PruningPlan, what: string): void {
  const dims = planDimsOf(model.config); // throws for MoE
  const keys = Object.keys(dims) as (keyof PlanDims)[];
  const off = keys.filter((k) => dims[k] !== plan.dims[k]);
  if (off.length > 0) {
    throw new RangeError(
      `Cannot ${what}: the plan is for a different model: ${
        off.map((k) => `${k} ${plan.dims[k]} (model: ${dims[k]})`).join(", ")
      }; build the plan from this model`,
    );
  }
  const adapted = decoderLinears(model).find((m) => m.linear.adapter !== undefined);
  if (adapted) {
    throw new TypeError(
      `Cannot ${what}: ${adapted.name} carries a LoRA adapter; merge (mergeAndUnload) or unload adapters first`,
    );
  }
  for (const l of plan.layers) {
    const s = layerSizesAt(model.config, l.index);
    if (s.intermediate !== dims.intermediate || s.kvHeads !== dims.kvHeads) {
      throw new RangeError(
        `Cannot ${what}: layer ${l.index} is already pruned (${s.intermediate} channels, ${s.kvHeads} KV heads); ` +
          `plan layers of the unpruned model only`,
      );
    }
  }
}

/** Ferry parameter name → cut, for every parameter the plan changes. */
function planCuts(plan: PruningPlan): Map<string, Cut> {
  const cuts = new Map<string, Cut>();
  for (const l of plan.layers) {
    const p = `model.layers.${l.index}`;
    const rows = (name: string, keep: readonly number[]) => {
      cuts.set(`${p}.${name}.weight`, { axis: 0, keep });
      cuts.set(`${p}.${name}.bias`, { axis: 0, keep });
    };
    const q = qRowKeep(plan.dims, l);
    const kv = kvRowKeep(plan.dims, l);
    rows("self_attn.q_proj", q);
    rows("self_attn.k_proj", kv);
    rows("self_attn.v_proj", kv);
    cuts.set(`${p}.self_attn.o_proj.weight`, { axis: 1, keep: q });
    rows("mlp.gate_proj", l.mlpKeep);
    rows("mlp.up_proj", l.mlpKeep);
    cuts.set(`${p}.mlp.down_proj.weight`, { axis: 1, keep: l.mlpKeep });
  }
  return cuts;
}

type Transform = (data: Float32Array, shape: readonly number[], cut: Cut) => Float32Array;

/** Kept rows or columns of a `[rows, cols]` (or `[rows]`) array. */
function select(data: Float32Array, shape: readonly number[], cut: Cut): Float32Array {
  const cols = shape.length === 2 ? shape[1] : 1;
  if (cut.axis === 0) {
    const out = new Float32Array(cut.keep.length * cols);
    cut.keep.forEach((r, i) => out.set(data.subarray(r * cols, (r + 1) * cols), i * cols));
    return out;
  }
  const rows = shape[0];
  const n = cut.keep.length;
  const out = new Float32Array(rows * n);
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < n; j++) out[r * n + j] = data[r * cols + cut.keep[j]];
  }
  return out;
}

/** The same array with every row or column not in `cut.keep` set to 0. */
function zeroOut(data: Float32Array, shape: readonly number[], cut: Cut): Float32Array {
  const cols = shape.length === 2 ? shape[1] : 1;
  const extent = cut.axis === 0 ? shape[0] : cols;
  const kept = new Uint8Array(extent);
  for (const k of cut.keep) kept[k] = 1;
  const out = Float32Array.from(data);
  for (let i = 0; i < out.length; i++) {
    const index = cut.axis === 0 ? Math.floor(i / cols) : i % cols;
    if (!kept[index]) out[i] = 0;
  }
  return out;
}

/** Copies every parameter (transformed where cut) onto the device and builds the model. */
async function rebuild(
  model: CausalLM,
  config: ModelConfig,
  hfConfig: Readonly<Record<string, unknown>>,
  cuts: Map<string, Cut>,
  transform: Transform,
): Promise<CausalLM> {
  const source = model.parameters();
  const params = new Map<string, Tensor>();
  try {
    for (const spec of parameterSpecs(config)) {
      const t = source.get(spec.name)!;
      const host = await t.toArray() as Float32Array;
      const cut = cuts.get(spec.name);
      const data = cut ? transform(host, t.shape, cut) : host;
      params.set(
        spec.name,
        Tensor.fromArray(model.device, data, spec.shape, { category: spec.category, label: spec.name }),
      );
    }
    return CausalLM.fromParameters(config, params, hfConfig);
  } catch (err) {
    for (const t of params.values()) t.dispose();
    throw err;
  }
}
