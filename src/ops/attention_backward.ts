/**
 * Backward of causal grouped-query attention (`attention` in `./attention.ts`). The softmax
 * probabilities are recomputed from `q` and `k` (nothing from the forward is needed), as in
 * FlashAttention's backward:
 *
 * - `P = softmax_j(scale · q_t·k_j)` over `j ≤ pos + t`, `dP_tj = dy_t·v_j`, `Δ_t = Σ_j P_tj·dP_tj`
 * - `dS = P ⊙ (dP − Δ)`, `dq_t = scale · Σ_j dS_tj·k_j`
 * - `dk_j = scale · Σ_t dS_tj·q_t`, `dv_j = Σ_t P_tj·dy_t`, summed over the `G` query heads that
 *   share the kv head.
 *
 * Kernel: `kernels/attention_backward.wgsl`: one workgroup per (token, query head) for `dq`, one
 * per (key row, kv head) for `dk`/`dv`, no atomics, so results are bit-reproducible.
 *
 * Legend: `T` queries, `S` key rows, `Hq` query heads, `Hkv` kv heads, `D` head dim, `G = Hq / Hkv`.
 *
 * @see https://arxiv.org/abs/2205.14135
 * @example One query over two keys: gradients flow to both keys and values
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { attentionBackward } from "./attention_backward.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const q = Tensor.zeros(dev, [1, 1, 2]); // [T=1, Hq=1, D=2]; zero logits: P = (1/2, 1/2)
 * const k = Tensor.fromArray(dev, [1, 0, 0, 1], [2, 1, 2]); // [S=2, Hkv=1, D=2]
 * const v = Tensor.fromArray(dev, [1, 2, 3, 4], [2, 1, 2]); // [S=2, Hkv=1, D=2]
 * const dy = Tensor.fromArray(dev, [1, 0], [1, 1, 2]); // [T, Hq, D]
 * const { dq, dk, dv } = attentionBackward(q, k, v, dy, { pos: 1 }); // query at position 1
 * assert.ok((await dv.toArray()).join() === "0.5,0,0.5,0"); // P_j · dy
 * assert.ok(Math.abs((await dq.toArray())[0] + 0.5 / Math.SQRT2) < 1e-6); // scale·Σ P(dP − Δ)k
 * assert.ok((await dk.toArray()).every((x) => x === 0)); // q = 0
 * ```
 * @module
 */
import { exp } from "./_exp.ts";
import code from "../../kernels/attention_backward.wgsl" with { type: "text" };
import { Tensor } from "../tensor/tensor.ts";
import { blasOf } from "./_blas.ts";
import { expectDType, expectRank, gpuOf, grid1d, params, sameDevice } from "./_kernel.ts";
import type { AttentionDims, AttentionOptions } from "./attention_types.ts";
import { attentionBackwardMatmul, CPU_MATMUL_MIN_T, matmulRouteFits } from "./attention_matmul.ts";

export type { AttentionDims, AttentionOptions };

/** Output columns each kernel lane keeps in registers (`MAXR` in the kernel). */
const MAXR = 8;
/**
 * Fewest queries for which the matmul route (`./attention_matmul.ts`) beats the per-row kernels: on
 * llvmpipe (Hq 8, Hkv 4, D 32) they tie near T = 16; at 256 the route is ~11x faster.
 */
const MATMUL_MIN_T = 16;

/** Gradients returned by {@link attentionBackward}. */
export interface AttentionGrads {
  /** `[T, Hq, D]` gradient with respect to `q`. */
  dq: Tensor<"f32">;
  /** `[S, Hkv, D]` gradient with respect to `k`; rows `≥ pos + T` are zero. */
  dk: Tensor<"f32">;
  /** `[S, Hkv, D]` gradient with respect to `v`; rows `≥ pos + T` are zero. */
  dv: Tensor<"f32">;
}

// ---------------------------------------------------------------------------------------
// Reference (the CPU backend and the test oracle)

