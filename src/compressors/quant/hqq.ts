/**
 * HQQ (Half-Quadratic Quantization, Badri & Shaji 2023, https://mobiusml.github.io/hqq_blog/):
 * min/max scale, then the zero-point refined by half-quadratic splitting on `‖W − Ŵ(z)‖_p^p`
 * (p = 0.7), following `hqq/core/optimize.py` `optimize_weights_proximal_legacy`:
 *
 * ```
 * per group:  s = min((2^b − 1)/(max − min), 2e4),  z = −min·s  (rounded at 4 bits)
 * repeat:     q = clamp(round(W·s + z), 0, 2^b − 1);  W_r = (q − z)/s
 *             W_e = shrink_p(W − W_r; β) = sign·max(|·| − |·|^(p−1)/β, 0)
 *             z ← mean over the group of (q − (W − W_e)·s);  β ← κ·β
 * stop:       after `iterations` updates, or (earlyStop) as soon as mean |W − W_r| over the whole
 *             tensor does not improve on the best so far.
 * ```
 *
 * Differences from the legacy solver, all deliberate:
 * - **Best z kept.** Legacy returns the zero of the update made in the iteration that failed to
 *   improve (and, when every iteration improves, the last update, never evaluated). We evaluate
 *   `z_0 … z_iterations` and keep the one with the lowest mean |W − W_r|, so HQQ never ends worse
 *   than its own starting point (hqq's `optimize_weights_proximal_v2` also restores the best).
 *   `earlyStop: false` evaluates every iterate and still keeps the best.
 * - **Zero within ±1024.** `s` is also capped at `1024/max|w|` (as RTN's step floor, see `rtn.ts`);
 *   this never binds on a group that straddles zero and keeps f16 zero-points finite elsewhere.
 * - **Stored metadata** is f16: `step = f16(1/s)`, `zero = f16(z)`, and the codes are recomputed from
 *   those stored values, `q = clamp(round(W/step + zero))`, so dequantisation matches the codes.
 * - Numerics are float32 as hqq on the CPU; the global mean error sums each group in f32 and the
 *   groups in float64, and an iterate must improve it by more than 1e-6 (relative) to count as
 *   better ({@link HQQ_MIN_IMPROVEMENT}; legacy compares with a bare `<`, which lets f32 noise in the
 *   converged tail decide the stop).
 *
 * `info.iterations` is the number of updates behind the kept zero-point (0: the min/max start was
 * best); `info.meanAbsError` its mean |W − W_r| (f32 scale and zero, before the f16 rounding).
 *
 * On WebGPU, `kernels/hqq.wgsl` runs every iteration in one dispatch, the stop is chosen on the host
 * from one readback of per-iteration error sums, and a second dispatch re-runs up to the kept
 * iterate and writes the metadata (see the kernel header for why this is exact and cheap).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hqqRef } from "./hqq.ts";
 * import { randn } from "../../tensor/random.ts";
 * const w = randn(8 * 32, 1, 0.05); // [8, 32]
 * const r = hqqRef(w, { shape: [8, 32], bits: 2, groupSize: 16, axis: 1 });
 * assert.ok(r.scale.length === 16 && r.info.meanAbsError <= r.errors[0]); // never worse than its start
 * ```
 * @module
 */
import { z } from "zod";
import kernel from "../../../kernels/hqq.wgsl" with { type: "text" };
import { groupSpan } from "../../ops/dequantize_ref.ts";
import { dispatchKernel, F16_WGSL, grid1d, params } from "../../ops/kernel.ts";
import type { QuantizedTensor } from "../../tensor/quantized_tensor.ts";
import { Tensor } from "../../tensor/tensor.ts";
import {
  AFFINE_WG,
  affineBase,
  affineCodesRef,
  affineFromHost,
  type AffineLayout,
  type AffineMeta,
  affinePackGpu,
  groupStart,
  roundHalfEven,
} from "./rtn.ts";
import { registerQuantizer } from "./quantizer.ts";

/** hqq.wgsl with the shared f16 bit conversions. */
const code = F16_WGSL + kernel;

/** HQQ solver settings (hqq's `opt_params` plus the early stop switch). */
export interface HqqOptions {
  /** Maximum zero-point updates (hqq `iters`). */
  readonly iterations: number;
  /** p of the lp objective, in (0, 1] (hqq `lp_norm`). */
  readonly lpNorm: number;
  /** Initial half-quadratic penalty β (hqq `beta`). */
  readonly beta: number;
  /** Growth of β per iteration, > 1 (hqq `kappa`). */
  readonly kappa: number;
  /** Stop at the first iteration that does not improve the mean |W − Ŵ|. */
  readonly earlyStop: boolean;
}

/** hqq's defaults: 20 iterations, p = 0.7, β = 10, κ = 1.01, early stop on. */
export const HQQ_DEFAULTS: HqqOptions = Object.freeze({
  iterations: 20,
  lpNorm: 0.7,
  beta: 10,
  kappa: 1.01,
  earlyStop: true,
});

