/**
 * Matrix multiply: `matmul(a, b)` for `[..., M, K] x [K, N] -> [..., M, N]`, batched
 * `[B, M, K] x [B, K, N] -> [B, M, N]`, `transB` for weights stored `[N, K]` the way
 * HF `Linear` stores them (`y = x Wᵀ`), and `transA` for a stored `[K, M]` (`y = aᵀ b`, the
 * weight gradient `dYᵀ X`). Kernel: `kernels/matmul.wgsl`, register-blocked (each invocation
 * computes up to 8 x 8 outputs from vec4 loads, no shared memory). On the CPU device the work
 * goes to its BLAS (`cblas_sgemm`) when one is loaded, else to {@link matmulRef}.
 *
 * @example A linear layer without bias
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { matmul } from "./matmul.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const x = Tensor.fromArray(dev, [1, 2, 3, 4, 5, 6], [2, 3]); // [T, in]
 * const w = Tensor.fromArray(dev, [1, 0, 0, 0, 1, 1], [2, 3]); // [out, in]
 * const y = matmul(x, w, { transB: true }); // [2, 3] x [2, 3]ᵀ -> [2, 2]
 * assert.ok((await y.toArray()).join() === "1,5,4,11");
 * ```
 * @module
 */
import code from "../../kernels/matmul.wgsl" with { type: "text" };
import type { Blas } from "../device/blas.ts";
import { Tensor } from "../tensor/tensor.ts";
import { blasOf } from "./_blas.ts";
import { cast } from "./cast.ts";
import { expectDType, expectRank, gpuOf, MAX_GROUPS, params, sameDevice } from "./_kernel.ts";
import { transpose2d, transpose2dRef } from "./transpose.ts";

/**
 * Kernel configuration: invocations per workgroup (along N), columns per invocation, and the
 * most rows per invocation for each entry point (fewer when M is small).
 */
export const MATMUL_KERNEL = { WG: 8, TN: 8, TM: { nn4: 8, nt4: 16, strided: 16 } } as const;

/** Options for {@link matmul}. */
export interface MatmulOptions {
  /** b is `[N, K]` (or `[B, N, K]`) and is used transposed: `y = a bᵀ`. Default false. */
  transB?: boolean;
  /**
   * a is `[K, M]` (or `[B, K, M]`, rank 2 or 3 only) and is used transposed: `y = aᵀ b`.
   * Default false. The CPU BLAS reads it in place; elsewhere it is transposed first.
   */
  transA?: boolean;
}

// ---------------------------------------------------------------------------------------
// Reference (the CPU backend and the test oracle)

/**
 * y[z] = a[z] · b[z or 0] (· b[z or 0]ᵀ with `transB`), all row-major, accumulated in
 * float64 and rounded once to f32. a is `[B, M, K]`, b is `[K, N]` / `[N, K]` (times B when
 * `bBatched`), y is `[B, M, N]`.
 *
 * Plain scalar TypeScript, but laid out for speed (the CPU backend spends most of a training
 * step here): both layouts compute a small block of outputs per pass over contiguous memory
 * so each loaded element feeds several multiply-adds (`matmulNT`, `matmulNN`). Every product
 * of two f32 is exact in float64 and the sums stay float64, so the summation order (blocks of
 * 4 in the plain layout) moves a sum by at most ~K·2⁻⁵³·Σₖ|a·b| before the single rounding
 * to f32: results equal a naive float64 loop's except, rarely, by 1 f32 ulp when the sum
 * lies that close to a rounding boundary — far inside any f32 test tolerance.
 */
export function matmulRef(
  a: Float32Array,
  b: Float32Array,
  y: Float32Array,
  B: number,
  M: number,
  N: number,
  K: number,
  transB: boolean,
  bBatched: boolean,
): void {
  const acc = new Float64Array(4 * NN_COLS); // matmulNN's accumulator rows
  for (let z = 0; z < B; z++) {
    const aOff = z * M * K, bOff = bBatched ? z * K * N : 0, yOff = z * M * N;
    if (transB) matmulNT(a, aOff, b, bOff, y, yOff, M, N, K);
    else matmulNN(a, aOff, b, bOff, y, yOff, M, N, K, acc);
  }
}

/**
 * `y[m, n] = Σₖ a[m, k] · b[n, k]` for one batch: dot products of contiguous rows. Each pass
 * over k computes a 2 x 4 block (rows m, m+1 of a against rows n..n+3 of b) in 8
 * independent accumulators, loading 6 values per 8 multiply-adds. At the edges the missing
 * rows repeat the last one and their results are dropped. b is walked in panels of rows that
 * fit in L2 so every row of a reuses a panel while it is cached.
 */
