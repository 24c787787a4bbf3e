import assert from "node:assert/strict";
import type { Device } from "../../src/device/device.ts";
import { matmul, matmulRef } from "../../src/ops/matmul.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";

// Tolerance: y ~ N(0, K) for unit-normal inputs, and the GPU accumulates K products in f32,
// so errors are judged against the K-scaled magnitude: |err| <= 1e-4 (sqrt(K) + |y|).
function tol(K: number) {
  return { rtol: 1e-4, atol: 1e-4 * Math.sqrt(K) };
}

/** Runs matmul on `dev` and compares with matmulRef. `lead` overrides a's leading dims (shared b only). */
async function check(
  dev: Device,
  [B, M, N, K]: number[],
  transB: boolean,
  bBatched: boolean,
  lead?: number[],
): Promise<void> {
  const seed = B * 1e6 + M * 1e4 + N * 100 + K;
  const a = randn(B * M * K, seed);
  const b = randn((bBatched ? B : 1) * N * K, seed + 1);
  const want = new Float32Array(B * M * N);
  matmulRef(a, b, want, B, M, N, K, transB, bBatched);
  const aShape = lead ? [...lead, K] : bBatched ? [B, M, K] : B === 1 ? [M, K] : [B, M, K];
  const bShape = transB ? [N, K] : [K, N];
  using ta = Tensor.fromArray(dev, a, aShape);
  using tb = Tensor.fromArray(dev, b, bBatched ? [B, ...bShape] : bShape);
  using y = matmul(ta, tb, { transB });
  assert.deepEqual(y.shape, [...aShape.slice(0, -1), N]);
  const what = `[${aShape}] x [${tb.shape}]${transB ? "ᵀ" : ""}`;
  assertClose(await y.toArray(), want, { ...tol(K), what });
}

// [B, M, N, K]. Each layout's vec4 kernel (K % 4 == 0, and N % 4 == 0 without transB) and the
// strided fallback; M = 1, 2, 3, 5 pick smaller row tiles; sizes off the 8-row / 64-column tiles.
const CASES: number[][] = [
  [1, 1, 1, 1],
  [1, 1, 3, 17],
  [1, 3, 17, 63],
  [1, 17, 63, 64],
  [1, 63, 65, 129],
  [1, 65, 129, 4],
  [1, 129, 68, 132],
  [1, 2, 4, 8],
  [1, 5, 132, 60],
  [1, 9, 1, 3],
  [1, 3, 5, 4099],
  [1, 2, 8, 4096],
];

/** The textbook triple loop matmulRef must agree with: one float64 sum per output, in k order. */
function naiveMatmul(
  a: Float32Array,
  b: Float32Array,
  [B, M, N, K]: number[],
  transB: boolean,
  bBatched: boolean,
): Float32Array {
  const y = new Float32Array(B * M * N);
  for (let z = 0; z < B; z++) {
    const bz = bBatched ? z * K * N : 0;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          s += a[(z * M + m) * K + k] * b[bz + (transB ? n * K + k : k * N + n)];
        }
        y[(z * M + m) * N + n] = s;
      }
    }
  }
  return y;
}

