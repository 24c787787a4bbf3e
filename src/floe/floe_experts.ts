/**
 * `FloeExperts`: one MoE layer's experts computed as FloE computes them (Zhou et al., ICML 2025,
 * https://arxiv.org/abs/2505.05950; ALGORITHMS.md A.2, A.3): per expert, the up projection `v = up(x)`
 * (HQQ-packed, or exact at 16 bits) runs on every token, and the channels it keeps — `|v| > t[l][e]`
 * (threshold) or the `⌊(1−s)·F⌋` largest `|v|` (topk) — are the only gate and down rows
 * `sparseExpert` reads for the tokens routed to that expert:
 * `y = W_downᵀ[mask]ᵀ (SiLU(W_gate[mask] x) ⊙ v[mask])`.
 *
 * An {@link Experts} implementation: `floeCompress` swaps it into a model's `SparseMoE` blocks. The
 * up projections are resident (ledger category `"experts"`); the channel-major gate and transposed
 * down rows are a device copy of the model's {@link HostExperts} (category `"cache"`) that the quality path
 * reads in place of streaming them. Prefill (more than one token) runs sparse or dense (all `F`
 * channels, as FloE's runtime does), by option. The selection can be changed between forwards
 * ({@link FloeExperts.configure}), so a sparsity sweep needs no re-quantisation.
 *
 * Legend: `T` tokens, `C` hidden, `E` experts, `F` expert width.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "../models/load.ts";
 * import type { SparseMoE } from "../nn/sparse_moe.ts";
 * import { floeCompress } from "./compress.ts";
 * import { FloeExperts } from "./floe_experts.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await floeCompress(await loadModel("test/fixtures/models/mixtral-top2-f32", { device }),
 *   { upBits: 4, groupSize: 16, sparsity: 0.5, mode: "topk", denseLayers: [0] });
 * const experts = (model.layers[1].mlp as SparseMoE).experts as FloeExperts;
 * assert.ok(experts instanceof FloeExperts && experts.keptChannels() === experts.intermediate / 2);
 * ```
 * @module
 */
import type { Device } from "../device/device.ts";
import type { LinearLike } from "../nn/linear_like.ts";
import type { NamedParameters } from "../nn/module.ts";
import type { Experts, ExpertsInput } from "../nn/moe_types.ts";
import { add } from "../ops/elementwise.ts";
import { type ChannelSelection, keptChannelCount, sparseExpert } from "../ops/sparse_expert.ts";
import { Tensor } from "../tensor/tensor.ts";
import type { HostExperts } from "../moe/host_experts.ts";

/** How a FloE layer picks its channels. */
export interface FloeSelection {
  /** `"threshold"`: `|v| > t[e]`; `"topk"`: the `⌊(1−s)·F⌋` largest `|v|`. */
  readonly mode: "threshold" | "topk";
  /** Target sparsity `s` in `[0, 1)`: the fraction of channels dropped (topk). */
  readonly sparsity: number;
  /** Threshold mode: one `t` per expert (`E` values, ≥ 0). */
  readonly thresholds?: Float32Array;
  /**
   * Threshold mode, channel-wise variant (A.3, `calibrateChannelThresholds`): per expert, one `t_f` per
   * channel (`F` values, ≥ 0); used instead of `thresholds` when given.
   */
  readonly channelThresholds?: readonly Float32Array[];
  /** `"sparse"` (default): every forward is sparse; `"dense"`: a forward of more than one token uses all channels. */
  readonly prefill?: "sparse" | "dense";
}

/** The weights of one FloE layer; ownership passes to {@link FloeExperts}. */
export interface FloeLayerWeights {
  /** Per expert, the up projection `[F, C]` (a `QuantizedLinear`, or a dense `Linear` at 16 bits). */
  readonly up: LinearLike[];
  /**
   * Per expert, `[F, C]` f32 gate rows: one tensor, or consecutive chunks of rows (`[F_1, C]`,
   * `[F_2, C]`, … with `Σ F_i = F`) when one would exceed the device's binding limit.
   */
  readonly gate: Tensor[][];
  /** Per expert, `[F, C]` f32 down rows (HF `down_proj` transposed), chunked as `gate`. */
  readonly downT: Tensor[][];
}

