/**
 * FloE's channel-wise threshold variant (ALGORITHMS.md A.3, the authors' `use_average` /
 * `*_thresholds_2`, used in their dense-LLaMA experiments): channel `c` of expert `e` in layer `l`
 * matters by `up_c² · E[SiLU(gate_c)²]` (the expectation over the tokens the router sends to `e`).
 * `T` is the `k`-th smallest (1-based, `k = ⌊N·F·s⌋`) of that importance pooled over the routed tokens
 * and channels, and the per-channel threshold on `|up_c|` is `t_c = sqrt(T / E[SiLU(gate_c)²])`, so
 * `|up_c| > t_c` ⟺ importance > `T`. Rounds average `t_c` over the rounds in which `e` got tokens;
 * an expert without tokens gets 0. Use the result as `FloeSelection.channelThresholds`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "../models/load.ts";
 * import { calibrateChannelThresholds } from "./calibrate_channel.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/mixtral-top2-f32", { device });
 * const t = await calibrateChannelThresholds(model, [Int32Array.of(1, 5, 9, 4, 7, 3)], { sparsity: 0.8 });
 * assert.equal(t.at(1, 0).length, 48); // F thresholds per expert
 * ```
 * @module
 */
import type { CausalLM } from "../models/causal_lm.ts";
import { SwiGLUExperts } from "../nn/experts.ts";
import type { SparseMoE } from "../nn/sparse_moe.ts";
import { siluScalar } from "../ops/elementwise.ts";
import { kthSmallestAbs, quantileRank } from "./calibrate.ts";
import { FloeExperts } from "./floe_experts.ts";
import { recordRoutedUp } from "./record.ts";

/** Largest finite f32: the threshold of a channel whose gate is exactly 0 on every routed token. */
const F32_MAX = 3.4028234663852886e38;

/** `t[l][e][c]` for every decoder layer, expert and channel. */
export class ChannelThresholds {
  /** `[L, E, F]` row-major (rows of layers that are not MoE are 0). */
  readonly values: Float32Array;
  readonly layers: number;
  readonly experts: number;
  readonly intermediate: number;
  readonly sparsity: number;

  constructor(values: Float32Array, layers: number, experts: number, intermediate: number, sparsity: number) {
    if (values.length !== layers * experts * intermediate) {
      throw new RangeError(
        `Cannot create ChannelThresholds: expected ${layers}·${experts}·${intermediate} values: received ${values.length}`,
      );
    }
    this.values = values;
    this.layers = layers;
    this.experts = experts;
    this.intermediate = intermediate;
    this.sparsity = sparsity;
  }

  /** `[F]`: expert `e` of layer `l` (a view). */
  at(layer: number, expert: number): Float32Array {
    const F = this.intermediate;
    const o = (layer * this.experts + expert) * F;
    return this.values.subarray(o, o + F);
  }

  /** Layer `l`'s thresholds as `FloeSelection.channelThresholds` (copies). */
  layer(layer: number): Float32Array[] {
    return Array.from({ length: this.experts }, (_, e) => this.at(layer, e).slice());
  }
}

/** The `[F, C]` gate rows of expert `e` of layer `l`, as the layer computes with them. */
async function gateRows(model: CausalLM, l: number, e: number): Promise<Float32Array> {
  const ex = (model.layers[l].mlp as SparseMoE).experts;
  if (ex instanceof FloeExperts && ex.store) return ex.store.matrix(l, e, "gate");
  if (ex instanceof SwiGLUExperts) {
    const [, F, C] = ex.gateProj.shape;
    const all = await ex.gateProj.toArray() as Float32Array;
    return all.slice(e * F * C, (e + 1) * F * C);
  }
  throw new TypeError(`Cannot calibrate channel thresholds: layer ${l}'s experts expose no gate rows`);
}

/**
 * Calibrates per-channel thresholds (see the module doc); FloE layers run dense with their resident
 * up, as in `calibrateThresholds`.
 *
 * @throws {RangeError} on a sparsity outside `[0, 1)` or rounds outside `1..sequences`
 */
export async function calibrateChannelThresholds(
  model: CausalLM,
  sequences: readonly Int32Array[],
  options: { sparsity: number; rounds?: number },
): Promise<ChannelThresholds> {
  const { sparsity: s, rounds = 1 } = options;
  if (!(s >= 0 && s < 1)) {
    throw new RangeError(`Cannot calibrate channel thresholds: sparsity must be in [0, 1): received ${s}`);
  }
  if (sequences.length === 0 || !(Number.isInteger(rounds) && rounds >= 1 && rounds <= sequences.length)) {
    throw new RangeError(
      `Cannot calibrate channel thresholds: need at least one sequence per round: received ${sequences.length} ` +
        `sequences for ${rounds} rounds`,
    );
  }
  const { layers: L, numExperts: E, hidden: C } = model.config;
  const first = (model.layers[model.moeLayers[0]].mlp as SparseMoE).experts;
  const F = first.intermediate;
  const sum = new Float64Array(L * E * F);
  const count = new Int32Array(L * E);
  const gates = new Map<string, Float32Array>();
  const per = Math.ceil(sequences.length / rounds);
  const saved = new Map<FloeExperts, FloeExperts["selection"]>();
  for (const l of model.moeLayers) {
    const ex = (model.layers[l].mlp as SparseMoE).experts;
    if (ex instanceof FloeExperts) {
      saved.set(ex, ex.selection);
      ex.configure({ mode: "topk", sparsity: 0 });
    }
  }
  try {
    for (let r = 0; r < rounds; r++) {
      const pooled = new Map<string, { v: Float32Array[]; x: Float32Array[] }>();
      for (const ids of sequences.slice(r * per, (r + 1) * per)) {
        for (const [l, experts] of await recordRoutedUp(model, ids)) {
          experts.forEach((rec, e) => {
            const p = pooled.get(`${l}:${e}`) ?? { v: [], x: [] };
            p.v.push(rec.v);
            p.x.push(rec.x);
            pooled.set(`${l}:${e}`, p);
          });
        }
      }
      for (const [key, p] of pooled) {
        const [l, e] = key.split(":").map(Number);
        const N = p.v.reduce((a, v) => a + v.length, 0) / F;
        if (N === 0) continue;
        if (!gates.has(key)) gates.set(key, await gateRows(model, l, e));
        const gate = gates.get(key)!; // [F, C]
        const v = concat(p.v); // [N, F]
        const x = concat(p.x); // [N, C]
        const g2 = new Float64Array(F); // E[SiLU(gate_c)²]
        for (let t = 0; t < N; t++) {
          for (let f = 0; f < F; f++) {
            let d = 0;
            for (let c = 0; c < C; c++) d += gate[f * C + c] * x[t * C + c];
            g2[f] += siluScalar(d) ** 2 / N;
          }
        }
        const importance = Float32Array.from(v, (u, i) => u * u * g2[i % F]); // [N, F]
        const T = kthSmallestAbs(importance, quantileRank(N * F, s));
        const o = (l * E + e) * F;
        for (let f = 0; f < F; f++) {
          sum[o + f] += g2[f] > 0 ? Math.min(Math.sqrt(T / g2[f]), F32_MAX) : F32_MAX;
        }
        count[l * E + e]++;
      }
    }
  } finally {
    for (const [ex, sel] of saved) ex.configure(sel);
  }
  const values = Float32Array.from(sum, (v, i) => {
    const n = count[Math.floor(i / F)];
    return n > 0 ? Math.min(v / n, F32_MAX) : 0;
  });
  return new ChannelThresholds(values, L, E, F, s);
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
