/**
 * `sparseExpert`: one FloE expert (Zhou et al., ICML 2025, https://arxiv.org/abs/2505.05950,
 * Algorithm 1) on the tokens routed to it, reading only the gate and down rows of the channels the
 * up projection's magnitudes keep:
 *
 * ```
 * w_t     = Σ_k weights[t,k] · [selected[t,k] = expert]     routing weight (0: not routed here)
 * keep_tf = |v_tf| > threshold                               mode "threshold"
 *         | rank of |v_tf| in row t < k                      mode "topk" (ties: lower channel first)
 *         | |v_tf| > t_f                                     mode "channel-threshold" (A.3's channel-wise variant)
 * y_t     = w_t · Σ_{f kept} SiLU(gate_f · x_t) · v_tf · downT_f
 * ```
 *
 * `v = up(x)` is computed by the caller (the resident, quantized up projection); `gate [F, C]` and
 * `downT [F, C]` are channel-major (down transposed), so a kept channel is one contiguous row of
 * each. A weight over the device's binding limit is passed in chunks of rows (`channelOffset`): the
 * top-k rank is taken over the whole row of `v`, so the chunks' outputs add up to the unsplit result.
 * Kernel: `kernels/sparse_expert.wgsl` (a select pass over `T·Fc`, a down pass over `T·C`).
 *
 * Legend: `T` tokens, `C` hidden, `F` expert width, `K` experts per token.
 *
 * @example Two channels, keep the larger one
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { sparseExpert } from "./sparse_expert.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const y = sparseExpert({
 *   x: Tensor.fromArray(dev, [1, 0], [1, 2]), // [T=1, C=2]
 *   v: Tensor.fromArray(dev, [0.5, -3], [1, 2]), // [T, F=2]: keep channel 1
 *   gate: Tensor.fromArray(dev, [0, 0, 100, 0], [2, 2]), // [F, C]
 *   downT: Tensor.fromArray(dev, [7, 7, 1, 2], [2, 2]), // [F, C]
 *   selected: Tensor.fromArray(dev, Int32Array.of(4), [1, 1], { dtype: "i32" }), // [T, K=1]
 *   weights: Tensor.fromArray(dev, [0.5], [1, 1]), // [T, K]
 *   expert: 4,
 * }, { mode: "topk", k: 1 });
 * assert.deepEqual(Array.from(await y.toArray()), [-150, -300]); // 0.5 · SiLU(100) · (−3) · [1, 2]
 * ```
 * @module
 */
import code from "../../kernels/sparse_expert.wgsl" with { type: "text" };
import { Tensor } from "../tensor/tensor.ts";
import { siluScalar } from "./elementwise.ts";
import { hostF32 } from "./_f16.ts";
import { expectDType, gpuOf, grid1d, params, sameDevice } from "./_kernel.ts";

const WG = 64;

/** Which channels a routed token keeps. */
export type ChannelSelection =
  | { readonly mode: "threshold"; readonly threshold: number }
  | { readonly mode: "topk"; readonly k: number }
  /** One threshold per channel: `[F]` values (host) for the reference, a `[F]` f32 tensor for the op. */
  | { readonly mode: "channel-threshold"; readonly thresholds: Float32Array | Tensor };

/**
 * Channels a top-k selection keeps at sparsity `s`: `⌊(1−s)·F⌋`, robust to the binary rounding of
 * `1 − s` (e.g. `(1 − 0.9)·10` is 0.999…).
 */
export function keptChannelCount(F: number, sparsity: number): number {
  return Math.floor(Math.round((1 - sparsity) * F * 1e6) / 1e6);
}

/** The tensors of {@link sparseExpert}. */
export interface SparseExpertInput {
  /** `[T, C]` f32: the MoE input. */
  readonly x: Tensor;
  /** `[T, F]` f32: the up projection of `x`. */
  readonly v: Tensor;
  /** `[Fc, C]` f32 or f16: gate rows (HF `gate_proj` / Mixtral `w1`) of channels `channelOffset ..`. */
  readonly gate: Tensor;
  /** `[Fc, C]`, gate's dtype: down transposed (HF `down_proj`ᵀ / Mixtral `w2`ᵀ), same channels. */
  readonly downT: Tensor;
  /** First channel of `gate`/`downT` (default 0: the whole `F`). */
  readonly channelOffset?: number;
  /** Rows of `gate`/`downT` to use, from the first (default: all; a buffer partly filled). */
  readonly rows?: number;
  /** `[T, K]` i32: routed experts. */
  readonly selected: Tensor;
  /** `[T, K]` f32: routing weights. */
  readonly weights: Tensor;
  /** This expert's id. */
  readonly expert: number;
}