/** FloE's experts of one MoE layer. Owns its tensors. */
export class FloeExperts implements Experts {
  /** The decoder layer this block serves. */
  readonly layer: number;
  readonly numExperts: number;
  readonly hidden: number;
  readonly intermediate: number;
  /** The host copy of the streamed matrices (shared by every layer of a model), when known. */
  readonly store: HostExperts | undefined;
  readonly #w: FloeLayerWeights;
  readonly #device: Device;
  #selection: FloeSelection;
  /** Device copies of `channelThresholds` (`[F]` per expert). */
  #channelT: Tensor[] = [];

  /**
   * @throws {TypeError} when the per-expert weights disagree in count or shape
   * @throws {RangeError} on a bad selection (see {@link FloeExperts.configure})
   */
  constructor(layer: number, weights: FloeLayerWeights, selection: FloeSelection, store?: HostExperts) {
    const E = weights.up.length;
    const [F, C] = E > 0 ? weights.up[0].weightShape : [0, 0];
    const fits = (g: Tensor[], d: Tensor[]) =>
      g.length === d.length && g.every((t, i) =>
        t.dtype === "f32" && t.rank === 2 && t.shape[1] === C && d[i].dtype === "f32" &&
        d[i].shape.join() === t.shape.join()
      ) && g.reduce((n, t) =>
          n + t.shape[0], 0) === F;
    if (
      E === 0 || weights.gate.length !== E || weights.downT.length !== E ||
      weights.up.some((u) => u.weightShape[0] !== F || u.weightShape[1] !== C) ||
      !weights.gate.every((g, e) => fits(g, weights.downT[e]))
    ) {
      throw new TypeError(
        `Cannot create FloeExperts for layer ${layer}: expected E ≥ 1 experts, each with up, gate and downT of ` +
          `[F, C] = [${F}, ${C}] (f32; gate and downT in matching row chunks): received ${weights.up.length} up, ` +
          `${weights.gate.length} gate, ` +
          `${weights.downT.length} downT`,
      );
    }
    this.layer = layer;
    this.numExperts = E;
    this.hidden = C;
    this.intermediate = F;
    this.store = store;
    this.#w = weights;
    this.#device = weights.gate[0][0].device;
    this.#selection = this.#check(selection);
  }

  /** The current selection. */
  get selection(): FloeSelection {
    return this.#selection;
  }

  /** The per-expert up projections (resident). */
  get up(): readonly LinearLike[] {
    return this.#w.up;
  }

  /**
   * Changes how channels are picked from the next forward on.
   *
   * @throws {RangeError} on a sparsity outside `[0, 1)`, or threshold mode without `E` finite thresholds ≥ 0
   */
  configure(selection: FloeSelection): void {
    this.#selection = this.#check(selection);
  }

  /** Expert `e`'s selection as host values (what `keptChannels` takes; channel thresholds as arrays). */
  hostSelection(e: number): ChannelSelection {
    const s = this.#selection;
    if (s.mode === "topk") return { mode: "topk", k: this.keptChannels() };
    if (s.channelThresholds) return { mode: "channel-threshold", thresholds: s.channelThresholds[e] };
    return { mode: "threshold", threshold: s.thresholds![e] };
  }

