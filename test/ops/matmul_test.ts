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
  assert.throws(() => matmul(a, i), /b must be f32: received i32/);
});