/**
 * Causal GQA attention backward on host arrays, accumulating in float64 with a max-subtracted
 * softmax recomputed from `q` and `k`. Reads only the first `pos + T` rows of `k` and `v`.
 *
 * @param q `[T, Hq, D]`
 * @param k `[S, Hkv, D]`, `S ≥ pos + T`
 * @param v `[S, Hkv, D]`
 * @param dy `[T, Hq, D]` gradient with respect to the attention output
 * @param dims Problem sizes, as for the forward reference
 * @param dq `[T, Hq, D]`, written
 * @param dk `[S, Hkv, D]`, written (rows `≥ pos + T` zeroed)
 * @param dv `[S, Hkv, D]`, written (rows `≥ pos + T` zeroed)
 */
export function attentionBackwardRef(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  dy: Float32Array,
  dims: AttentionDims,
  dq: Float32Array,
  dk: Float32Array,
  dv: Float32Array,
): void {
  const { T, Hq, Hkv, D, pos, scale } = dims;
  const group = Hq / Hkv;
  const n = pos + T;
  const probs = new Float64Array(n);
  const dprobs = new Float64Array(n);
  const gq = new Float64Array(D);
  const gk = new Float64Array(n * Hkv * D); // [pos + T, Hkv, D]
  const gv = new Float64Array(n * Hkv * D);
  for (let t = 0; t < T; t++) {
    const len = pos + t + 1;
    for (let h = 0; h < Hq; h++) {
      const qb = (t * Hq + h) * D;
      const kvh = Math.floor(h / group);
      let max = -Infinity;
      for (let j = 0; j < len; j++) {
        const kb = (j * Hkv + kvh) * D;
        let s = 0;
        let dp = 0;
        for (let d = 0; d < D; d++) {
          s += q[qb + d] * k[kb + d];
          dp += dy[qb + d] * v[kb + d];
        }
        probs[j] = s * scale;
        dprobs[j] = dp;
        if (probs[j] > max) max = probs[j];
      }
      let sum = 0;
      for (let j = 0; j < len; j++) sum += probs[j] = exp(probs[j] - max);
      let delta = 0;
      for (let j = 0; j < len; j++) delta += (probs[j] /= sum) * dprobs[j];
      gq.fill(0);
      for (let j = 0; j < len; j++) {
        const kb = (j * Hkv + kvh) * D;
        const ds = probs[j] * (dprobs[j] - delta) * scale;
        for (let d = 0; d < D; d++) {
          gq[d] += ds * k[kb + d];
          gk[kb + d] += ds * q[qb + d];
          gv[kb + d] += probs[j] * dy[qb + d];
        }
      }
      dq.set(gq, qb);
    }
  }
  dk.fill(0);
  dv.fill(0);
  dk.set(gk);
  dv.set(gv);
}

// ---------------------------------------------------------------------------------------
// Op

/**
 * Gradients of causal GQA attention with respect to `q`, `k` and `v`, for the same `pos` and
 * `scale` as the forward (training: `pos = 0`, `S = T`).
 *
 * On WebGPU everything runs in f32; against the float64 reference the kernels are within
 * `rtol 1e-4` plus an `atol` of a few `1e-6` times the gradients' typical size for rows of
 * hundreds of keys (see the tests).
 *
 * @param q `[T, Hq, D]` f32 queries (as fed to the forward)
 * @param k `[S, Hkv, D]` f32 keys; only rows `< pos + T` are read
 * @param v `[S, Hkv, D]` f32 values
 * @param dy `[T, Hq, D]` f32 gradient of the loss with respect to the attention output
 * @param options `pos` (absolute position of `q[0]`) and an optional `scale` (default `1/√D`)
 * @returns `dq` `[T, Hq, D]`, `dk` and `dv` `[S, Hkv, D]` (zero in rows `≥ pos + T`)
 * @throws {TypeError} on mismatched ranks, dtypes or shapes (`Hq` must be a multiple of `Hkv`)
 * @throws {RangeError} when `pos` is not a non-negative integer, `pos + T > S`, or `D` exceeds the kernel's limit
 */