/** Host arrays of {@link sparseExpertRef}. */
export interface SparseExpertHost {
  x: Float32Array;
  v: Float32Array;
  gate: Float32Array;
  downT: Float32Array;
  selected: Int32Array;
  weights: Float32Array;
  expert: number;
  T: number;
  C: number;
  F: number;
  K: number;
  /** Rows of gate/downT (default `F`) and their first channel (default 0). */
  Fc?: number;
  f0?: number;
}

/** The kept channels of one row of `v` (`F` values at `row`), ascending. */
export function keptChannels(v: Float32Array, row: number, F: number, s: ChannelSelection): number[] {
  const out: number[] = [];
  if (s.mode === "threshold") {
    for (let f = 0; f < F; f++) if (Math.abs(v[row + f]) > s.threshold) out.push(f);
    return out;
  }
  if (s.mode === "channel-threshold") {
    const t = s.thresholds as Float32Array;
    for (let f = 0; f < F; f++) if (Math.abs(v[row + f]) > t[f]) out.push(f);
    return out;
  }
  const order = Array.from({ length: F }, (_, f) => f);
  order.sort((a, b) => Math.abs(v[row + b]) - Math.abs(v[row + a]) || a - b);
  return order.slice(0, s.k).sort((a, b) => a - b);
}

/** The reference: float64 sums on the host; writes `y [T, C]`. */
export function sparseExpertRef(h: SparseExpertHost, s: ChannelSelection, y: Float32Array): void {
  const { x, v, gate, downT, selected, weights, expert, T, C, F, K, Fc = F, f0 = 0 } = h;
  y.fill(0);
  for (let t = 0; t < T; t++) {
    let routed = false;
    let w = 0;
    for (let k = 0; k < K; k++) {
      if (selected[t * K + k] === expert) {
        routed = true;
        w += weights[t * K + k];
      }
    }
    if (!routed) continue;
    const acc = new Float64Array(C);
    for (const f of keptChannels(v, t * F, F, s)) {
      if (f < f0 || f >= f0 + Fc) continue;
      const r = f - f0;
      let dot = 0;
      for (let c = 0; c < C; c++) dot += gate[r * C + c] * x[t * C + c];
      const a = w * siluScalar(dot) * v[t * F + f];
      for (let c = 0; c < C; c++) acc[c] += a * downT[r * C + c];
    }
    for (let c = 0; c < C; c++) y[t * C + c] = acc[c];
  }
}

/**
 * Runs one expert sparsely on the tokens routed to it (see the module doc).
 *
 * @returns `[T, C]` f32: `w_t · expert(x_t)`, zero rows for tokens not routed to `expert`
 * @throws {TypeError} on wrong dtypes or shapes (the message names them)
 * @throws {RangeError} on a top-k `k` outside `0..F` or a negative or non-finite threshold
 */
