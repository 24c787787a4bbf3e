/**
 * A model's weights with their real calibration inputs, ready for {@link compressionSweep}:
 * the routed experts' `w1`/`w3` (input: the MoE block input of the tokens routed to that expert)
 * and `w2` (input: `silu(x w1ᵀ) ⊙ (x w3ᵀ)` of the same tokens), and the dense layers' attention and
 * MLP projections (input: what each Linear receives). Activations are captured by running the
 * model's ordinary forward with a Linear `inputHook` (the MoE router sees exactly the block input).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../../device/create_device.ts";
 * import { loadModel } from "../../models/load.ts";
 * import { modelSweepWeights } from "./model_weights.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/mixtral-top2-f32", { device });
 * const ws = await modelSweepWeights(model, [Int32Array.of(1, 5, 9, 2, 7)], { layers: [0] });
 * assert.ok(ws.length === 3 * model.config.numExperts && ws[0].activations !== undefined);
 * ```
 * @module
 */
import type { CausalLM } from "../../models/causal_lm.ts";
import { asDenseExperts } from "../../nn/experts.ts";
import type { Linear } from "../../nn/linear.ts";
import { asDenseLinear } from "../../nn/linear_like.ts";
import { SparseMoE } from "../../nn/sparse_moe.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { decoderLinears } from "../prune/calibration.ts";
import type { SweepWeight } from "./sweep.ts";

/** Options of {@link modelSweepWeights}. */
export interface ModelSweepOptions {
  /** Decoder layers to take (default: all). */
  layers?: readonly number[];
  /** At most this many calibration rows per weight (default 256; the first ones). */
  maxTokens?: number;
}

/**
 * Every expert (MoE layers) or attention/MLP projection (dense layers) of the chosen layers, with
 * `[T, in]` calibration activations from running `model` on `sequences`.
 */
export async function modelSweepWeights(
  model: CausalLM,
  sequences: readonly (Int32Array | readonly number[])[],
  options: ModelSweepOptions = {},
): Promise<SweepWeight[]> {
  const layers = options.layers ?? model.layers.map((_, i) => i);
  const maxTokens = options.maxTokens ?? 256;
  for (const i of layers) {
    if (!Number.isInteger(i) || i < 0 || i >= model.layers.length) {
      throw new RangeError(
        `Cannot collect sweep weights: layer ${i} is outside 0..${model.layers.length - 1}`,
      );
    }
  }
  // Capture inputs: the router's for MoE layers (it sees the block input), every projection's for
  // dense ones (decoderLinears names them as HF does).
  const captured = new Map<string, { linear: Linear; xs: Tensor[]; layer: number }>();
  const hook = (name: string, linear: Linear, layer: number) => {
    const entry = { linear, xs: [] as Tensor[], layer };
    linear.inputHook = (x) => entry.xs.push(x.reshape([-1, linear.inFeatures])); // [T, in]
    captured.set(name, entry);
  };
  for (const i of layers) {
    const mlp = model.layers[i].mlp;
    if (mlp instanceof SparseMoE) hook(`${i}.moe`, asDenseLinear(mlp.router, "capture MoE inputs"), i);
  }
  for (const { name, linear } of decoderLinears(model)) {
    const i = Number(name.split(".")[2]);
    if (layers.includes(i) && !model.layers[i].isMoe) hook(name, linear, i);
  }
  const selected = new Map<number, Int32Array[]>(); // MoE layer -> [T, K] per sequence
  try {
    for (const ids of sequences) {
      const out = model.forward(ids, { collectRouter: model.moeLayers.length > 0 });
      out.logits.dispose();
      out.routerLogits?.forEach((t) => t.dispose());
      for (const [k, t] of (out.selected ?? []).entries()) {
        const layer = model.moeLayers[k];
        if (layers.includes(layer)) {
          selected.set(layer, [...(selected.get(layer) ?? []), await t.toArray() as Int32Array]);
        }
        t.dispose();
      }
    }
  } finally {
    for (const { linear } of captured.values()) linear.inputHook = undefined;
  }
  const read = async (name: string): Promise<Float32Array[]> => {
    const { xs } = captured.get(name)!;
    const arrays = await Promise.all(xs.map((t) => t.toArray() as Promise<Float32Array>));
    xs.forEach((t) => t.dispose());
    return arrays;
  };

  const out: SweepWeight[] = [];
  for (const i of layers) {
    const layer = model.layers[i];
    if (layer.mlp instanceof SparseMoE) {
      const prefix = model.config.modelType === "mixtral"
        ? `model.layers.${i}.block_sparse_moe.experts`
        : `model.layers.${i}.mlp.experts`;
      const names: [string, string, string] = model.config.modelType === "mixtral"
        ? ["w1", "w3", "w2"]
        : ["gate_proj", "up_proj", "down_proj"];
      out.push(
        ...await expertWeights(
          prefix,
          names,
          layer.mlp,
          await read(`${i}.moe`),
          selected.get(i) ?? [],
          maxTokens,
        ),
      );
      continue;
    }
    for (const [name, { linear, layer: li }] of captured) {
      if (li !== i) continue;
      out.push({
        name,
        group: name.split(".").at(-1),
        data: await linear.weight.toArray() as Float32Array,
        shape: [linear.outFeatures, linear.inFeatures],
        activations: concatRows(await read(name), linear.inFeatures, maxTokens), // [≤ maxTokens, in]
      });
    }
  }
  return out;
}

