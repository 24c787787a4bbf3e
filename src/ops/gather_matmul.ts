/**
 * Expert-gathered matrix products for sparse mixture-of-experts layers, with the routing kept on
 * the device: `gatherMatmul(x, w, idx)` multiplies each token's input by the weight matrices of
 * the experts `idx` picked for it (`topk(routerLogits, K).indices`), without reading the
 * routing back to the host. Kernel: `kernels/gather_matmul.wgsl` (the GEMV pattern once per
 * (token, slot) pair: several output rows per invocation from vec4 loads of the expert's rows,
 * x read uniformly; no shared memory, no barriers).
 *
 * Legend: `T` tokens, `K` experts per token (slots), `E` experts, `C` input features, `N`
 * output features, `Kx` inputs per token (1: shared by all its slots; K: one per slot).
 *
 * Index semantics (as in `gather.ts`):
 * - `idx` is i32 (or u32) `[T, K]`; there is no negative wrap-around. Repeated experts in a row
 *   are fine: each slot gets its own product.
 * - CPU backend: every id is validated and one outside `0..E-1` throws a `RangeError` naming
 *   its position `idx[t, k]`. WebGPU cannot validate without a sync point, so there an
 *   out-of-range id yields a zero output row `y[t, k, :]` (the reference does the same).
 *
 * @example The SwiGLU expert block of a sparse MoE layer
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { siluMul } from "./elementwise.ts";
 * import { gatherMatmul } from "./gather_matmul.ts";
 * import { matmul } from "./matmul.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const [T, K, E, C, F] = [2, 2, 3, 4, 6];
 * const x = Tensor.fromArray(dev, new Float32Array(T * C).fill(0.5), [T, C]); // [T, C]
 * const w1 = Tensor.fromArray(dev, new Float32Array(E * F * C).fill(0.1), [E, F, C]); // [E, F, C]
 * const w3 = Tensor.fromArray(dev, new Float32Array(E * F * C).fill(0.2), [E, F, C]); // [E, F, C]
 * const w2 = Tensor.fromArray(dev, new Float32Array(E * C * F).fill(0.3), [E, C, F]); // [E, C, F]
 * const idx = Tensor.fromArray(dev, new Int32Array([2, 0, 1, 1]), [T, K]); // [T, K] expert ids
 * const a = siluMul(gatherMatmul(x, w1, idx), gatherMatmul(x, w3, idx)); // [T, K, F]
 * const y = gatherMatmul(a, w2, idx); // [T, K, F] -> [T, K, C]
 * const weights = Tensor.fromArray(dev, [0.75, 0.25, 0.5, 0.5], [T, 1, K]); // routing weights
 * const out = matmul(weights, y); // [T, 1, K] x [T, K, C] -> [T, 1, C]
 * assert.ok(out.shape.join() === "2,1,4");
 * ```
 * @module
 */
import code from "../../kernels/gather_matmul.wgsl" with { type: "text" };
import type { Blas } from "../device/blas.ts";
import { Tensor } from "../tensor/tensor.ts";
import { blasOf } from "./_blas.ts";
import { widenHalves } from "./_f16.ts";
import { expectDType, expectRank, gpuOf, grid1d, params, sameDevice } from "./_kernel.ts";

/** Kernel configuration: invocations per workgroup and output rows per invocation. */
export const GATHER_MATMUL_KERNEL = { WG: 16, R: 4 } as const;

/** Sizes of one {@link gatherMatmul} problem. */
export interface GatherMatmulDims {
  /** Tokens. */
  T: number;
  /** Experts per token (columns of idx). */
  K: number;
  /** Inputs per token: 1 (shared by all K slots) or K (one per slot). */
  Kx: number;
  /** Experts (matrices in w). */
  E: number;
  /** Output features (rows of each expert matrix). */
  N: number;
  /** Input features (columns of each expert matrix). */
  C: number;
}

// ---------------------------------------------------------------------------------------
// Reference (the CPU backend and the test oracle)

/**
 * `y[t, k, n] = Σ_c w[idx[t, k], n, c] · x[t, (Kx == 1 ? 0 : k), c]`, accumulated in float64
 * and rounded once to f32. x is `[T, Kx, C]`, w `[E, N, C]`, idx `[T, K]`, y `[T, K, N]`, all
 * row-major. An id outside `0..E-1` gives a zero row, as on WebGPU (the op's CPU path throws
 * before calling this).
 */
export function gatherMatmulRef(
  x: Float32Array,
  w: Float32Array,
  idx: Int32Array | Uint32Array,
  y: Float32Array,
  { T, K, Kx, E, N, C }: GatherMatmulDims,
): void {
  for (let t = 0; t < T; t++) {
    for (let k = 0; k < K; k++) {
      const e = idx[t * K + k];
      const yOff = (t * K + k) * N;
      if (!(e >= 0 && e < E)) {
        y.fill(0, yOff, yOff + N);
        continue;
      }
      const xOff = (t * Kx + (Kx === 1 ? 0 : k)) * C;
      for (let n = 0; n < N; n++) {
        const wOff = (e * N + n) * C;
        let s = 0;
        for (let c = 0; c < C; c++) s += w[wOff + c] * x[xOff + c];
        y[yOff + n] = s;
      }
    }
  }
}