export function sparseExpert(input: SparseExpertInput, selection: ChannelSelection): Tensor<"f32"> {
  const op = "sparseExpert";
  const { x, v, gate, downT, selected, weights, expert, channelOffset: f0 = 0, rows } = input;
  const device = sameDevice(op, x, v, gate, downT, selected, weights);
  for (const [n, t] of [["x", x], ["v", v], ["weights", weights]] as const) expectDType(op, n, t, "f32");
  expectDType(op, "gate", gate, "f32", "f16");
  expectDType(op, "downT", downT, gate.dtype);
  expectDType(op, "selected", selected, "i32");
  const [T, C] = x.shape;
  const F = v.shape[1];
  const Fc = rows ?? gate.shape[0];
  const K = selected.shape[1];
  const ok = x.rank === 2 && v.rank === 2 && v.shape[0] === T && gate.rank === 2 && Number.isInteger(f0) &&
    f0 >= 0 && f0 + Fc <= F && Number.isInteger(Fc) && Fc >= 0 && Fc <= gate.shape[0] &&
    gate.shape[1] === C && downT.rank === 2 && downT.shape[0] === gate.shape[0] &&
    downT.shape[1] === C &&
    selected.rank === 2 && selected.shape[0] === T && weights.rank === 2 && weights.shape[0] === T &&
    weights.shape[1] === K;
  if (!ok) {
    throw new TypeError(
      `Cannot run ${op}: expected x [T, C], v [T, F], gate and downT [Fc, C] of channels channelOffset .. ` +
        `channelOffset + Fc − 1 ≤ F − 1 (Fc: rows, at most their first extent), selected and weights [T, K]: ` +
        `channelOffset ${f0}, rows ${rows ?? "all"}, ` +
        `received x [${x.shape}], v [${v.shape}], gate [${gate.shape}], downT [${downT.shape}], ` +
        `selected [${selected.shape}], weights [${weights.shape}]`,
    );
  }
  if (selection.mode === "topk" && !(Number.isInteger(selection.k) && selection.k >= 0 && selection.k <= F)) {
    throw new RangeError(
      `Cannot run ${op}: top-k k must be an integer in 0..${F} (F): received ${selection.k}`,
    );
  }
  if (selection.mode === "threshold" && !(selection.threshold >= 0 && Number.isFinite(selection.threshold))) {
    throw new RangeError(
      `Cannot run ${op}: the threshold must be a finite number ≥ 0: received ${selection.threshold}`,
    );
  }
  const thr = selection.mode === "channel-threshold" ? selection.thresholds : undefined;
  if (
    thr !== undefined &&
    !(thr instanceof Tensor && thr.dtype === "f32" && thr.size === F && thr.device === device)
  ) {
    throw new TypeError(
      `Cannot run ${op}: channel thresholds must be an f32 tensor of F = ${F} values on the op's device`,
    );
  }
  const y = Tensor.empty(device, [T, C]);
  if (y.size === 0) return y;
  if (device.kind === "cpu") {
    sparseExpertRef(
      {
        x: x.host() as Float32Array,
        v: v.host() as Float32Array,
        gate: hostF32(gate), // f16 rows widened exactly
        downT: hostF32(downT),
        selected: selected.host() as Int32Array,
        weights: weights.host() as Float32Array,
        expert,
        T,
        C,
        F,
        K,
        Fc,
        f0,
      },
      thr ? { mode: "channel-threshold", thresholds: (thr as Tensor).host() as Float32Array } : selection,
      y.host(),
    );
    return y;
  }
  if (Fc === 0 || K === 0) return y; // device memory starts zeroed
  const a = Tensor.empty(device, [T, Fc]); // [T, Fc] scratch
  const p = params(
    ["u32", T],
    ["u32", C],
    ["u32", F],
    ["u32", K],
    ["i32", expert],
    ["u32", selection.mode === "threshold" ? 0 : selection.mode === "topk" ? 1 : 2],
    ["u32", selection.mode === "topk" ? selection.k : 0],
    ["f32", selection.mode === "threshold" ? selection.threshold : 0],
    ["u32", Fc],
    ["u32", f0],
  );
  const gpu = gpuOf(device);
  gpu.dispatch({ name: "sparse_expert", code, entryPoint: "select" }, {
    bindings: [
      x.storage,
      v.storage,
      gate.storage,
      selected.storage,
      weights.storage,
      a.storage,
      ((thr as Tensor | undefined) ?? v).storage,
    ],
    params: p,
    workgroups: grid1d(Math.ceil((T * Fc) / WG)),
    constants: { WG, F16: gate.dtype === "f16" ? 1 : 0 },
  });
  gpu.dispatch({ name: "sparse_expert", code, entryPoint: "down" }, {
    bindings: [a.storage, downT.storage, y.storage],
    params: p,
    workgroups: grid1d(Math.ceil((T * C) / WG)),
    constants: { WG, F16: gate.dtype === "f16" ? 1 : 0 },
  });
  a.dispose(); // destroyed after the pending submit
  return y;
}
