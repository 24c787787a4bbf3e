/**
 * The mask-signal study of FloE (Zhou et al., ICML 2025, https://arxiv.org/abs/2505.05950;
 * ALGORITHMS.md A.2): which activation should pick the `⌊(1−s)·F⌋` channels an expert keeps per token?
 *
 * - `"down-input"`: `|SiLU(gate·x) ⊙ up·x|`, the input of the down projection — the optimum for the
 *   expert's output (it drops the smallest terms of `W_down a`), but needs gate and up for every
 *   channel, so nothing is saved;
 * - `"up"`: `|up·x|` — FloE's choice: the up projection is resident, so the mask is known before any
 *   gate/down byte moves;
 * - `"gate"`: `|SiLU(gate·x)|` — CATS-style.
 *
 * {@link MaskSignalExperts} computes a layer's experts with the chosen signal, exactly (f32 weights,
 * float64 sums) on the host: a quality study on the CPU device, not a runtime path.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "../models/load.ts";
 * import { useMaskSignal } from "./mask_study.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/mixtral-top2-f32", { device });
 * const ids = [1, 5, 9];
 * const dense = await model.forward(ids).logits.toArray();
 * const restore = await useMaskSignal(model, "gate", 0, [0]); // s = 0: every channel, the dense model
 * const same = await model.forward(ids).logits.toArray();
 * restore();
 * assert.ok(dense.every((v, i) => Math.abs(v - same[i]) < 1e-4));
 * ```
 * @module
 */
import { MetricLog } from "../metrics/metric_log.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import { perplexity } from "../models/perplexity.ts";
import { asDenseExperts } from "../nn/experts.ts";
import type { NamedParameters } from "../nn/module.ts";
import type { Experts, ExpertsInput } from "../nn/moe_types.ts";
import type { SparseMoE } from "../nn/sparse_moe.ts";
import { siluScalar } from "../ops/elementwise.ts";
import { Tensor } from "../tensor/tensor.ts";
import { keptChannelCount } from "../ops/sparse_expert.ts";

/** Which activation ranks the channels. */
export type MaskSignal = "down-input" | "up" | "gate";

/** Host computation of one layer's experts with top-k channels by `signal`. Owns host copies only. */
export class MaskSignalExperts implements Experts {
  readonly numExperts: number;
  readonly hidden: number;
  readonly intermediate: number;
  readonly #gate: Float32Array; // [E, F, C]
  readonly #up: Float32Array; // [E, F, C]
  readonly #down: Float32Array; // [E, C, F]
  readonly #signal: MaskSignal;
  readonly #k: number;

  constructor(
    weights: { gate: Float32Array; up: Float32Array; down: Float32Array; E: number; F: number; C: number },
    signal: MaskSignal,
    sparsity: number,
  ) {
    this.numExperts = weights.E;
    this.intermediate = weights.F;
    this.hidden = weights.C;
    this.#gate = weights.gate;
    this.#up = weights.up;
    this.#down = weights.down;
    this.#signal = signal;
    this.#k = keptChannelCount(weights.F, sparsity);
  }

