/**
 * Up-projection activations of routed tokens, read from a model's ordinary forward: per MoE layer,
 * each expert's `|up·h_i|` over the tokens the layer's own router sends it, with `h_i` the MoE input
 * the experts receive (`SparseMoE.expertsHook`). The source of FloE's threshold calibration and of
 * the achieved-sparsity measurement (ALGORITHMS.md A.3). A FloE layer's up is its resident (packed)
 * projection; a dense layer's is the exact stacked weight.
 *
 * Legend: `T` tokens, `E` experts, `F` expert width, `N_e` tokens routed to expert `e`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "../models/load.ts";
 * import { recordRoutedUp } from "./record.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/mixtral-top2-f32", { device });
 * const layers = await recordRoutedUp(model, Int32Array.of(1, 5, 9, 4));
 * const routed = layers.get(1)!.reduce((n, e) => n + e.tokens, 0);
 * assert.equal(routed, 4 * 2); // T · K (token, expert) pairs
 * ```
 * @module
 */
import type { CausalLM } from "../models/causal_lm.ts";
import { SwiGLUExperts } from "../nn/experts.ts";
import { Linear } from "../nn/linear.ts";
import type { LinearLike } from "../nn/linear_like.ts";
import type { SparseMoE } from "../nn/sparse_moe.ts";
import { sliceRows } from "../ops/slice.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { FloeExperts } from "./floe_experts.ts";

/** One expert's routed up activations. */
export interface RoutedUp {
  /** `N_e`. */
  tokens: number;
  /** `[N_e, F]` signed `up·h` of the routed tokens, in token order. */
  v: Float32Array;
  /** `[N_e, C]` their MoE inputs `h`. */
  x: Float32Array;
}

/** The up projections of a layer's experts (views for dense experts: the caller disposes them). */
function upProjections(experts: SparseMoE["experts"]): { up: LinearLike[]; owned: boolean } {
  if (experts instanceof FloeExperts) return { up: [...experts.up], owned: false };
  if (experts instanceof SwiGLUExperts) {
    const [E, F, C] = experts.upProj.shape;
    using flat = experts.upProj.reshape([E * F, C]); // [E·F, C]
    return { up: Array.from({ length: E }, (_, e) => new Linear(sliceRows(flat, e * F, F))), owned: true }; // [F, C]
  }
  throw new TypeError(
    `Cannot record up activations: experts of type ${experts.constructor.name} expose no up projection`,
  );
}

/**
 * Runs `model.forward(ids)` once and returns, per MoE layer, every expert's routed up activations.
 *
 * @param model a MoE model (dense or FloE experts); it runs exactly as configured
 * @param ids `[T]` token ids, one sequence
 */
export async function recordRoutedUp(model: CausalLM, ids: Int32Array): Promise<Map<number, RoutedUp[]>> {
  const pending = new Map<number, { vs: Tensor[]; x: Tensor; selected: Tensor }>();
  const ups = new Map<number, { up: LinearLike[]; owned: boolean }>();
  try {
    for (const l of model.moeLayers) {
      const moe = model.layers[l].mlp as SparseMoE;
      const u = upProjections(moe.experts);
      ups.set(l, u);
      moe.expertsHook = (input) => {
        const vs = u.up.map((p) => p.forward(input.x)); // E × ([T, C] -> [T, F])
        pending.set(l, {
          vs,
          x: input.x.reshape(input.x.shape), // [T, C]
          selected: input.selected.reshape(input.selected.shape), // [T, K]
        });
      };
    }
    model.forward(ids).logits.dispose();
  } finally {
    for (const l of model.moeLayers) (model.layers[l].mlp as SparseMoE).expertsHook = undefined;
  }
  const out = new Map<number, RoutedUp[]>();
  try {
    for (const [l, { vs, x, selected }] of pending) {
      const [T, K] = selected.shape;
      const C = x.shape[1];
      const sel = await selected.toArray() as Int32Array; // [T, K]
      const xs = await x.toArray() as Float32Array; // [T, C]
      const layer: RoutedUp[] = [];
      for (let e = 0; e < vs.length; e++) {
        const all = await vs[e].toArray() as Float32Array; // [T, F]
        const F = vs[e].shape[1];
        const rows: number[] = [];
        for (let t = 0; t < T; t++) if (sel.subarray(t * K, (t + 1) * K).includes(e)) rows.push(t);
        const v = new Float32Array(rows.length * F);
        const xr = new Float32Array(rows.length * C);
        rows.forEach((t, j) => {
          v.set(all.subarray(t * F, (t + 1) * F), j * F);
          xr.set(xs.subarray(t * C, (t + 1) * C), j * C);
        });
        layer.push({ tokens: rows.length, v, x: xr });
      }
      out.set(l, layer);
    }
  } finally {
    for (const { vs, x, selected } of pending.values()) {
      for (const v of vs) v.dispose();
      x.dispose();
      selected.dispose();
    }
    for (const u of ups.values()) if (u.owned) { for (const p of u.up) p.dispose(); }
  }
  return out;
}
