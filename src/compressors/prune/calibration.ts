/**
 * Calibration statistics for activation-aware pruning: the per-input-feature norm
 * `‖X_j‖₂ = sqrt(Σ_t x_tj²)` of every decoder Linear's input over a few calibration sequences, as
 * Wanda ([Sun et al. 2023](https://arxiv.org/abs/2306.11695)) scores weights with.
 *
 * The model runs its ordinary inference forward; each Linear's `inputHook` adds the column sums of
 * `x ⊙ x` into an accumulator on the device (`ones[1, T] · (x ⊙ x)[T, in] → [1, in]`), so nothing is
 * read back until the end. Hooks are removed afterwards, also on error. Routed MoE experts are
 * stacked tensors, not Linears, and are not covered; the router and the shared expert are.
 *
 * Names are Ferry/HF module names: `model.layers.3.self_attn.q_proj`, `model.layers.3.mlp.down_proj`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../../device/create_device.ts";
 * import { loadModel } from "../../models/load.ts";
 * import { collectInputNorms } from "./calibration.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/llama-gqa-tied-f32", { device });
 * const { norms, tokens } = await collectInputNorms(model, [Int32Array.of(1, 5, 9, 2)]);
 * const down = norms.get("model.layers.0.mlp.down_proj")!; // [intermediate]
 * assert.equal(tokens, 4);
 * assert.equal(down.length, model.config.intermediate);
 * ```
 * @module
 */
import type { CausalLM } from "../../models/causal_lm.ts";
import type { Linear } from "../../nn/linear.ts";
import { asDenseLinear, type LinearLike } from "../../nn/linear_like.ts";
import { SparseMoE } from "../../nn/sparse_moe.ts";
import type { SwiGLU } from "../../nn/swiglu.ts";
import { add, mul } from "../../ops/elementwise.ts";
import { matmul } from "../../ops/matmul.ts";
import { Tensor } from "../../tensor/tensor.ts";

/** Per-input-feature `‖X_j‖₂` (`[in]`) by module name. */
export type InputNorms = Map<string, Float32Array>;

/** One Linear of a decoder layer under its module name. */
export interface NamedLinear {
  readonly name: string;
  readonly linear: Linear;
}

/**
 * Every Linear of the decoder layers (attention projections, dense MLP, MoE router, shared expert
 * and its gate), by module name, in layer order. Embeddings, norms, the LM head and routed experts
 * are not included.
 */
export function decoderLinears(model: CausalLM): NamedLinear[] {
  const dense = (l: LinearLike) => asDenseLinear(l, "list the dense Linears of a compressed model");
  const out: NamedLinear[] = [];
  model.layers.forEach((layer, i) => {
    const p = `model.layers.${i}`;
    const a = layer.attention;
    for (
      const [n, l] of [["q_proj", a.qProj], ["k_proj", a.kProj], ["v_proj", a.vProj], [
        "o_proj",
        a.oProj,
      ]] as const
    ) {
      out.push({ name: `${p}.self_attn.${n}`, linear: dense(l) });
    }
    const mlp = layer.mlp;
    const swiglu = (prefix: string, m: SwiGLU) => {
      out.push({ name: `${prefix}.gate_proj`, linear: dense(m.gateProj) });
      out.push({ name: `${prefix}.up_proj`, linear: dense(m.upProj) });
      out.push({ name: `${prefix}.down_proj`, linear: dense(m.downProj) });
    };
    if (mlp instanceof SparseMoE) {
      out.push({ name: `${p}.mlp.gate`, linear: dense(mlp.router) });
      if (mlp.sharedExpert) swiglu(`${p}.mlp.shared_expert`, mlp.sharedExpert);
      if (mlp.sharedExpertGate) {
        out.push({ name: `${p}.mlp.shared_expert_gate`, linear: dense(mlp.sharedExpertGate) });
      }
    } else {
      swiglu(`${p}.mlp`, mlp);
    }
  });
  return out;
}

/** Options of {@link collectInputNorms}. */
export interface CollectInputNormsOptions {
  /** Which modules to observe (default: every one of {@link decoderLinears}). */
  filter?: (name: string) => boolean;
}

/** What {@link collectInputNorms} returns. */
export interface InputNormsResult {
  /** `[in]` `‖X_j‖₂` over every calibration token, by module name. */
  norms: InputNorms;
  /** Calibration tokens seen. */
  tokens: number;
}

/**
 * Runs `model` on each calibration sequence (no cache, positions from 0) and returns each observed
 * Linear's per-input-feature `‖X_j‖₂` over all of their tokens.
 *
 * @param sequences token-id sequences (e.g. Brown blocks), each within the model's context
 * @throws {RangeError} when there is no sequence, and as `CausalLM.forward` for bad ids
 * @throws {TypeError} when a Linear already has an `inputHook`
 */
export async function collectInputNorms(
  model: CausalLM,
  sequences: Iterable<Int32Array | readonly number[]>,
  options: CollectInputNormsOptions = {},
): Promise<InputNormsResult> {
  const device = model.device;
  const targets = decoderLinears(model).filter((m) => options.filter?.(m.name) ?? true);
  const busy = targets.find((m) => m.linear.inputHook !== undefined);
  if (busy) {
    throw new TypeError(`Cannot collect input norms: ${busy.name} already has an inputHook; remove it first`);
  }
  const sums = new Map<string, Tensor>(); // name -> [1, in] Σ_t x_tj²
  let tokens = 0;
  try {
    for (const { name, linear } of targets) {
      const inF = linear.inFeatures;
      sums.set(name, Tensor.zeros(device, [1, inF], { label: `norms ${name}` }));
      linear.inputHook = (x: Tensor) => {
        using x2 = x.reshape([-1, inF]); // [..., in] -> [T, in]
        using sq = mul(x2, x2); // [T, in]
        using ones = Tensor.fromArray(device, new Float32Array(x2.shape[0]).fill(1), [1, x2.shape[0]]); // [1, T]
        using col = matmul(ones, sq); // [1, T] x [T, in] -> [1, in]
        using prev = sums.get(name)!;
        sums.set(name, add(prev, col)); // [1, in]
      };
    }
    for (const seq of sequences) {
      const { logits } = model.forward(Int32Array.from(seq)); // [T, V]
      logits.dispose();
      tokens += seq.length;
      await device.flush(); // one submit per sequence keeps the pending batch small
    }
    if (tokens === 0) {
      throw new RangeError("Cannot collect input norms: no calibration tokens; pass at least one sequence");
    }
    const norms: InputNorms = new Map();
    for (const [name, t] of sums) {
      const s = await t.toArray() as Float32Array;
      norms.set(name, s.map(Math.sqrt));
    }
    return { norms, tokens };
  } finally {
    for (const { linear } of targets) linear.inputHook = undefined;
    for (const t of sums.values()) t.dispose();
  }
}