  /** @throws {TypeError} on a device other than the CPU */
  forward(input: ExpertsInput): Tensor<"f32"> {
    const { x, selected, weights } = input;
    if (x.device.kind !== "cpu") {
      throw new TypeError(
        "Cannot run the mask-signal study on WebGPU: it runs on the CPU device (host arrays)",
      );
    }
    const [T, K] = selected.shape;
    const { hidden: C, intermediate: F } = this;
    const xs = x.host() as Float32Array;
    const sel = selected.host() as Int32Array;
    const ws = weights.host() as Float32Array;
    const y = new Float32Array(T * C);
    const a = new Float64Array(F);
    const s = new Float64Array(F);
    const order = Array.from({ length: F }, (_, f) => f);
    for (let t = 0; t < T; t++) {
      const acc = new Float64Array(C);
      for (let j = 0; j < K; j++) {
        const e = sel[t * K + j];
        const w = ws[t * K + j];
        for (let f = 0; f < F; f++) {
          let g = 0;
          let u = 0;
          const base = (e * F + f) * C;
          for (let c = 0; c < C; c++) {
            g += this.#gate[base + c] * xs[t * C + c];
            u += this.#up[base + c] * xs[t * C + c];
          }
          const sg = siluScalar(g);
          a[f] = sg * u;
          s[f] = Math.abs(this.#signal === "up" ? u : this.#signal === "gate" ? sg : sg * u);
        }
        order.sort((p, q) => s[q] - s[p] || p - q);
        for (let i = 0; i < this.#k; i++) {
          const f = order[i];
          for (let c = 0; c < C; c++) acc[c] += w * a[f] * this.#down[(e * C + c) * F + f];
        }
      }
      for (let c = 0; c < C; c++) y[t * C + c] = acc[c];
    }
    return Tensor.fromArray(x.device, y, [T, C]) as Tensor<"f32">;
  }

  parameters(): NamedParameters {
    return new Map();
  }

  dispose(): void {}
}

/**
 * Swaps every MoE layer of `model` except `denseLayers` to {@link MaskSignalExperts} at `sparsity`;
 * returns a function that puts the dense experts back.
 */
export async function useMaskSignal(
  model: CausalLM,
  signal: MaskSignal,
  sparsity: number,
  denseLayers: readonly number[] = [model.moeLayers[0]],
): Promise<() => void> {
  const swapped: [SparseMoE, Experts][] = [];
  for (const l of model.moeLayers) {
    if (denseLayers.includes(l)) continue;
    const moe = model.layers[l].mlp as SparseMoE;
    const d = asDenseExperts(moe.experts, "run the mask-signal study");
    const [E, F, C] = d.gateProj.shape;
    const study = new MaskSignalExperts(
      {
        gate: await d.gateProj.toArray() as Float32Array,
        up: await d.upProj.toArray() as Float32Array,
        down: await d.downProj.toArray() as Float32Array,
        E,
        F,
        C,
      },
      signal,
      sparsity,
    );
    swapped.push([moe, moe.replaceExperts(study)]);
  }
  return () => {
    for (const [moe, prev] of swapped) moe.replaceExperts(prev);
  };
}

/** Options of {@link maskSignalTable}. */
export interface MaskSignalTableOptions {
  /** Evaluation ids, scored in disjoint windows of `blockSize`. */
  evaluation: Int32Array;
  blockSize: number;
  /** Default `[0.5, 0.7, 0.9]`. */
  sparsities?: readonly number[];
  /** MoE layers kept dense (default: the first MoE layer). */
  denseLayers?: readonly number[];
  runId?: string;
}

/**
 * Perplexity of `model` (dense experts, CPU device) with every signal at each sparsity, and its change
 * against the dense model: rows `signal`, `sparsity`, `perplexity`, `delta_pct`.
 */
export async function maskSignalTable(model: CausalLM, options: MaskSignalTableOptions): Promise<MetricLog> {
  const { evaluation, blockSize, sparsities = [0.5, 0.7, 0.9], denseLayers, runId } = options;
  const log = new MetricLog({ runId, config: { sparsities, denseLayers } });
  const ppl = async () => (await perplexity(model, evaluation, { blockSize })).perplexity;
  const base = await ppl();
  log.log({ signal: "dense", sparsity: 0, perplexity: base, delta_pct: 0 });
  for (const s of sparsities) {
    for (const signal of ["down-input", "up", "gate"] as const) {
      const restore = await useMaskSignal(model, signal, s, denseLayers);
      try {
        const p = await ppl();
        log.log({ signal, sparsity: s, perplexity: p, delta_pct: 100 * (p / base - 1) });
      } finally {
        restore();
      }
    }
  }
  return log;
}