function matmulNT(
  a: Float32Array,
  aOff: number,
  b: Float32Array,
  bOff: number,
  y: Float32Array,
  yOff: number,
  M: number,
  N: number,
  K: number,
): void {
  const panel = Math.max(4, Math.floor(NT_PANEL_FLOATS / K / 4) * 4); // rows of b per panel
  for (let n0 = 0; n0 < N; n0 += panel) {
    const nEnd = Math.min(N, n0 + panel);
    for (let m = 0; m < M; m += 2) {
      const a0 = aOff + m * K;
      const a1 = m + 1 < M ? a0 + K : a0;
      const y0 = yOff + m * N;
      const y1 = y0 + N;
      for (let n = n0; n < nEnd; n += 4) {
        const b0 = bOff + n * K;
        const b1 = n + 1 < nEnd ? b0 + K : b0;
        const b2 = n + 2 < nEnd ? b0 + 2 * K : b0;
        const b3 = n + 3 < nEnd ? b0 + 3 * K : b0;
        let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
        for (let k = 0; k < K; k++) {
          const x0 = a[a0 + k], x1 = a[a1 + k];
          const w0 = b[b0 + k], w1 = b[b1 + k], w2 = b[b2 + k], w3 = b[b3 + k];
          s00 += x0 * w0;
          s01 += x0 * w1;
          s02 += x0 * w2;
          s03 += x0 * w3;
          s10 += x1 * w0;
          s11 += x1 * w1;
          s12 += x1 * w2;
          s13 += x1 * w3;
        }
        y[y0 + n] = s00;
        if (n + 1 < nEnd) y[y0 + n + 1] = s01;
        if (n + 2 < nEnd) y[y0 + n + 2] = s02;
        if (n + 3 < nEnd) y[y0 + n + 3] = s03;
        if (m + 1 < M) {
          y[y1 + n] = s10;
          if (n + 1 < nEnd) y[y1 + n + 1] = s11;
          if (n + 2 < nEnd) y[y1 + n + 2] = s12;
          if (n + 3 < nEnd) y[y1 + n + 3] = s13;
        }
      }
    }
  }
}

/**
 * `y[m, :] = Σₖ a[m, k] · b[k, :]` for one batch, in i-k-j order: the inner loop runs along
 * contiguous rows of b into float64 accumulator rows. Each pass takes 4 rows of a (m..m+3)
 * and 4 rows of b (k..k+3), so every b value loaded feeds 4 rows and every accumulator load
 * and store carries 4 multiply-adds; the last `M % 4` rows of a go one at a time. Columns go
 * in blocks of {@link NN_COLS} so the accumulators stay in L1 and the b block in L2.
 */
function matmulNN(
  a: Float32Array,
  aOff: number,
  b: Float32Array,
  bOff: number,
  y: Float32Array,
  yOff: number,
  M: number,
  N: number,
  K: number,
  acc: Float64Array, // 4 rows of NN_COLS
): void {
  const C = NN_COLS;
  for (let j0 = 0; j0 < N; j0 += C) {
    const width = Math.min(C, N - j0);
    let m = 0;
    for (; m + 4 <= M; m += 4) {
      const r0 = aOff + m * K, r1 = r0 + K, r2 = r1 + K, r3 = r2 + K;
      acc.fill(0);
      let k = 0;
      for (; k + 4 <= K; k += 4) {
        const x00 = a[r0 + k], x01 = a[r0 + k + 1], x02 = a[r0 + k + 2], x03 = a[r0 + k + 3];
        const x10 = a[r1 + k], x11 = a[r1 + k + 1], x12 = a[r1 + k + 2], x13 = a[r1 + k + 3];
        const x20 = a[r2 + k], x21 = a[r2 + k + 1], x22 = a[r2 + k + 2], x23 = a[r2 + k + 3];
        const x30 = a[r3 + k], x31 = a[r3 + k + 1], x32 = a[r3 + k + 2], x33 = a[r3 + k + 3];
        const b0 = bOff + k * N + j0, b1 = b0 + N, b2 = b1 + N, b3 = b2 + N;
        for (let j = 0; j < width; j++) {
          const w0 = b[b0 + j], w1 = b[b1 + j], w2 = b[b2 + j], w3 = b[b3 + j];
          acc[j] += x00 * w0 + x01 * w1 + x02 * w2 + x03 * w3;
          acc[C + j] += x10 * w0 + x11 * w1 + x12 * w2 + x13 * w3;
          acc[2 * C + j] += x20 * w0 + x21 * w1 + x22 * w2 + x23 * w3;
          acc[3 * C + j] += x30 * w0 + x31 * w1 + x32 * w2 + x33 * w3;
        }
      }
      for (; k < K; k++) { // the last K % 4 rows of b, one at a time
        const x0 = a[r0 + k], x1 = a[r1 + k], x2 = a[r2 + k], x3 = a[r3 + k];
        const bk = bOff + k * N + j0;
        for (let j = 0; j < width; j++) {
          const w = b[bk + j];
          acc[j] += x0 * w;
          acc[C + j] += x1 * w;
          acc[2 * C + j] += x2 * w;
          acc[3 * C + j] += x3 * w;
        }
      }
      for (let i = 0; i < 4; i++) {
        const yRow = yOff + (m + i) * N + j0;
        for (let j = 0; j < width; j++) y[yRow + j] = acc[i * C + j];
      }
    }
    for (; m < M; m++) { // the last M % 4 rows of a, one at a time, four rows of b per pass
      const r = aOff + m * K;
      acc.fill(0, 0, width);
      let k = 0;
      for (; k + 4 <= K; k += 4) {
        const x0 = a[r + k], x1 = a[r + k + 1], x2 = a[r + k + 2], x3 = a[r + k + 3];
        const b0 = bOff + k * N + j0, b1 = b0 + N, b2 = b1 + N, b3 = b2 + N;
        for (let j = 0; j < width; j++) {
          acc[j] += x0 * b[b0 + j] + x1 * b[b1 + j] + x2 * b[b2 + j] + x3 * b[b3 + j];
        }
      }
      for (; k < K; k++) {
        const x = a[r + k], bk = bOff + k * N + j0;
        for (let j = 0; j < width; j++) acc[j] += x * b[bk + j];
      }
      const yRow = yOff + m * N + j0;
      for (let j = 0; j < width; j++) y[yRow + j] = acc[j];
    }
  }
}