  /** Channels kept per routed token in topk mode, `⌊(1−s)·F⌋`. */
  keptChannels(): number {
    return keptChannelCount(this.intermediate, this.#selection.sparsity);
  }

  /** `[T, C]`: `Σ_k w[t,k] · sparse expert_{selected[t,k]}(x_t)`. */
  forward(input: ExpertsInput): Tensor<"f32"> {
    const { x, selected, weights } = input;
    const T = x.shape[0];
    const s = this.#selection;
    const dense = T > 1 && s.prefill === "dense";
    let y: Tensor<"f32"> | undefined;
    for (let e = 0; e < this.numExperts; e++) {
      const host = this.hostSelection(e);
      const sel: ChannelSelection = dense
        ? { mode: "topk", k: this.intermediate }
        : host.mode === "channel-threshold"
        ? { mode: "channel-threshold", thresholds: this.#channelT[e] }
        : host;
      using v = this.#w.up[e].forward(x); // [T, C] -> [T, F]
      let f0 = 0;
      this.#w.gate[e].forEach((gate, i) => {
        const ye = sparseExpert({
          x,
          v,
          gate,
          downT: this.#w.downT[e][i],
          selected,
          weights,
          expert: e,
          channelOffset: f0,
        }, sel); // [T, C]
        f0 += gate.shape[0];
        if (y === undefined) {
          y = ye;
        } else {
          using prev = y;
          using _ye = ye;
          y = add(prev, ye); // [T, C]
        }
      });
    }
    return y!;
  }

  /** `experts.{e}.up_proj.*`, `experts.{e}.gate_rows`, `experts.{e}.down_rows_t`. */
  parameters(): NamedParameters {
    const p: NamedParameters = new Map();
    for (let e = 0; e < this.numExperts; e++) {
      for (const [n, t] of this.#w.up[e].parameters()) p.set(`${e}.up_proj.${n}`, t);
      this.#w.gate[e].forEach((t, i) => p.set(`${e}.gate_rows.${i}`, t));
      this.#w.downT[e].forEach((t, i) => p.set(`${e}.down_rows_t.${i}`, t));
    }
    return p;
  }

  dispose(): void {
    for (const u of this.#w.up) u.dispose();
    for (const t of [...this.#w.gate.flat(), ...this.#w.downT.flat(), ...this.#channelT]) t.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #check(s: FloeSelection): FloeSelection {
    const what = `Cannot configure FloE layer ${this.layer}`;
    if (!(s.sparsity >= 0 && s.sparsity < 1)) {
      throw new RangeError(`${what}: sparsity must be in [0, 1): received ${s.sparsity}`);
    }
    const ok = (v: number) => Number.isFinite(v) && v >= 0;
    const ct = s.channelThresholds;
    if (s.mode === "threshold" && ct) {
      if (ct.length !== this.numExperts || !ct.every((t) => t.length === this.intermediate && t.every(ok))) {
        throw new RangeError(
          `${what}: channel thresholds must be ${this.numExperts} arrays (one per expert) of ` +
            `${this.intermediate} finite values ≥ 0; calibrate them with calibrateChannelThresholds`,
        );
      }
    } else if (s.mode === "threshold") {
      const t = s.thresholds;
      if (!t || t.length !== this.numExperts || !t.every(ok)) {
        throw new RangeError(
          `${what}: threshold mode needs ${this.numExperts} finite thresholds ≥ 0 (one per expert): ` +
            `received ${
              t ? `[${Array.from(t).join(", ")}]` : "none"
            }; calibrate them with calibrateThresholds`,
        );
      }
    }
    for (const t of this.#channelT) t.dispose();
    this.#channelT = s.mode === "threshold" && ct
      ? ct.map((t) => Tensor.fromArray(this.#device, t, [this.intermediate], { category: "experts" }))
      : [];
    return { ...s, prefill: s.prefill ?? "sparse" };
  }
}

/**
 * `[F, C]` f32 host rows as device tensors (ledger category `"cache"`) of at most `chunkRows` rows
 * each: `[F_1, C]`, `[F_2, C]`, … in channel order.
 */
export function rowChunks(
  device: Device,
  rows: Float32Array,
  F: number,
  C: number,
  chunkRows: number,
): Tensor[] {
  const out: Tensor[] = [];
  for (let f0 = 0; f0 < F; f0 += chunkRows) {
    const n = Math.min(chunkRows, F - f0);
    out.push(Tensor.fromArray(device, rows.subarray(f0 * C, (f0 + n) * C), [n, C], { category: "cache" }));
  }
  return out;
}
