/**
 * Routing traces: per MoE layer, the MoE input `h_i`, the router logits and the router's choice of
 * every token of one forward (`SparseMoE.expertsHook`), read back to the host after the forward
 * (`trace_io.ts` writes them as Arrow files). The data FloE's
 * predictors are evaluated on (ALGORITHMS.md A.4, A.5). Tracing costs nothing when not called: the
 * hook is set only for this forward.
 *
 * Legend: `T` tokens, `C` hidden, `E` experts, `K` experts per token.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "../models/load.ts";
 * import { traceMoe } from "./trace.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/mixtral-top2-f32", { device });
 * const trace = await traceMoe(model, Int32Array.of(1, 5, 9));
 * assert.deepEqual([trace.get(1)!.x.length, trace.get(1)!.selected.length], [3 * 32, 3 * 2]);
 * ```
 * @module
 */
import type { CausalLM } from "../models/causal_lm.ts";
import type { SparseMoE } from "../nn/sparse_moe.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** One MoE layer's trace of one sequence. */
export interface MoeLayerTrace {
  T: number;
  K: number;
  /** `[T, C]` the MoE input `h_i`. */
  x: Float32Array;
  /** `[T, E]` router logits. */
  logits: Float32Array;
  /** `[T, K]` the router's experts, best first. */
  selected: Int32Array;
}

/** Runs `model.forward(ids)` and returns every MoE layer's input and routing. */
export async function traceMoe(model: CausalLM, ids: Int32Array): Promise<Map<number, MoeLayerTrace>> {
  const held = new Map<number, { x: Tensor; logits: Tensor; selected: Tensor }>();
  try {
    for (const l of model.moeLayers) {
      const moe = model.layers[l].mlp as SparseMoE;
      moe.expertsHook = (input) => {
        held.set(l, {
          x: input.x.reshape(input.x.shape), // [T, C]
          logits: moe.router.forward(input.x), // [T, C] -> [T, E]
          selected: input.selected.reshape(input.selected.shape), // [T, K]
        });
      };
    }
    model.forward(ids).logits.dispose();
  } finally {
    for (const l of model.moeLayers) (model.layers[l].mlp as SparseMoE).expertsHook = undefined;
  }
  const out = new Map<number, MoeLayerTrace>();
  try {
    for (const [l, { x, logits, selected }] of held) {
      out.set(l, {
        T: selected.shape[0],
        K: selected.shape[1],
        x: await x.toArray() as Float32Array,
        logits: await logits.toArray() as Float32Array,
        selected: await selected.toArray() as Int32Array,
      });
    }
  } finally {
    for (const t of held.values()) for (const v of Object.values(t)) v.dispose();
  }
  return out;
}