/** What HQQ records about its solve. */
export interface HqqInfo {
  readonly iterations: number;
  readonly meanAbsError: number;
}

/** Host result of {@link hqqRef}: stored (f16-rounded) metadata, packed codes and the solve info. */
export interface HqqResult extends AffineMeta {
  codes: Uint32Array;
  info: HqqInfo;
  /** Mean |W − W_r| of each evaluated iterate `z_0, z_1, …`. */
  errors: number[];
}

/** `1/β` per iteration as f32, β growing by κ in float64 (as hqq's Python float). */
export function hqqInverseBetas(options: HqqOptions): Float32Array {
  const out = new Float32Array(Math.max(options.iterations, 1));
  let beta = options.beta;
  for (let i = 0; i < out.length; i++, beta *= options.kappa) out[i] = 1 / beta;
  return out;
}

/**
 * Relative improvement of the mean error below which an iterate counts as no better: f32 noise
 * (about 1e-8 relative here) must not decide the stop, or the CPU and GPU paths, which sum in
 * different orders, would stop at different iterations once the zero-points have converged.
 */
export const HQQ_MIN_IMPROVEMENT = 1e-6;

/**
 * The iterate HQQ keeps, given the mean errors of `z_0, z_1, …` in order: the best one, where an
 * iterate must beat the best so far by {@link HQQ_MIN_IMPROVEMENT} (relative), and with
 * `earlyStop` the scan ends at the first iterate that does not.
 */
export function hqqKeptIteration(errors: ArrayLike<number>, earlyStop: boolean): number {
  let best = 0;
  for (let i = 1; i < errors.length; i++) {
    if (errors[i] < errors[best] * (1 - HQQ_MIN_IMPROVEMENT)) best = i;
    else if (earlyStop) break;
  }
  return best;
}

/** HQQ's inverse scale `s` per group (f32), from the group's min and max (module doc). */
function inverseScale(mn: number, mx: number, maxq: number): number {
  const f = Math.fround;
  let s = mx > mn ? Math.min(f(maxq / f(mx - mn)), 2e4) : 2e4;
  const maxAbs = Math.max(Math.abs(mn), Math.abs(mx));
  if (maxAbs > 0) s = Math.min(s, f(1024 / maxAbs));
  return s;
}

/**
 * CPU reference of HQQ on `w` `[rows, cols]` (also the CPU backend of {@link quantizeHqq}).
 * @see https://mobiusml.github.io/hqq_blog/
 */
