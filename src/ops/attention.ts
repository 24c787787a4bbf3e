/**
 * Causal scaled-dot-product attention over a KV cache, with grouped-query heads (GQA).
 * Kernel: `kernels/attention.wgsl`; the cache itself lives in `kv_cache.ts`.
 *
 * Legend: `T` new tokens, `S` cache rows, `Hq` query heads, `Hkv` key/value heads,
 * `D` head dim, `G = Hq / Hkv` query heads per kv head.
 *
 * This is HF's eager attention with a causal mask and a cache, for prefill (`pos = 0`,
 * `T > 1`), chunked prefill (`pos > 0`, `T > 1`) and decode (`T = 1`) alike: query `t`
 * sits at absolute position `pos + t` and attends to keys `0..pos+t`.
 *
 * @example Two tokens, one head: the first attends only to itself
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { attention } from "./attention.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const q = Tensor.fromArray(dev, [1, 0, 1, 0], [2, 1, 2]); // [T=2, Hq=1, D=2]
 * const k = Tensor.fromArray(dev, [1, 0, 0, 1], [2, 1, 2]); // [S=2, Hkv=1, D=2]
 * const v = Tensor.fromArray(dev, [1, 2, 3, 4], [2, 1, 2]); // [S=2, Hkv=1, D=2]
 * const o = await attention(q, k, v, { pos: 0 }).toArray(); // [2, 1, 2]
 * assert.ok(o[0] === 1 && o[1] === 2); // token 0 sees only v[0]
 * assert.ok(o[2] > 1 && o[2] < 2); // token 1 mixes v[0] (weighted more) and v[1]
 * ```
 * @module
 */
import { exp } from "./_exp.ts";
import code from "../../kernels/attention.wgsl" with { type: "text" };
import { Tensor } from "../tensor/tensor.ts";
import { blasOf } from "./_blas.ts";
import { attentionMatmul, CPU_MATMUL_MIN_T, matmulRouteFits } from "./attention_matmul.ts";
import type { AttentionDims, AttentionOptions } from "./attention_types.ts";
import { expectDType, expectRank, gpuOf, grid1d, params, sameDevice } from "./_kernel.ts";

export type { AttentionDims, AttentionOptions };

/** Output columns each kernel lane keeps in registers (`MAXR` in the kernel). */
const MAXR = 8;
/**
 * Fewest queries for which the matmul route (`./attention_matmul.ts`) beats the per-row kernel: on
 * llvmpipe (Hq 8, Hkv 4, D 32) they tie at T = 32, the route wins 1.6x at 64 and 2.5x at 256.
 */
const MATMUL_MIN_T = 32;
/** Query heads one workgroup serves from a shared kv head (`MAXG` in the kernel). */
const MAXG = 8;

/** The largest divisor of the GQA group size that is at most {@link MAXG}. */
function headBlock(group: number): number {
  for (let b = Math.min(group, MAXG); b > 1; b--) if (group % b === 0) return b;
  return 1;
}

// ---------------------------------------------------------------------------------------
// Reference (the CPU backend and the test oracle)

/**
 * Causal GQA attention on host arrays, accumulating in float64 with a max-subtracted
 * (stable) softmax. Reads only the first `pos + T` rows of `k` and `v`.
 *
 * @param q `[T, Hq, D]`
 * @param k `[S, Hkv, D]`, `S ≥ pos + T`
 * @param v `[S, Hkv, D]`
 * @param out `[T, Hq, D]`, written
 */
