/**
 * Run by blas_bun_test.ts under Bun (`bun run test/device/_bun_blas.ts`): loads the BLAS through
 * `bun:ffi` and prints one JSON line with a gemm, a gemv into an offset view, and the library info.
 * @module
 */
import { loadBlas } from "../../src/device/blas.ts";

const blas = await loadBlas({ quiet: true });
if (!blas) {
  console.log(JSON.stringify({ blas: null }));
} else {
  const a = new Float32Array([1, 2, 3, 4, 5, 6]); // [2, 3]
  const b = new Float32Array([1, 0, 0, 1, 1, 1]); // [2, 3], used transposed
  const c = new Float32Array(4);
  blas.gemm(false, true, 2, 2, 3, a, b, c); // [2, 3] x [2, 3]ᵀ -> [2, 2]
  const y = new Float32Array(12);
  blas.gemv(false, 2, 3, a, new Float32Array([1, 1, 1]), y.subarray(5, 7)); // row sums into y[5..7)
  console.log(JSON.stringify({ blas: blas.info, gemm: [...c], gemv: [...y] }));
}