/** Floats of b per transB panel (128 KiB, half a typical L2). */
const NT_PANEL_FLOATS = 32768;
/** Columns per block in the plain layout (4 float64 accumulator rows, 8 KiB). */
const NN_COLS = 256;

/**
 * The CPU backend's matmul: one `cblas_sgemm` per batch when a BLAS is loaded (a transposed a or
 * b is read in place), else {@link matmulRef} (a transposed a is transposed first).
 */
function matmulCpu(
  a: Float32Array,
  b: Float32Array,
  y: Float32Array,
  s: MatmulShape,
  transA: boolean,
  transB: boolean,
  blas: Blas | null,
): void {
  const { B, M, N, K, bBatched } = s;
  if (!blas) {
    let a2 = a;
    if (transA) transpose2dRef(a, a2 = new Float32Array(a.length), a.length / (M * K), K, M); // [K, M] -> [M, K]
    matmulRef(a2, b, y, B, M, N, K, transB, bBatched);
    return;
  }
  for (let z = 0; z < B; z++) {
    const aOff = z * M * K, bOff = bBatched ? z * K * N : 0, yOff = z * M * N;
    if (M === 1) { // one row (decode): sgemv, y = op(b)ᵀ a, where sgemm pays for blocking and threads
      const bz = b.subarray(bOff, bOff + K * N);
      if (transB) blas.gemv(false, N, K, bz, a.subarray(aOff, aOff + K), y.subarray(yOff, yOff + N));
      else blas.gemv(true, K, N, bz, a.subarray(aOff, aOff + K), y.subarray(yOff, yOff + N));
      continue;
    }
    blas.gemm(
      transA,
      transB,
      M,
      N,
      K,
      a.subarray(aOff, aOff + M * K),
      b.subarray(bOff, bOff + K * N),
      y.subarray(yOff, yOff + M * N),
    );
  }
}

// ---------------------------------------------------------------------------------------
// Op

/** The problem a matmul call describes, after shape checks. */
interface MatmulShape {
  /** Batches (1 with a shared b: leading dims of a fold into M). */
  B: number;
  M: number;
  N: number;
  K: number;
  bBatched: boolean;
  out: number[];
}

