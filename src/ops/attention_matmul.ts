/**
 * Attention's matmul route on WebGPU: causal GQA attention and its backward composed from the batched
 * matmul kernel, head-major permutes and one row kernel (`kernels/attention_probs.wgsl`) that applies
 * the causal mask, the softmax and, for the backward, `dS`. It materialises the probabilities
 * (`[Hq, T, pos + T]` f32, twice for the backward), which at training shapes (T ≤ 512) is a few MiB and
 * buys the matmul kernel's register blocking: about 8x faster than the per-row kernels there.
 *
 * With `G = Hq / Hkv`, `n = pos + T`, and the queries of kv head `h` stacked as `Qh = [T·G, D]` (row
 * `t·G + g` is query `t`, head `h·G + g`, so `[T, Hq, D]` read as `[T, Hkv, G·D]` permutes to it):
 *
 * - forward: `P = mask-softmax(scale · Qh·Khᵀ)`, `Oh = P·Vh`
 * - backward: `dP = dYh·Vhᵀ`, `dS = scale · P ⊙ (dP − rowsum(P ⊙ dP))`, `dQh = dS·Kh`,
 *   `dKhᵀ = Qhᵀ·dS`, `dVhᵀ = dYhᵀ·P` (the sum over the G heads of a group is the matmul's sum over rows)
 *
 * The CPU backend never takes this route (its reference is `attentionRef` / `attentionBackwardRef`), but
 * every step has a CPU path, so the route itself runs and is tested on both backends.
 *
 * Legend: `T` queries, `S` key rows, `Hq`/`Hkv` heads, `D` head dim, `G = Hq / Hkv`, `n = pos + T`.
 * @module
 */
import { exp } from "./_exp.ts";
import code from "../../kernels/attention_probs.wgsl" with { type: "text" };
import { Tensor } from "../tensor/tensor.ts";
import { gpuOf, grid1d, params } from "./_kernel.ts";
import type { AttentionDims } from "./attention_types.ts";
import { matmul } from "./matmul.ts";
import { permute3Into } from "./permute.ts";

/** Rows per workgroup of the row kernel. */
const ROWS = 64;

/** Fewest queries for which the CPU backend with a BLAS takes the matmul route (decode steps stay on the reference). */
export const CPU_MATMUL_MIN_T = 2;

/** Largest probability matrix (bytes) the route materialises; beyond it the per-row kernels run. */
export const MATMUL_ROUTE_MAX_BYTES = 64 << 20;

/** Whether the matmul route fits: `T ≥ minT` queries and a `[Hq, T, pos + T]` f32 matrix within the limit. */
export function matmulRouteFits(dims: AttentionDims, minT: number): boolean {
  const { T, Hq, pos } = dims;
  return T >= minT && Hq * T * (pos + T) * 4 <= MATMUL_ROUTE_MAX_BYTES;
}

/**
 * Reference of the row kernel, in float64 per row: `s <- P` and, when `dp` is given, `dp <- dS`.
 *
 * @param s `[Hkv, T·G, n]` scores `Qh·Khᵀ` (unscaled), overwritten with the probabilities
 * @param dp `[Hkv, T·G, n]` `dYh·Vhᵀ`, overwritten with `scale · P ⊙ (dP − Δ)`; or null
 */
export function attentionProbsRef(s: Float32Array, dp: Float32Array | null, dims: AttentionDims): void {
  const { T, Hq, Hkv, pos, scale } = dims;
  const G = Hq / Hkv;
  const n = pos + T;
  const e = new Float64Array(n);
  for (let row = 0; row < T * Hq; row++) {
    const b = row * n;
    const len = pos + Math.floor((row % (T * G)) / G) + 1;
    let max = -Infinity;
    for (let j = 0; j < len; j++) max = Math.max(max, scale * s[b + j]);
    let sum = 0;
    for (let j = 0; j < len; j++) sum += e[j] = exp(scale * s[b + j] - max);
    let delta = 0;
    for (let j = 0; j < len; j++) delta += (e[j] /= sum) * (dp ? dp[b + j] : 0);
    for (let j = 0; j < n; j++) {
      const pj = j < len ? e[j] : 0;
      s[b + j] = pj;
      if (dp) dp[b + j] = j < len ? scale * pj * (dp[b + j] - delta) : 0;
    }
  }
}

/**
 * Runs the row kernel (or its reference on the CPU) in place on `s` and, with `grad`, on `dp`. Without
 * `grad`, `dp` is only bound (any tensor other than `s`: two writable bindings may not alias).
 */