/**
 * The CPU backend's path with a BLAS: the (token, slot) pairs are grouped by expert, each
 * expert's inputs gathered into one `[n_e, C]` block, multiplied by its `[N, C]` matrix in one
 * `cblas_sgemm` (`cblas_sgemv` for a single pair, as in decode) and scattered back. Ids must be
 * valid (the op checks them first).
 */
function gatherMatmulBlas(
  blas: Blas,
  x: Float32Array,
  w: Float32Array,
  idx: Int32Array | Uint32Array,
  y: Float32Array,
  { T, K, Kx, E, N, C }: GatherMatmulDims,
): void {
  const count = new Int32Array(E + 1);
  for (let i = 0; i < T * K; i++) count[idx[i] + 1]++;
  for (let e = 0; e < E; e++) count[e + 1] += count[e]; // start of each expert's pairs
  const order = new Int32Array(T * K); // pairs sorted by expert
  const fill = count.slice(0, E);
  for (let i = 0; i < T * K; i++) order[fill[idx[i]]++] = i;
  const xRow = (i: number) => (Kx === 1 ? Math.floor(i / K) : i) * C; // pair i = t·K + k
  let xs = new Float32Array(0), ys = new Float32Array(0);
  for (let e = 0; e < E; e++) {
    const n = count[e + 1] - count[e];
    if (n === 0) continue;
    const we = w.subarray(e * N * C, (e + 1) * N * C); // [N, C]
    if (n === 1) {
      const i = order[count[e]];
      blas.gemv(false, N, C, we, x.subarray(xRow(i), xRow(i) + C), y.subarray(i * N, (i + 1) * N));
      continue;
    }
    if (xs.length < n * C) xs = new Float32Array(n * C);
    if (ys.length < n * N) ys = new Float32Array(n * N);
    for (let j = 0; j < n; j++) {
      xs.set(x.subarray(xRow(order[count[e] + j]), xRow(order[count[e] + j]) + C), j * C);
    }
    blas.gemm(false, true, n, N, C, xs, we, ys); // [n, C] x [N, C]ᵀ -> [n, N]
    for (let j = 0; j < n; j++) y.set(ys.subarray(j * N, (j + 1) * N), order[count[e] + j] * N);
  }
}

// ---------------------------------------------------------------------------------------
// Op

function checkShapes(x: Tensor, w: Tensor, idx: Tensor): GatherMatmulDims {
  const op = "gatherMatmul";
  expectDType(op, "x", x, "f32");
  expectDType(op, "w", w, "f32", "f16");
  expectDType(op, "idx", idx, "i32", "u32");
  expectRank(op, "x", x, 2, 3);
  expectRank(op, "w", w, 3);
  expectRank(op, "idx", idx, 2);
  const [E, N, C] = w.shape;
  const [T, K] = idx.shape;
  const Kx = x.rank === 3 ? x.shape[1] : 1;
  const xC = x.shape[x.rank - 1];
  const shapes = `x of shape [${x.shape}], w of shape [${w.shape}] and idx of shape [${idx.shape}]`;
  const want = `x must be [T, C], [T, 1, C] or [T, K, C] with T = ${T} (idx is [T, K]) and C = ${C} ` +
    `(w is [E, N, C])`;
  if (xC !== C) {
    throw new TypeError(
      `Cannot run gatherMatmul: ${shapes}: x has C = ${xC} but w has C = ${C}; ${want}`,
    );
  }
  if (x.shape[0] !== T) {
    throw new TypeError(
      `Cannot run gatherMatmul: ${shapes}: x has T = ${x.shape[0]} but idx has T = ${T}; ${want}`,
    );
  }
  if (Kx !== 1 && Kx !== K) {
    throw new TypeError(
      `Cannot run gatherMatmul: ${shapes}: x has Kx = ${Kx} inputs per token but idx picks K = ${K} ` +
        `experts; Kx must be 1 or K`,
    );
  }
  return { T, K, Kx, E, N, C };
}

function validateIds(idx: Tensor, T: number, K: number, E: number): void {
  const h = idx.host() as Int32Array | Uint32Array;
  for (let i = 0; i < T * K; i++) {
    if (!(h[i] >= 0 && h[i] < E)) {
      const where = `idx[${Math.floor(i / K)}, ${i % K}]`;
      throw new RangeError(
        `Cannot run gatherMatmul: ${where} = ${h[i]} is out of range for w with ${E} experts (0..${E - 1})`,
      );
    }
  }
}