export function attentionBackward(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  dy: Tensor,
  options: AttentionOptions,
): AttentionGrads {
  const op = "attentionBackward";
  const device = sameDevice(op, q, k, v, dy);
  for (const [name, t] of [["q", q], ["k", k], ["v", v], ["dy", dy]] as const) {
    expectRank(op, name, t, 3);
    expectDType(op, name, t, "f32");
  }
  const [T, Hq, D] = q.shape;
  const [S, Hkv] = k.shape;
  if (v.shape.some((d, i) => d !== k.shape[i])) {
    throw new TypeError(
      `Cannot run ${op}: k and v must have the same shape: received [${k.shape}] and [${v.shape}]`,
    );
  }
  if (dy.shape.some((d, i) => d !== q.shape[i])) {
    throw new TypeError(
      `Cannot run ${op}: dy must have the shape of q [${q.shape}]: received [${dy.shape}]`,
    );
  }
  if (k.shape[2] !== D) {
    throw new TypeError(
      `Cannot run ${op}: q and k head dims differ: received q [${q.shape}] and k [${k.shape}]`,
    );
  }
  if (Hkv === 0 || Hq % Hkv !== 0) {
    throw new TypeError(
      `Cannot run ${op}: query heads must be a multiple of kv heads: received Hq = ${Hq}, Hkv = ${Hkv}`,
    );
  }
  const { pos, scale = D > 0 ? 1 / Math.sqrt(D) : 1 } = options;
  if (!Number.isInteger(pos) || pos < 0) {
    throw new RangeError(`Cannot run ${op}: pos must be a non-negative integer: received ${pos}`);
  }
  if (pos + T > S) {
    throw new RangeError(
      `Cannot run ${op}: k and v hold ${S} rows but pos + T = ${pos} + ${T} = ${pos + T}`,
    );
  }
  if (!Number.isFinite(scale)) {
    throw new RangeError(`Cannot run ${op}: scale must be finite: received ${scale}`);
  }
  const dq = Tensor.empty(device, q.shape); // [T, Hq, D]
  const dk = Tensor.zeros(device, k.shape); // [S, Hkv, D]
  const dv = Tensor.zeros(device, k.shape); // [S, Hkv, D]
  if (q.size === 0) return { dq, dk, dv };
  const dims = { T, Hq, Hkv, D, pos, scale };
  // CPU with a BLAS: prefill and training take the matmul route (two sgemm per kv head); decode
  // steps (T = 1) and machines without a BLAS run the reference.
  if (blasOf(device) && matmulRouteFits(dims, CPU_MATMUL_MIN_T)) {
    attentionBackwardMatmul(q, k, v, dy, dims, { dq, dk, dv });
    return { dq, dk, dv };
  }
  if (device.kind === "cpu") {
    attentionBackwardRef(
      q.host() as Float32Array,
      k.host() as Float32Array,
      v.host() as Float32Array,
      dy.host() as Float32Array,
      dims,
      dq.host(),
      dk.host(),
      dv.host(),
    );
    return { dq, dk, dv };
  }
  if (matmulRouteFits(dims, MATMUL_MIN_T)) {
    attentionBackwardMatmul(q, k, v, dy, dims, { dq, dk, dv });
    return { dq, dk, dv };
  }
  // As in the forward: software adapters run 8 lanes per SIMD step, real GPUs want a warp.
  const minWg = device.info.isFallbackAdapter ? 8 : 32;
  const wg = Math.max(minWg, 2 ** Math.ceil(Math.log2(Math.ceil(D / MAXR))));
  if (wg > 256) {
    throw new RangeError(
      `Cannot run ${op} on WebGPU: head dim ${D} exceeds the kernel's limit of ${256 * MAXR}`,
    );
  }
  const gpu = gpuOf(device);
  const constants = { WG: wg, COLS: Math.ceil(D / wg) };
  const p = params(
    ["u32", T],
    ["u32", Hq],
    ["u32", Hkv],
    ["u32", D],
    ["u32", pos],
    ["u32", Hq / Hkv],
    ["f32", scale],
    ["u32", S],
  );
  // Scratch (lse, Δ) per query row, freed once the pending work is submitted.
  using stats = Tensor.empty(device, [T, Hq, 2]);
  gpu.dispatch({ name: "attention_backward", code, entryPoint: "dq_main" }, {
    bindings: [q.storage, k.storage, v.storage, dy.storage, dq.storage, stats.storage],
    params: p,
    workgroups: grid1d(T * Hq),
    constants,
  });
  gpu.dispatch({ name: "attention_backward", code, entryPoint: "dkv_main" }, {
    bindings: [q.storage, k.storage, v.storage, dy.storage, stats.storage, dk.storage, dv.storage],
    params: p,
    workgroups: grid1d(S * Hkv),
    constants,
  });
  return { dq, dk, dv };
}
