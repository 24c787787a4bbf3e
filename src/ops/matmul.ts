/**
 * Matrix multiply: `matmul(a, b)` for `[..., M, K] x [K, N] -> [..., M, N]`, batched
 * `[B, M, K] x [B, K, N] -> [B, M, N]`, and `transB` for weights stored `[N, K]` the way
 * HF `Linear` stores them (`y = x Wᵀ`). Kernel: `kernels/matmul.wgsl`, register-blocked
 * (each invocation computes up to 8 x 8 outputs from vec4 loads, no shared memory).
 *
 * @example A linear layer without bias
 * ```ts
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { matmul } from "./matmul.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const x = Tensor.fromArray(dev, [1, 2, 3, 4, 5, 6], [2, 3]); // [T, in]
 * const w = Tensor.fromArray(dev, [1, 0, 0, 0, 1, 1], [2, 3]); // [out, in]
 * const y = matmul(x, w, { transB: true }); // [2, 3] x [2, 3]ᵀ -> [2, 2]
 * console.assert((await y.toArray()).join() === "1,5,4,11");
 * ```
 * @module
 */
import code from "../../kernels/matmul.wgsl" with { type: "text" };
import { Tensor } from "../tensor/tensor.ts";
import { expectDType, expectRank, gpuOf, MAX_GROUPS, params, sameDevice } from "./_kernel.ts";

/**
 * Kernel configuration: invocations per workgroup (along N), columns per invocation, and the
 * most rows per invocation for each entry point (fewer when M is small).
 */
export const MATMUL_KERNEL = { WG: 8, TN: 8, TM: { nn4: 8, nt4: 16, strided: 16 } } as const;

/** Options for {@link matmul}. */
export interface MatmulOptions {
  /** b is `[N, K]` (or `[B, N, K]`) and is used transposed: `y = a bᵀ`. Default false. */
  transB?: boolean;
}

// ---------------------------------------------------------------------------------------
// Reference (the CPU backend and the test oracle)

/**
 * y[z] = a[z] · b[z or 0] (· b[z or 0]ᵀ with `transB`), all row-major, accumulated in
 * float64 and rounded once to f32. a is `[B, M, K]`, b is `[K, N]` / `[N, K]` (times B when
 * `bBatched`), y is `[B, M, N]`.
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
  const row = new Float64Array(N);
  for (let z = 0; z < B; z++) {
    const bOff = bBatched ? z * K * N : 0;
    for (let m = 0; m < M; m++) {
      const aOff = (z * M + m) * K;
      const yOff = (z * M + m) * N;
      if (transB) {
        for (let n = 0; n < N; n++) {
          const bRow = bOff + n * K;
          let s = 0;
          for (let k = 0; k < K; k++) s += a[aOff + k] * b[bRow + k];
          y[yOff + n] = s;
        }
      } else {
        row.fill(0);
        for (let k = 0; k < K; k++) {
          const av = a[aOff + k];
          const bRow = bOff + k * N;
          for (let n = 0; n < N; n++) row[n] += av * b[bRow + n];
        }
        for (let n = 0; n < N; n++) y[yOff + n] = row[n];
      }
    }
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

function checkShapes(a: Tensor, b: Tensor, transB: boolean): MatmulShape {
  expectRank("matmul", "a", a, 2, Infinity);
  expectRank("matmul", "b", b, 2, 3);
  const shapes = `a of shape [${a.shape}] and b of shape [${b.shape}]${transB ? " (transB)" : ""}`;
  const bBatched = b.rank === 3;
  if (bBatched && (a.rank !== 3 || a.shape[0] !== b.shape[0])) {
    throw new TypeError(
      `Cannot run matmul: ${shapes}: a batched b [B, ${
        transB ? "N, K" : "K, N"
      }] needs a of shape [B, M, K] ` +
        `with the same B`,
    );
  }
  const K = a.shape[a.rank - 1];
  const [bk, n] = transB
    ? [b.shape[b.rank - 1], b.shape[b.rank - 2]]
    : [b.shape[b.rank - 2], b.shape[b.rank - 1]];
  if (bk !== K) {
    throw new TypeError(
      `Cannot run matmul: ${shapes}: inner dimensions differ (K = ${K} in a, ${bk} in b); ` +
        (transB ? "b must be [N, K]" : "b must be [K, N], or pass { transB: true } for b of shape [N, K]"),
    );
  }
  const lead = a.shape.slice(0, -1);
  const rows = lead.reduce((x, d) => x * d, 1);
  return bBatched
    ? { B: a.shape[0], M: a.shape[1], N: n, K, bBatched, out: [...lead, n] }
    : { B: 1, M: rows, N: n, K, bBatched, out: [...lead, n] };
}

/**
 * `[..., M, K] x [K, N] -> [..., M, N]`; `[B, M, K] x [B, K, N] -> [B, M, N]`; with
 * `transB`, b is `[N, K]` / `[B, N, K]` (HF `Linear`: `matmul(x, W, { transB: true })`).
 * f32 in, f32 out, accumulated in f32 on the GPU.
 */
export function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor<"f32"> {
  const transB = options.transB ?? false;
  const device = sameDevice("matmul", a, b);
  expectDType("matmul", "a", a, "f32");
  expectDType("matmul", "b", b, "f32");
  const s = checkShapes(a, b, transB);
  const y = Tensor.empty(device, s.out);
  if (y.size === 0 || s.K === 0) return y; // device memory starts zeroed
  if (device.kind === "cpu") {
    matmulRef(
      a.host() as Float32Array,
      b.host() as Float32Array,
      y.host(),
      s.B,
      s.M,
      s.N,
      s.K,
      transB,
      s.bBatched,
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