/**
 * Gate, up and down (Mixtral w1, w3, w2) of every expert of one MoE layer with the inputs of the
 * tokens routed to it; HF names `<prefix>.<e>.<name>`.
 */
async function expertWeights(
  prefix: string,
  names: [gate: string, up: string, down: string],
  moe: SparseMoE,
  inputs: Float32Array[],
  selected: Int32Array[],
  maxTokens: number,
): Promise<SweepWeight[]> {
  const experts = asDenseExperts(moe.experts, "read expert weights");
  const [E, F, C] = experts.gateProj.shape;
  const K = moe.config.topK;
  const gate = await experts.gateProj.toArray() as Float32Array; // [E, F, C]
  const up = await experts.upProj.toArray() as Float32Array; // [E, F, C]
  const down = await experts.downProj.toArray() as Float32Array; // [E, C, F]
  const out: SweepWeight[] = [];
  for (let e = 0; e < E; e++) {
    const rows: Float32Array[] = [];
    inputs.forEach((x, s) => {
      const T = x.length / C;
      for (let t = 0; t < T && rows.length < maxTokens; t++) {
        for (let k = 0; k < K; k++) {
          if (selected[s][t * K + k] === e) rows.push(x.subarray(t * C, (t + 1) * C));
        }
      }
    });
    const x = concatRows(rows, C, maxTokens); // [T_e, C]
    const w1 = gate.slice(e * F * C, (e + 1) * F * C); // [F, C]
    const w3 = up.slice(e * F * C, (e + 1) * F * C); // [F, C]
    const w2 = down.slice(e * C * F, (e + 1) * C * F); // [C, F]
    const h = new Float32Array(rows.length * F); // silu(x w1ᵀ) ⊙ (x w3ᵀ): [T_e, F]
    for (let t = 0; t < rows.length; t++) {
      for (let f = 0; f < F; f++) {
        let g = 0, u = 0;
        for (let c = 0; c < C; c++) {
          g += x[t * C + c] * w1[f * C + c];
          u += x[t * C + c] * w3[f * C + c];
        }
        h[t * F + f] = (g / (1 + Math.exp(-g))) * u;
      }
    }
    out.push(
      { name: `${prefix}.${e}.${names[0]}`, group: "w1 (gate)", data: w1, shape: [F, C], activations: x },
      { name: `${prefix}.${e}.${names[1]}`, group: "w3 (up)", data: w3, shape: [F, C], activations: x },
      { name: `${prefix}.${e}.${names[2]}`, group: "w2 (down)", data: w2, shape: [C, F], activations: h },
    );
  }
  return out;
}

/** Stacks row arrays (each a multiple of `cols`) into `[≤ maxTokens, cols]`. */
function concatRows(parts: Float32Array[], cols: number, maxTokens: number): Float32Array {
  const total = Math.min(maxTokens, parts.reduce((n, p) => n + p.length / cols, 0));
  const out = new Float32Array(total * cols);
  let at = 0;
  for (const p of parts) {
    const take = Math.min(p.length, out.length - at);
    out.set(p.subarray(0, take), at);
    at += take;
    if (at >= out.length) break;
  }
  return out;
}