function attentionProbs(s: Tensor, dp: Tensor, dims: AttentionDims, grad: boolean): void {
  if (s.device.kind === "cpu") {
    attentionProbsRef(s.host() as Float32Array, grad ? dp.host() as Float32Array : null, dims);
    return;
  }
  const { T, Hq, Hkv, pos, scale } = dims;
  const n = pos + T;
  const vec4 = n % 4 === 0;
  gpuOf(s.device).dispatch({ name: "attention_probs", code, entryPoint: vec4 ? "probs4" : "probs" }, {
    bindings: [s.storage, dp.storage],
    params: params(
      ["u32", T * Hq],
      ["u32", T * Hq / Hkv],
      ["u32", Hq / Hkv],
      ["u32", vec4 ? n / 4 : n],
      ["u32", pos],
      ["f32", scale],
      ["u32", grad ? 1 : 0],
    ),
    workgroups: grid1d(Math.ceil(T * Hq / ROWS)),
    constants: { ROWS },
  });
}

/** Head-major copy of the leading `rows` rows of `x` `[rows, Hkv, C]`: `[Hkv, rows·C / D, D]`. */
function heads(x: Tensor, rows: number, Hkv: number, D: number): Tensor<"f32"> {
  const C = x.shape[1] * x.shape[2] / Hkv; // G·D for queries, D for keys and values
  const y = Tensor.empty(x.device, [Hkv, rows * C / D, D]);
  permute3Into(x, [rows, Hkv, C], [1, 0, 2], y);
  return y;
}

/**
 * Causal GQA attention by the matmul route.
 *
 * @param q `[T, Hq, D]`; `k`, `v` `[S, Hkv, D]` (rows `< pos + T` read)
 * @param out `[T, Hq, D]`, written
 */
export function attentionMatmul(q: Tensor, k: Tensor, v: Tensor, dims: AttentionDims, out: Tensor): void {
  const { T, Hkv, D, pos } = dims;
  const n = pos + T;
  using qh = heads(q, T, Hkv, D); // [Hkv, T·G, D]
  using kh = heads(k, n, Hkv, D); // [Hkv, n, D]
  using vh = heads(v, n, Hkv, D); // [Hkv, n, D]
  using s = matmul(qh, kh, { transB: true }); // [Hkv, T·G, n]
  attentionProbs(s, qh, dims, false); // P
  using oh = matmul(s, vh); // [Hkv, T·G, D]
  permute3Into(oh, [Hkv, T, out.size / (T * Hkv)], [1, 0, 2], out); // [T, Hkv, G·D] = [T, Hq, D]
}

/**
 * Backward of causal GQA attention by the matmul route (probabilities recomputed from `q` and `k`).
 *
 * @param q `[T, Hq, D]`; `k`, `v` `[S, Hkv, D]` (rows `< pos + T` read); `dy` `[T, Hq, D]`
 * @param dq `[T, Hq, D]`, written
 * @param dk `[S, Hkv, D]`, zeroed: rows `< pos + T` written
 * @param dv `[S, Hkv, D]`, zeroed: rows `< pos + T` written
 */
export function attentionBackwardMatmul(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  dy: Tensor,
  dims: AttentionDims,
  grads: { dq: Tensor; dk: Tensor; dv: Tensor },
): void {
  const { T, Hkv, D, pos } = dims;
  const n = pos + T;
  using qh = heads(q, T, Hkv, D); // [Hkv, T·G, D]
  using dyh = heads(dy, T, Hkv, D); // [Hkv, T·G, D]
  using kh = heads(k, n, Hkv, D); // [Hkv, n, D]
  using vh = heads(v, n, Hkv, D); // [Hkv, n, D]
  using s = matmul(qh, kh, { transB: true }); // [Hkv, T·G, n]
  using dp = matmul(dyh, vh, { transB: true }); // [Hkv, T·G, n]
  attentionProbs(s, dp, dims, true); // s = P, dp = dS (scale included)
  using dqh = matmul(dp, kh); // [Hkv, T·G, D]
  permute3Into(dqh, [Hkv, T, q.size / (T * Hkv)], [1, 0, 2], grads.dq); // [T, Hq, D]
  using dkt = matmul(qh, dp, { transA: true }); // [Hkv, T·G, D]ᵀ x [Hkv, T·G, n] -> [Hkv, D, n]
  permute3Into(dkt, [Hkv, D, n], [2, 0, 1], grads.dk); // [n, Hkv, D]
  using dvt = matmul(dyh, s, { transA: true }); // [Hkv, T·G, D]ᵀ x [Hkv, T·G, n] -> [Hkv, D, n]
  permute3Into(dvt, [Hkv, D, n], [2, 0, 1], grads.dv); // [n, Hkv, D]
}