function checkShapes(a: Tensor, b: Tensor, transB: boolean, transA: boolean): MatmulShape {
  expectRank("matmul", "a", a, 2, transA ? 3 : Infinity);
  expectRank("matmul", "b", b, 2, 3);
  const shapes = `a of shape [${a.shape}]${transA ? " (transA)" : ""} and b of shape [${b.shape}]${
    transB ? " (transB)" : ""
  }`;
  // With transA, a [..., K, M] reads as [..., M, K]: check the shape it stands for.
  const aShape = transA ? [...a.shape.slice(0, -2), a.shape[a.rank - 1], a.shape[a.rank - 2]] : a.shape;
  const bBatched = b.rank === 3;
  if (bBatched && (a.rank !== 3 || a.shape[0] !== b.shape[0])) {
    throw new TypeError(
      `Cannot run matmul: ${shapes}: a batched b [B, ${
        transB ? "N, K" : "K, N"
      }] needs a of shape [B, M, K] ` +
        `with the same B`,
    );
  }
  const K = aShape[a.rank - 1];
  const [bk, n] = transB
    ? [b.shape[b.rank - 1], b.shape[b.rank - 2]]
    : [b.shape[b.rank - 2], b.shape[b.rank - 1]];
  if (bk !== K) {
    throw new TypeError(
      `Cannot run matmul: ${shapes}: inner dimensions differ (K = ${K} in a, ${bk} in b); ` +
        (transB ? "b must be [N, K]" : "b must be [K, N], or pass { transB: true } for b of shape [N, K]"),
    );
  }
  const lead = aShape.slice(0, -1);
  const rows = lead.reduce((x, d) => x * d, 1);
  // A transposed a cannot fold its batches into M: keep them as batches over the shared b.
  return bBatched || (transA && a.rank === 3)
    ? { B: a.shape[0], M: aShape[1], N: n, K, bBatched, out: [...lead, n] }
    : { B: 1, M: rows, N: n, K, bBatched, out: [...lead, n] };
}

/**
 * `[..., M, K] x [K, N] -> [..., M, N]`; `[B, M, K] x [B, K, N] -> [B, M, N]`; with
 * `transB`, b is `[N, K]` / `[B, N, K]` (HF `Linear`: `matmul(x, W, { transB: true })`).
 * f32 in, f32 out, accumulated in f32 on the GPU. b may be f16 (weights kept at 16 bits): it is
 * widened exactly into a temporary f32 copy first.
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor<"f32"> {
  const transB = options.transB ?? false;
  const transA = options.transA ?? false;
  const device = sameDevice("matmul", a, b);
  expectDType("matmul", "a", a, "f32");
  expectDType("matmul", "b", b, "f32", "f16");
  if (b.dtype === "f16") {
    // 16-bit weights (prefill through an f16 Linear): widened once into a temporary, then f32.
    using b32 = cast(b, "f32"); // [..., K, N] or [..., N, K], f16 -> f32
    return matmul(a, b32, options);
  }
  const s = checkShapes(a, b, transB, transA);
  if (transA && device.kind !== "cpu" && s.out.every((d) => d > 0) && s.K > 0) {
    // WebGPU: transpose a first (the kernel reads a row-major); the result is allocated by that call.
    using at = transpose2d(a); // [..., K, M] -> [..., M, K]
    return matmul(at, b, { transB });
  }
  const y = Tensor.empty(device, s.out);
  if (y.size === 0 || s.K === 0) return y; // device memory starts zeroed
  if (device.kind === "cpu") {
    matmulCpu(
      a.host() as Float32Array,
      b.host() as Float32Array,
      y.host(),
      s,
      transA,
      transB,
      blasOf(device),
    );
    return y;
  }
  const { WG, TN } = MATMUL_KERNEL;
  const vec4 = s.K % 4 === 0 && (transB || s.N % 4 === 0);
  const entryPoint = !vec4 ? "strided" : transB ? "nt4" : "nn4";
  // Fewer rows per invocation for short a (decode, small batches): smallest power of two >= M.
  const TM = Math.min(MATMUL_KERNEL.TM[entryPoint], 2 ** Math.ceil(Math.log2(s.M)));
  const nGroups = Math.ceil(s.N / (TN * WG));
  if (nGroups > MAX_GROUPS) {
    throw new RangeError(
      `Cannot run matmul: N = ${s.N} needs more than ${MAX_GROUPS} workgroups; split b along N`,
    );
  }
  const mTiles = Math.ceil(s.M / TM);
  const [sbk, sbn] = transB ? [1, s.K] : [s.N, 1];
  const gpu = gpuOf(device);
  for (let z0 = 0; z0 < s.B; z0 += MAX_GROUPS) {
    for (let t0 = 0; t0 < mTiles; t0 += MAX_GROUPS) {
      gpu.dispatch({ name: "matmul", code, entryPoint }, {
        bindings: [a.storage, b.storage, y.storage],
        params: params(
          ["u32", s.M],
          ["u32", s.N],
          ["u32", s.K],
          ["u32", t0 * TM],
          ["u32", z0],
          ["u32", s.M * s.K],
          ["u32", s.bBatched ? s.K * s.N : 0],
          ["u32", s.M * s.N],
          ["u32", sbk],
          ["u32", sbn],
        ),
        workgroups: [Math.min(MAX_GROUPS, mTiles - t0), nGroups, Math.min(MAX_GROUPS, s.B - z0)],
        constants: { WG, TM },
      });
    }
  }
  return y;
}