Deno.test("matmulRef (the blocked CPU loops) matches a naive float64 triple loop", () => {
  // Every remainder of the 4-row / 4-k / 2 x 4 blocks, column blocks past 256, panels of b
  // rows (K = 1000 gives 32-row panels), batches with a shared and a batched b.
  const shapes = [
    [1, 1, 1, 1],
    [1, 1, 5, 3],
    [1, 2, 3, 7],
    [1, 3, 6, 5],
    [1, 5, 7, 9],
    [1, 7, 300, 6],
    [1, 9, 70, 1000],
    [1, 12, 513, 2],
    [3, 6, 5, 11],
  ];
  for (const shape of shapes) {
    const [B, M, N, K] = shape;
    for (const bBatched of B > 1 ? [false, true] : [false]) {
      const seed = M * 1e4 + N * 100 + K;
      const a = randn(B * M * K, seed);
      const b = randn((bBatched ? B : 1) * N * K, seed + 1);
      for (const transB of [false, true]) {
        const got = new Float32Array(B * M * N).fill(NaN);
        matmulRef(a, b, got, B, M, N, K, transB, bBatched);
        // Same float64 products, another summation order: equal up to a rare 1-ulp f32 tie.
        assertClose(got, naiveMatmul(a, b, shape, transB, bBatched), {
          rtol: 2 ** -22,
          atol: 1e-12,
          what: `matmulRef [${shape}]${transB ? " transB" : ""}${bBatched ? " bBatched" : ""}`,
        });
      }
    }
  }
  // Non-finite values propagate as in the naive loop (no work on padding rows leaks in).
  const a = Float32Array.from([1, 2, 3, Infinity, 0, 1, 1, 1, NaN, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
  const b = Float32Array.from({ length: 4 * 3 }, (_, i) => i - 5);
  for (const transB of [false, true]) {
    const got = new Float32Array(5 * 3);
    matmulRef(a, b, got, 1, 5, 3, 4, transB, false);
    assert.deepEqual(Array.from(got), Array.from(naiveMatmul(a, b, [1, 5, 3, 4], transB, false)));
  }
});

testOnDevices("matmul matches the reference on odd shapes, both layouts", async (dev) => {
  for (const c of CASES) {
    for (const transB of [false, true]) await check(dev, c, transB, false);
  }
});

testOnDevices("matmul batches over b [B, K, N] and over a's leading dims with a shared b", async (dev) => {
  for (const transB of [false, true]) {
    await check(dev, [3, 17, 20, 64], transB, true); // vec4 kernels
    await check(dev, [2, 5, 3, 17], transB, true); // strided kernel
    await check(dev, [1, 6, 65, 16], transB, false, [2, 3]); // [2, 3, K] x [K, N] -> [2, 3, N]
  }
});

testOnDevices("matmul splits grids over 65535 workgroups (batches and row tiles)", async (dev) => {
  await check(dev, [65537, 1, 1, 1], false, true);
  await check(dev, [1, 8 * 65535 + 9, 1, 4], true, false);
});

testOnDevices("matmul of empty and K = 0 shapes is empty or zero", async (dev) => {
  using a = Tensor.zeros(dev, [0, 4]);
  using b = Tensor.zeros(dev, [4, 3]);
  using y = matmul(a, b);
  assert.deepEqual(y.shape, [0, 3]);
  using a0 = Tensor.zeros(dev, [2, 0]);
  using b0 = Tensor.zeros(dev, [0, 3]);
  using y0 = matmul(a0, b0);
  assert.deepEqual(Array.from(await y0.toArray()), [0, 0, 0, 0, 0, 0]);
});

testOnDevices("matmul rejects mismatched shapes with both shapes in the message", (dev) => {
  using a = Tensor.zeros(dev, [2, 3]);
  using b = Tensor.zeros(dev, [4, 5]);
  assert.throws(
    () => matmul(a, b),
    /Cannot run matmul: a of shape \[2,3\] and b of shape \[4,5\]: inner dimensions differ \(K = 3 in a, 4 in b\); .*transB/,
  );
  using w = Tensor.zeros(dev, [5, 4]);
  assert.throws(() => matmul(a, w, { transB: true }), /a of shape \[2,3\] and b of shape \[5,4\] \(transB\)/);
  using bb = Tensor.zeros(dev, [2, 3, 5]);
  using a3 = Tensor.zeros(dev, [3, 2, 3]);
  assert.throws(() => matmul(a3, bb), /a of shape \[3,2,3\] and b of shape \[2,3,5\]: a batched b .* same B/);
  assert.throws(() => matmul(a, bb), /needs a of shape \[B, M, K\]/);
  using v = Tensor.zeros(dev, [3]);
  assert.throws(() => matmul(v, b), /a must have rank at least 2: received shape \[3\]/);
  using i = Tensor.zeros(dev, [3, 5], { dtype: "i32" });
  assert.throws(() => matmul(a, i), /b must be f32 or f16: received i32/);
});

testOnDevices("matmul with transA equals the product with a transposed first", async (dev) => {
  // [B, M, N, K] with a stored [K, M] (or [B, K, M]); b shared or batched, plain or transB.
  for (const [B, M, N, K] of [[1, 1, 1, 1], [1, 5, 17, 63], [1, 65, 3, 130], [3, 7, 9, 5]]) {
    for (const bBatched of B > 1 ? [true, false] : [false]) {
      for (const transB of [false, true]) {
        const seed = 7 * B + M + N + K;
        const a = randn(B * M * K, seed); // [B, K, M]
        const b = randn((bBatched ? B : 1) * N * K, seed + 1);
        const at = new Float32Array(a.length); // [B, M, K]
        for (let z = 0; z < B; z++) {
          for (let k = 0; k < K; k++) {
            for (let m = 0; m < M; m++) at[z * M * K + m * K + k] = a[z * M * K + k * M + m];
          }
        }
        const want = new Float32Array(B * M * N);
        matmulRef(at, b, want, B, M, N, K, transB, bBatched);
        using ta = Tensor.fromArray(dev, a, B > 1 ? [B, K, M] : [K, M]);
        using tb = Tensor.fromArray(dev, b, [...(bBatched ? [B] : []), ...(transB ? [N, K] : [K, N])]);
        using y = matmul(ta, tb, { transA: true, transB });
        assert.deepEqual(y.shape, B > 1 ? [B, M, N] : [M, N]);
        assertClose(await y.toArray(), want, {
          ...tol(K),
          what: `[${ta.shape}]ᵀ x [${tb.shape}]${transB ? "ᵀ" : ""}`,
        });
      }
    }
  }
});

testOnDevices(
  "matmul with transA leaves nothing allocated but its result (WebGPU transposes into a temporary)",
  async (dev) => {
    const tensors = () => dev.ledger.current() - dev.ledger.current("staging");
    using a = Tensor.fromArray(dev, randn(7 * 5, 1), [7, 5]); // stored [K, M]
    using b = Tensor.fromArray(dev, randn(7 * 3, 2), [7, 3]); // [K, N]
    const before = tensors();
    const y = matmul(a, b, { transA: true }); // [M, N] = [5, 3]
    await y.toArray();
    assert.equal(tensors() - before, y.storage.bytes);
    y.dispose();
    assert.equal(tensors(), before);
  },
);
