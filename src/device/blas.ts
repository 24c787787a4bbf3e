/**
 * A BLAS for the CPU backend: OpenBLAS's `cblas_sgemm` / `cblas_sgemv` through FFI, so GEMM-shaped
 * work (matmul, linear forward and backward, attention's products, decode GEMV) runs at the speed
 * any PyTorch user gets from the same cores. The TypeScript references stay the test oracle and the
 * fallback when no library is found or FFI is not permitted.
 *
 * Where it looks: `FERRY_BLAS=PATH` (or `off` to disable), else Debian's OpenBLAS
 * (`apt-get install libopenblas0-pthread`) and the usual sonames. `FERRY_BLAS_THREADS=N` sets the
 * thread count (OpenBLAS's own default otherwise: `OPENBLAS_NUM_THREADS`, else all cores).
 *
 * @example A 2 x 2 product (skipped quietly where no BLAS is installed or FFI is not permitted)
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadBlas } from "./blas.ts";
 * const blas = await loadBlas({ quiet: true });
 * if (blas) {
 *   const c = new Float32Array(4);
 *   blas.gemm(false, false, 2, 2, 2, new Float32Array([1, 2, 3, 4]), new Float32Array([1, 0, 0, 1]), c);
 *   assert.deepEqual([...c], [1, 2, 3, 4]); // [2, 2] x I -> [2, 2]
 * }
 * ```
 * @module
 */
import { type NativeLibrary, openLibrary } from "../host/ffi.ts";
import { readEnv } from "../host/env.ts";

/** What was loaded: printed in the device info and logged with benchmarks. */
export interface BlasInfo {
  /** Path of the shared library that was opened. */
  library: string;
  /** `openblas_get_config()`, e.g. `OpenBLAS 0.3.21 DYNAMIC_ARCH … MAX_THREADS=64`; `cblas` for other BLAS. */
  config: string;
  /** Threads the library uses for one call. */
  threads: number;
  /** The kernel family OpenBLAS chose for this CPU (`OPENBLAS_CORETYPE` overrides it), or `unknown`. */
  coreType: string;
}

const ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112;

const SYMBOLS = {
  cblas_sgemm: {
    args: [
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "i32",
      "f32",
      "buffer",
      "i32",
      "buffer",
      "i32",
      "f32",
      "buffer",
      "i32",
    ],
    returns: "void",
  },
  cblas_sgemv: {
    args: ["i32", "i32", "i32", "i32", "f32", "buffer", "i32", "buffer", "i32", "f32", "buffer", "i32"],
    returns: "void",
  },
  openblas_get_config: { args: [], returns: "cstring", optional: true },
  openblas_get_corename: { args: [], returns: "cstring", optional: true },
  openblas_get_num_threads: { args: [], returns: "i32", optional: true },
  openblas_set_num_threads: { args: ["i32"], returns: "void", optional: true },
} as const;

/** Row-major single-precision BLAS calls on typed arrays (views: their `byteOffset` is honoured). */
export class Blas {
  readonly info: BlasInfo;
  readonly #lib: NativeLibrary<typeof SYMBOLS>;

  constructor(lib: NativeLibrary<typeof SYMBOLS>) {
    this.#lib = lib;
    const s = lib.symbols;
    this.info = {
      library: lib.path,
      config: s.openblas_get_config?.() || "cblas",
      threads: s.openblas_get_num_threads?.() ?? 1,
      coreType: s.openblas_get_corename?.() || "unknown",
    };
  }

  /**
   * `c = op(a) · op(b)` (or `c += …` with `accumulate`), row-major: op(a) is `[M, K]` (a stored
   * `[K, M]` when `transA`), op(b) is `[K, N]` (b stored `[N, K]` when `transB`), c is `[M, N]`.
   */
  gemm(
    transA: boolean,
    transB: boolean,
    M: number,
    N: number,
    K: number,
    a: Float32Array,
    b: Float32Array,
    c: Float32Array,
    accumulate = false,
  ): void {
    this.#lib.symbols.cblas_sgemm(
      ROW_MAJOR,
      transA ? TRANS : NO_TRANS,
      transB ? TRANS : NO_TRANS,
      M,
      N,
      K,
      1,
      a,
      transA ? M : K,
      b,
      transB ? K : N,
      accumulate ? 1 : 0,
      c,
      N,
    );
  }

  /** `y = W x` for W `[rows, cols]` row-major (`y = Wᵀ x` with `trans`, y then `[cols]`). */
  gemv(trans: boolean, rows: number, cols: number, w: Float32Array, x: Float32Array, y: Float32Array): void {
    this.#lib.symbols.cblas_sgemv(ROW_MAJOR, trans ? TRANS : NO_TRANS, rows, cols, 1, w, cols, x, 1, 0, y, 1);
  }

  /** Sets the library's thread count (OpenBLAS only; others ignore it). */
  setThreads(n: number): void {
    this.#lib.symbols.openblas_set_num_threads?.(n);
    (this.info as { threads: number }).threads = this.#lib.symbols.openblas_get_num_threads?.() ?? n;
  }
}

/** Where Debian and other distributions put a CBLAS with OpenBLAS's symbols. */
export const BLAS_CANDIDATES: readonly string[] = [
  "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
  "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
  "libopenblas.so.0",
  "libopenblas.so",
  "libopenblas.dylib",
  "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
  "libcblas.so.3",
];

/** Options for {@link loadBlas}. */
export interface LoadBlasOptions {
  /** A library path, or `false` for none. Default: `FERRY_BLAS`, else {@link BLAS_CANDIDATES}. */
  path?: string | false;
  /** Threads per call. Default: `FERRY_BLAS_THREADS`, else the library's default. */
  threads?: number;
  /** Print no notice when nothing is found. */
  quiet?: boolean;
}

let cached: Promise<Blas | null> | undefined;
let noticed = false;

/**
 * Opens the BLAS once per process (later calls share it) and returns null, with a one-line
 * notice on stderr, when none is found or FFI is not permitted; the CPU backend then runs the
 * TypeScript references.
 */
export function loadBlas(options: LoadBlasOptions = {}): Promise<Blas | null> {
  const env = readEnv("FERRY_BLAS");
  const path = options.path ?? (env === "off" || env === "0" ? false : env);
  if (path === false) return Promise.resolve(null);
  if (options.path === undefined && cached) return cached.then((b) => withThreads(b, options.threads));
  const attempt = openLibrary(path ? [path] : BLAS_CANDIDATES, SYMBOLS).then(
    (lib) => withThreads(new Blas(lib), options.threads),
    (e: Error) => {
      if (path) throw new Error(`Cannot use FERRY_BLAS=${path}: ${e.message}`);
      if (!options.quiet && !noticed) {
        noticed = true;
        console.error(
          `ferry: no BLAS (${e.message.replace(/^Cannot open a native library: /, "")}); ` +
            "the CPU backend runs the TypeScript reference (apt-get install libopenblas0-pthread, " +
            "run with --allow-ffi, or set FERRY_BLAS=PATH)",
        );
      }
      return null;
    },
  );
  if (options.path === undefined) cached = attempt;
  return attempt;
}

function withThreads(blas: Blas | null, threads?: number): Blas | null {
  const n = threads ?? Number(readEnv("FERRY_BLAS_THREADS") || 0);
  if (blas && Number.isInteger(n) && n > 0 && n !== blas.info.threads) blas.setThreads(n);
  return blas;
}