/**
 * Per-(token, slot) expert projection: `y[t, k, :] = w[idx[t, k]] · x[t, kx, :]`, with
 * `kx = 0` when x has one input per token and `kx = k` when it has one per slot. Equals
 * `matmul(x[t, kx], w[idx[t, k]], { transB: true })` for every pair. f32 in, f32 out,
 * accumulated in f32 on the GPU.
 *
 * Decode (T = 1) is memory-bound: it reads the K picked `[N, C]` matrices once. Prefill reads
 * the picked matrix once per (token, slot) pair (through the cache when it fits).
 *
 * @param x `[T, C]` or `[T, 1, C]` (one input per token, shared by its K slots: the up/gate
 *   projections), or `[T, K, C]` (one input per slot: the down projection), f32
 * @param w `[E, N, C]` f32 or f16: E expert matrices `[out, in]` stacked, as HF stores Linear weights
 *   (f16 weights widen in registers: `kernels/gather_matmul.wgsl`; on the CPU, the used experts
 *   are widened exactly first)
 * @param idx `[T, K]` i32 (or u32) expert ids, e.g. `topk(routerLogits, K).indices`
 * @returns `[T, K, N]` f32
 * @throws {TypeError} on wrong dtypes or ranks, or when C, T or Kx disagree (the message names
 *   the three shapes)
 * @throws {RangeError} on the CPU backend when an id is outside `0..E-1` (naming `idx[t, k]`);
 *   on WebGPU that pair's output row is zero instead
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { gatherMatmul } from "./gather_matmul.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const w = Tensor.fromArray(dev, [1, 0, 0, 1, 2, 0, 0, 2], [2, 2, 2]); // [E=2, N=2, C=2]: I and 2I
 * const x = Tensor.fromArray(dev, [1, 2], [1, 2]); // [T=1, C=2]
 * const idx = Tensor.fromArray(dev, new Int32Array([1, 0]), [1, 2]); // [T=1, K=2]
 * const y = gatherMatmul(x, w, idx); // [1, 2, 2]
 * assert.ok((await y.toArray()).join() === "2,4,1,2");
 * ```
 */
export function gatherMatmul(x: Tensor, w: Tensor, idx: Tensor): Tensor<"f32"> {
  const device = sameDevice("gatherMatmul", x, w, idx);
  const d = checkShapes(x, w, idx);
  const { T, K, E, N, C } = d;
  const y = Tensor.empty(device, [T, K, N]);
  if (y.size === 0) return y;
  if (device.kind === "cpu") {
    validateIds(idx, T, K, E);
    const blas = blasOf(device);
    const { w32, ids, used } = w.dtype === "f16"
      ? widenUsed(w.host() as Uint16Array, idx.host() as Int32Array, d)
      : { w32: w.host() as Float32Array, ids: idx.host() as Int32Array, used: E };
    const args = [x.host() as Float32Array, w32, ids, y.host(), { ...d, E: used }] as const;
    if (blas && C > 0) gatherMatmulBlas(blas, ...args);
    else gatherMatmulRef(...args);
    return y;
  }
  // Nothing to read: C = 0 gives zero sums, E = 0 only out-of-range ids (zero rows).
  if (C === 0 || E === 0) return y; // device memory starts zeroed
  dispatchGatherMatmul(w, x, idx, y, d);
  return y;
}

/**
 * The kernel (`kernels/gather_matmul.wgsl`) on the GPU: f32 weights (rows4/rows1) or f16 halves
 * (halves8/halves1); with `idx` undefined every pair uses matrix 0 (the kernel's DIRECT mode: `gemv`).
 * C must be > 0 and E ≥ 1.
 */
export function dispatchGatherMatmul(
  w: Tensor,
  x: Tensor,
  idx: Tensor | undefined,
  y: Tensor,
  d: GatherMatmulDims,
): void {
  const { T, K, Kx, N, C, E } = d;
  const { WG, R } = GATHER_MATMUL_KERNEL;
  const blocks = Math.ceil(N / (R * WG));
  const entryPoint = w.dtype === "f16"
    ? (C % 8 === 0 ? "halves8" : "halves1")
    : (C % 4 === 0 ? "rows4" : "rows1");
  gpuOf(x.device).dispatch({ name: "gather_matmul", code, entryPoint }, {
    bindings: [w.storage, x.storage, (idx ?? x).storage, y.storage], // DIRECT: any read-only buffer as idx
    params: params(["u32", T], ["u32", K], ["u32", Kx], ["u32", N], ["u32", C], ["u32", E], ["u32", blocks]),
    workgroups: grid1d(T * K * blocks),
    constants: { WG, R, DIRECT: idx ? 0 : 1 },
  });
}

/** The experts that `idx` uses, widened to f32 `[U, N, C]`, and idx renumbered into them (CPU, f16 w). */
function widenUsed(
  w: Uint16Array,
  idx: Int32Array | Uint32Array,
  { T, K, N, C }: GatherMatmulDims,
): { w32: Float32Array; ids: Int32Array; used: number } {
  const slot = new Map<number, number>();
  const ids = new Int32Array(T * K);
  for (let i = 0; i < T * K; i++) {
    let s = slot.get(idx[i]);
    if (s === undefined) slot.set(idx[i], s = slot.size);
    ids[i] = s;
  }
  const w32 = new Float32Array(slot.size * N * C);
  for (const [e, s] of slot) widenHalves(w, e * N * C, N * C, w32.subarray(s * N * C, (s + 1) * N * C));
  return { w32, ids, used: slot.size };
}