export function attentionRef(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  dims: AttentionDims,
  out: Float32Array,
): void {
  const { T, Hq, Hkv, D, pos, scale } = dims;
  const group = Hq / Hkv;
  const scores = new Float64Array(pos + T);
  const acc = new Float64Array(D);
  for (let t = 0; t < T; t++) {
    const len = pos + t + 1;
    for (let h = 0; h < Hq; h++) {
      const qb = (t * Hq + h) * D;
      const kvh = Math.floor(h / group);
      let max = -Infinity;
      for (let j = 0; j < len; j++) {
        const kb = (j * Hkv + kvh) * D;
        let s = 0;
        for (let d = 0; d < D; d++) s += q[qb + d] * k[kb + d];
        scores[j] = s * scale;
        if (scores[j] > max) max = scores[j];
      }
      acc.fill(0);
      let sum = 0;
      for (let j = 0; j < len; j++) {
        const w = exp(scores[j] - max);
        sum += w;
        const vb = (j * Hkv + kvh) * D;
        for (let d = 0; d < D; d++) acc[d] += w * v[vb + d];
      }
      for (let d = 0; d < D; d++) out[qb + d] = acc[d] / sum;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Op

/**
 * Causal attention of `T` new queries over the first `pos + T` rows of a KV cache.
 * Query head `h` reads kv head `floor(h / G)`. The softmax is max-subtracted in f32
 * (online, chunk by chunk, on WebGPU; float64 on the CPU backend).
 *
 * @param q `[T, Hq, D]` f32 queries (RoPE already applied)
 * @param k `[S, Hkv, D]` f32 keys; rows `pos..pos+T-1` must already hold this step's keys
 * @param v `[S, Hkv, D]` f32 values
 * @param options `pos` (absolute position of `q[0]`) and an optional `scale` (default `1/√D`)
 * @returns `[T, Hq, D]` f32
 * @throws {TypeError} on mismatched ranks, dtypes or head counts (`Hq` must be a multiple of `Hkv`)
 * @throws {RangeError} when `pos` is not a non-negative integer or `pos + T > S`
 *
 * @example Decode step: one query over a 3-row cache
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { attention } from "./attention.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const q = Tensor.zeros(dev, [1, 4, 8]); // [T=1, Hq=4, D=8]; zero logits: uniform weights
 * const k = Tensor.zeros(dev, [3, 2, 8]); // [S=3, Hkv=2, D=8]
 * const v = Tensor.fromArray(dev, Float32Array.from({ length: 48 }, (_, i) => Math.floor(i / 16)), [3, 2, 8]);
 * const o = await attention(q, k, v, { pos: 2 }).toArray(); // [1, 4, 8]
 * assert.ok(Math.abs(o[0] - 1) < 1e-6); // mean of rows 0, 1, 2 = (0 + 1 + 2) / 3
 * ```
 */
export function attention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions): Tensor<"f32"> {
  const op = "attention";
  const device = sameDevice(op, q, k, v);
  for (const [name, t] of [["q", q], ["k", k], ["v", v]] as const) {
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
      `Cannot run ${op}: the cache holds ${S} rows but pos + T = ${pos} + ${T} = ${pos + T}; ` +
        `write this step's keys and values (kvWrite) into a cache of at least that many rows`,
    );
  }
  if (!Number.isFinite(scale)) {
    throw new RangeError(`Cannot run ${op}: scale must be finite: received ${scale}`);
  }
  const out = Tensor.empty(device, q.shape);
  if (out.size === 0) return out;
  const dims = { T, Hq, Hkv, D, pos, scale };
  // CPU with a BLAS: prefill and training take the matmul route (two sgemm per kv head); decode
  // steps (T = 1) and machines without a BLAS run the reference.
  if (blasOf(device) && matmulRouteFits(dims, CPU_MATMUL_MIN_T)) {
    attentionMatmul(q, k, v, dims, out);
    return out;
  }
  if (device.kind === "cpu") {
    attentionRef(
      q.host() as Float32Array,
      k.host() as Float32Array,
      v.host() as Float32Array,
      dims,
      out.host(),
    );
    return out;
  }
  if (matmulRouteFits(dims, MATMUL_MIN_T)) {
    attentionMatmul(q, k, v, dims, out);
    return out;
  }
  // vec4 loads need every row to start on a 16-byte boundary, i.e. D % 4 == 0.
  const vec4 = D % 4 === 0;
  const columns = vec4 ? D / 4 : D;
  // Software adapters run 8 lanes per SIMD step: 8 lanes with 4 columns each beat 32 lanes with 1 (measured
  // on llvmpipe, decode D = 128: about 1.5x). Real GPUs want at least a warp.
  const minWg = device.info.isFallbackAdapter ? 8 : 32;
  const wg = Math.max(minWg, 2 ** Math.ceil(Math.log2(Math.ceil(columns / MAXR))));
  if (wg > 256) {
    throw new RangeError(
      `Cannot run ${op} on WebGPU: head dim ${D} exceeds the kernel's limit of ${
        256 * MAXR * (vec4 ? 4 : 1)
      }`,
    );
  }
  const group = Hq / Hkv;
  const gb = vec4 ? headBlock(group) : 1;
  gpuOf(device).dispatch({ name: "attention", code, entryPoint: vec4 ? "attend4" : "attend" }, {
    bindings: [q.storage, k.storage, v.storage, out.storage],
    params: params(
      ["u32", T],
      ["u32", Hq],
      ["u32", Hkv],
      ["u32", D],
      ["u32", pos],
      ["u32", Hq / Hkv],
      ["f32", scale],
    ),
    workgroups: grid1d(T * Hq / gb),
    constants: { WG: wg, COLS: Math.ceil(columns / wg), GB: gb },
  });
  return out;
}