export function hqqRef(w: Float32Array, layout: AffineLayout, options: HqqOptions = HQQ_DEFAULTS): HqqResult {
  const { shape, bits, groupSize, axis } = layout;
  const f = Math.fround;
  const [rows, cols] = shape;
  const groups = (rows * cols) / groupSize;
  const { stride } = groupSpan(0, rows, cols, groupSize, axis);
  const maxq = 2 ** bits - 1;
  const s = new Float32Array(groups);
  const z = new Float32Array(groups);
  for (let g = 0; g < groups; g++) {
    const start = groupStart(g, rows, cols, groupSize, axis);
    let mn = w[start];
    let mx = mn;
    for (let j = 1; j < groupSize; j++) {
      const v = w[start + j * stride];
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    s[g] = inverseScale(mn, mx, maxq);
    z[g] = bits === 4 ? roundHalfEven(f(-mn * s[g])) : f(-mn * s[g]);
  }
  const invBeta = hqqInverseBetas(options);
  const pm1 = f(options.lpNorm - 1);
  const zNext = new Float32Array(groups);
  const bestZ = z.slice();
  const errors: number[] = [];
  for (let it = 0; it <= options.iterations; it++) {
    const update = it < options.iterations;
    const ib = invBeta[Math.min(it, invBeta.length - 1)];
    let total = 0;
    for (let g = 0; g < groups; g++) {
      const start = groupStart(g, rows, cols, groupSize, axis);
      const sg = s[g];
      const zg = z[g];
      let err = 0; // f32, in element order, as the kernel
      let acc = 0;
      for (let j = 0; j < groupSize; j++) {
        const v = w[start + j * stride];
        const x = roundHalfEven(f(f(v * sg) + zg));
        const q = x < 0 ? 0 : x > maxq ? maxq : x;
        const e = f(v - f(f(q - zg) / sg));
        const a = Math.abs(e);
        err = f(err + a);
        if (update) {
          const we = a > 0 ? Math.sign(e) * Math.max(f(a - f(ib * f(Math.pow(a, pm1)))), 0) : 0; // shrink_p
          acc += f(q - f(f(v - we) * sg));
        }
      }
      total += err;
      zNext[g] = f(acc / groupSize);
    }
    errors.push(total / (groups * groupSize));
    const kept = hqqKeptIteration(errors, options.earlyStop);
    if (kept === it) bestZ.set(z);
    else if (options.earlyStop) break;
    if (update) z.set(zNext);
  }
  const kept = hqqKeptIteration(errors, options.earlyStop);
  const scale = new Float32Array(groups);
  const zero = new Float32Array(groups);
  for (let g = 0; g < groups; g++) {
    scale[g] = Math.f16round(f(1 / s[g]));
    zero[g] = Math.f16round(bestZ[g]);
  }
  const codes = affineCodesRef(w, shape, bits, groupSize, axis, scale, zero);
  return { scale, zero, codes, errors, info: { iterations: kept, meanAbsError: errors[kept] } };
}

function hqqParams(layout: AffineLayout, lpNorm: number, iters: number, mode: 0 | 1): Uint32Array {
  const [rows, cols] = layout.shape;
  return params(
    ["u32", rows],
    ["u32", cols],
    ["u32", layout.groupSize],
    ["u32", layout.axis],
    ["u32", layout.bits],
    ["u32", (rows * cols) / layout.groupSize],
    ["u32", iters],
    ["f32", lpNorm],
    ["u32", mode],
    ["u32", 0],
    ["u32", 0],
    ["u32", 0],
  );
}

/**
 * HQQ-quantizes a 2-D f32 weight on its own device (validated by `quantize()`, the public entry).
 * Returns codes `u32[rows · wordsPerRow]`, meta `u32[groups]` ("weights") and `info`.
 * @see https://mobiusml.github.io/hqq_blog/
 */
export async function quantizeHqq(
  weight: Tensor<"f32">,
  layout: AffineLayout,
  options: HqqOptions = HQQ_DEFAULTS,
): Promise<QuantizedTensor> {
  const { shape, groupSize } = layout;
  const groups = (shape[0] * shape[1]) / groupSize;
  const device = weight.device;
  if (device.kind === "cpu") {
    const r = hqqRef(weight.host(), layout, options);
    return { ...affineFromHost(device, "hqq", layout, r.codes, r.scale, r.zero), info: r.info };
  }
  const grid = grid1d(Math.ceil(groups / AFFINE_WG));
  const slots = grid[0] * grid[1];
  using invBeta = Tensor.fromArray(device, hqqInverseBetas(options), undefined, { label: "hqq.invBeta" });
  using errs = Tensor.empty(device, [options.iterations + 1, slots], { label: "hqq.errs" });
  const meta = Tensor.empty(device, [groups], { dtype: "u32", category: "weights", label: "quant.meta" });
  const spec = { name: "hqq", code, entryPoint: "hqq_iterate" };
  const run = (iters: number, mode: 0 | 1) =>
    dispatchKernel(spec, {
      bindings: [weight, invBeta, errs, meta],
      params: hqqParams(layout, options.lpNorm, iters, mode),
      workgroups: grid,
      constants: { WG: AFFINE_WG },
    });
  run(options.iterations, 0); // every iterate's error sums, [iters + 1, workgroups]
  const sums = await errs.toArray();
  const errors: number[] = [];
  for (let it = 0; it <= options.iterations; it++) {
    let total = 0;
    for (let k = 0; k < slots; k++) total += sums[it * slots + k];
    errors.push(total / (groups * groupSize));
  }
  const kept = hqqKeptIteration(errors, options.earlyStop);
  run(kept, 1); // re-run to the kept iterate; writes the f16 metadata
  const codes = affinePackGpu(weight, meta, layout);
  return {
    ...affineBase("hqq", layout),
    codes,
    meta,
    info: { iterations: kept, meanAbsError: errors[kept] },
  };
}

/** HQQ solver options of `quantize(w, { method: "hqq", hqq: { … } })` (defaults: {@link HQQ_DEFAULTS}). */
export const HqqOptionsSchema = z.strictObject({
  /** Maximum zero-point updates; 0 keeps the min/max start. */
  iterations: z.number().int().min(0).max(10_000).default(HQQ_DEFAULTS.iterations),
  /** p of the lp objective, in (0, 1]. */
  lpNorm: z.number().gt(0).max(1).default(HQQ_DEFAULTS.lpNorm),
  /** Initial half-quadratic penalty β. */
  beta: z.number().positive().default(HQQ_DEFAULTS.beta),
  /** Growth of β per iteration (> 1). */
  kappa: z.number().gt(1).default(HQQ_DEFAULTS.kappa),
  /** Stop at the first iteration that does not lower the mean |W − Ŵ| (the best zero is kept either way). */
  earlyStop: z.boolean().default(HQQ_DEFAULTS.earlyStop),
});

registerQuantizer<{ hqq: HqqOptions | undefined }>({
  name: "hqq",
  description: "affine with HQQ's half-quadratic zero-point refinement",
  options: { hqq: HqqOptionsSchema.optional() },
  quantize: (weight, layout, o) => quantizeHqq(weight, layout, o.hqq ?? HQQ_DEFAULTS),
});
