import assert from "node:assert/strict";
import { siluMul, siluScalar } from "../../src/ops/elementwise.ts";
import { gatherRows } from "../../src/ops/gather.ts";
import { GATHER_MATMUL_KERNEL, gatherMatmul, gatherMatmulRef } from "../../src/ops/gather_matmul.ts";
import { matmul } from "../../src/ops/matmul.ts";
import { softmax } from "../../src/ops/softmax.ts";
import { topk } from "../../src/ops/topk.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, rng, testOnDevices } from "../_helpers.ts";

// Tolerance: y ~ N(0, C) for unit-normal inputs and the GPU accumulates in f32, so errors are
// judged against the C-scaled magnitude: |err| <= 1e-5 (sqrt(C) + |y|).
function tol(C: number) {
  return { rtol: 1e-5, atol: 1e-5 * Math.sqrt(C) };
}

/** `[T, K]` random expert ids in 0..E-1; row 0 repeats one expert in every slot. */
function randomIds(T: number, K: number, E: number, seed: number): Int32Array {
  const u = rng(seed);
  const ids = Int32Array.from({ length: T * K }, () => Math.floor(u() * E));
  ids.fill(ids[0], 0, K);
  return ids;
}

// C: scalar path (5, 33: odd, with and without a partial 64-byte step) and vec4 path (64);
// N: one row, rows inside one workgroup, rows past one workgroup (R·WG = 64: 48 is not).
const CS = [5, 33, 64];
const NS = [1, 7, 48];
const KS = [1, 2, 3];
const ES = [1, 4, 8];
const TS = [1, 5, 130];

testOnDevices("gatherMatmul matches the reference on odd shapes, Kx = 1 and Kx = K", async (dev) => {
  let i = 0;
  for (const C of CS) {
    for (const N of NS) {
      for (const K of KS) {
        for (const perSlot of [false, true]) {
          // Cycle E and T so every value meets every C, N and K.
          const E = ES[i % 3];
          const T = TS[Math.floor(i / 3) % 3];
          const Kx = perSlot ? K : 1;
          // Kx = 1 alternates between x [T, C] and x [T, 1, C].
          const xShape = perSlot ? [T, K, C] : i % 4 === 0 ? [T, C] : [T, 1, C];
          const x = randn(T * Kx * C, 100 + i);
          const w = randn(E * N * C, 200 + i);
          const ids = randomIds(T, K, E, 300 + i);
          const want = new Float32Array(T * K * N);
          gatherMatmulRef(x, w, ids, want, { T, K, Kx, E, N, C });
          using tx = Tensor.fromArray(dev, x, xShape);
          using tw = Tensor.fromArray(dev, w, [E, N, C]);
          using tidx = Tensor.fromArray(dev, ids, [T, K]);
          using y = gatherMatmul(tx, tw, tidx);
          const what = `gatherMatmul x [${xShape}] w [${E}, ${N}, ${C}] idx [${T}, ${K}]`;
          assert.deepEqual(y.shape, [T, K, N], what);
          assertClose(await y.toArray(), want, { ...tol(C), what });
          i++;
        }
      }
    }
  }
  assert.equal(i, 54);
});

testOnDevices("gatherMatmul equals gathering the expert rows and a batched matmul", async (dev) => {
  for (const [T, K, E, N, C, perSlot] of [[5, 2, 4, 7, 64, false], [3, 3, 4, 9, 33, true]] as const) {
    const Kx = perSlot ? K : 1;
    const x = randn(T * Kx * C, 11);
    const ids = randomIds(T, K, E, 12);
    using tw = Tensor.fromArray(dev, randn(E * N * C, 13), [E, N, C]);
    using tidx = Tensor.fromArray(dev, ids, [T, K]);
    using tx = Tensor.fromArray(dev, x, [T, Kx, C]);
    using y = gatherMatmul(tx, tw, tidx); // [T, K, N]

    // Independent path: the input of every (t, k) pair copied by hand, the expert matrices
    // gathered as rows of w viewed [E, N·C], then one batched x Wᵀ per pair.
    const xPairs = new Float32Array(T * K * C);
    for (let t = 0; t < T; t++) {
      for (let k = 0; k < K; k++) {
        const src = (t * Kx + (perSlot ? k : 0)) * C;
        xPairs.set(x.subarray(src, src + C), (t * K + k) * C);
      }
    }
    using wFlat = tw.reshape([E, N * C]);
    using idsFlat = tidx.reshape([T * K]);
    using wSel = gatherRows(wFlat, idsFlat); // [T·K, N·C]
    using wPairs = wSel.reshape([T * K, N, C]);
    using xp = Tensor.fromArray(dev, xPairs, [T * K, 1, C]);
    using z = matmul(xp, wPairs, { transB: true }); // [T·K, 1, C] x [T·K, N, C]ᵀ -> [T·K, 1, N]
    assertClose(await y.toArray(), await z.toArray(), { ...tol(C), what: `C = ${C}, Kx = ${Kx}` });
  }
});

/** Dense per-token SwiGLU MoE in float64: route, run each picked expert, mix. */
function denseMoe(
  x: Float32Array,
  logits: Float32Array,
  w1: Float32Array,
  w3: Float32Array,
  w2: Float32Array,
  T: number,
  K: number,
  E: number,
  C: number,
  F: number,
): Float64Array {
  const out = new Float64Array(T * C);
  for (let t = 0; t < T; t++) {
    const row = logits.subarray(t * E, (t + 1) * E);
    const picked = [...row.keys()].sort((a, b) => row[b] - row[a] || a - b).slice(0, K);
    const m = row[picked[0]];
    const z = picked.reduce((s, e) => s + Math.exp(row[e] - m), 0);
    const xt = x.subarray(t * C, (t + 1) * C);
    for (const e of picked) {
      const gate = Math.exp(row[e] - m) / z;
      const a = new Float64Array(F);
      for (let f = 0; f < F; f++) {
        let h1 = 0;
        let h3 = 0;
        for (let c = 0; c < C; c++) {
          h1 += w1[(e * F + f) * C + c] * xt[c];
          h3 += w3[(e * F + f) * C + c] * xt[c];
        }
        a[f] = siluScalar(h1) * h3;
      }
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let f = 0; f < F; f++) s += w2[(e * C + c) * F + f] * a[f];
        out[t * C + c] += gate * s;
      }
    }
  }
  return out;
}

testOnDevices("the SwiGLU expert block with device routing matches a dense per-token MoE", async (dev) => {
  for (const [T, K, E, C, F] of [[1, 2, 8, 32, 24], [6, 2, 8, 33, 20], [4, 3, 4, 16, 9]]) {
    const seed = T * 100 + C;
    const x = randn(T * C, seed);
    const logits = randn(T * E, seed + 1);
    const w1 = randn(E * F * C, seed + 2, 1 / Math.sqrt(C));
    const w3 = randn(E * F * C, seed + 3, 1 / Math.sqrt(C));
    const w2 = randn(E * C * F, seed + 4, 1 / Math.sqrt(F));
    using tx = Tensor.fromArray(dev, x, [T, C]);
    using tl = Tensor.fromArray(dev, logits, [T, E]);
    using tw1 = Tensor.fromArray(dev, w1, [E, F, C]);
    using tw3 = Tensor.fromArray(dev, w3, [E, F, C]);
    using tw2 = Tensor.fromArray(dev, w2, [E, C, F]);
    const route = topk(tl, K); // values, indices [T, K], never read back
    using idx = route.indices;
    using vals = route.values;
    using gates = softmax(vals); // [T, K]
    using weights = gates.reshape([T, 1, K]);
    using h1 = gatherMatmul(tx, tw1, idx); // [T, C] -> [T, K, F]
    using h3 = gatherMatmul(tx, tw3, idx); // [T, K, F]
    using a = siluMul(h1, h3); // [T, K, F]
    using y = gatherMatmul(a, tw2, idx); // [T, K, F] -> [T, K, C]
    using out = matmul(weights, y); // [T, 1, K] x [T, K, C] -> [T, 1, C]
    assert.deepEqual(out.shape, [T, 1, C]);
    const want = denseMoe(x, logits, w1, w3, w2, T, K, E, C, F);
    assertClose(await out.toArray(), want, { rtol: 1e-4, atol: 1e-5, what: `MoE T ${T} K ${K} E ${E}` });
  }
});

testOnDevices("gatherMatmul splits more than 65535 workgroups over two grid dimensions", async (dev) => {
  const [T, K, E, N, C] = [33000, 2, 3, 1, 3]; // T·K = 66000 pairs, one workgroup each
  const x = randn(T * C, 21);
  const w = randn(E * N * C, 22);
  const ids = Int32Array.from({ length: T * K }, (_, i) => (i * 7) % E);
  const want = new Float32Array(T * K * N);
  gatherMatmulRef(x, w, ids, want, { T, K, Kx: 1, E, N, C });
  assert.ok(T * K * Math.ceil(N / (GATHER_MATMUL_KERNEL.R * GATHER_MATMUL_KERNEL.WG)) > 65535);
  using y = gatherMatmul(
    Tensor.fromArray(dev, x, [T, C]),
    Tensor.fromArray(dev, w, [E, N, C]),
    Tensor.fromArray(dev, ids, [T, K]),
  );
  assertClose(await y.toArray(), want, { ...tol(C), what: "66000 pairs" });
});

testOnDevices(
  "out-of-range expert ids: CPU throws naming idx[t, k], WebGPU yields zero rows",
  async (dev) => {
    const [T, K, E, N, C] = [3, 2, 4, 5, 8];
    const x = randn(T * C, 31);
    const w = randn(E * N * C, 32);
    const bad = new Int32Array([1, 3, 0, -1, 4, 1 << 30]); // idx[1, 1], idx[2, 0], idx[2, 1] bad
    using tx = Tensor.fromArray(dev, x, [T, C]);
    using tw = Tensor.fromArray(dev, w, [E, N, C]);
    using tidx = Tensor.fromArray(dev, bad, [T, K]);
    if (dev.kind === "cpu") {
      assert.throws(() => gatherMatmul(tx, tw, tidx), {
        name: "RangeError",
        message: "Cannot run gatherMatmul: idx[1, 1] = -1 is out of range for w with 4 experts (0..3)",
      });
      return;
    }
    using y = gatherMatmul(tx, tw, tidx);
    const want = new Float32Array(T * K * N);
    gatherMatmulRef(x, w, bad, want, { T, K, Kx: 1, E, N, C });
    assert.deepEqual([...want.subarray(3 * N)], new Array(3 * N).fill(0), "reference zeroes bad rows");
    assertClose(await y.toArray(), want, { ...tol(C), what: "bad ids give zero rows" });
  },
);

testOnDevices("gatherMatmul rejects wrong ranks, dtypes and mismatched shapes, naming the shapes", (dev) => {
  using x = Tensor.zeros(dev, [3, 6]); // [T, C]
  using w = Tensor.zeros(dev, [4, 5, 6]); // [E, N, C]
  using idx = Tensor.zeros(dev, [3, 2], { dtype: "i32" }); // [T, K]
  using y = gatherMatmul(x, w, idx);
  assert.deepEqual(y.shape, [3, 2, 5]);

  using xc = Tensor.zeros(dev, [3, 7]);
  assert.throws(() => gatherMatmul(xc, w, idx), {
    name: "TypeError",
    message: "Cannot run gatherMatmul: x of shape [3,7], w of shape [4,5,6] and idx of shape [3,2]: " +
      "x has C = 7 but w has C = 6; x must be [T, C], [T, 1, C] or [T, K, C] with T = 3 (idx is [T, K]) " +
      "and C = 6 (w is [E, N, C])",
  });
  using xt = Tensor.zeros(dev, [4, 6]);
  assert.throws(
    () => gatherMatmul(xt, w, idx),
    /x of shape \[4,6\], w of shape \[4,5,6\] and idx of shape \[3,2\]: x has T = 4 but idx has T = 3/,
  );
  using xk = Tensor.zeros(dev, [3, 3, 6]);
  assert.throws(
    () => gatherMatmul(xk, w, idx),
    /x of shape \[3,3,6\].*: x has Kx = 3 inputs per token but idx picks K = 2 experts; Kx must be 1 or K/,
  );
  using x4 = Tensor.zeros(dev, [3, 2, 1, 6]);
  assert.throws(() => gatherMatmul(x4, w, idx), /x must have rank 2 to 3: received shape \[3,2,1,6\]/);
  using w2 = Tensor.zeros(dev, [5, 6]);
  assert.throws(
    () => gatherMatmul(x, w2, idx),
    /Cannot run gatherMatmul: w must have rank 3: received shape \[5,6\]/,
  );
  using idx1 = Tensor.zeros(dev, [6], { dtype: "i32" });
  assert.throws(() => gatherMatmul(x, w, idx1), /idx must have rank 2: received shape \[6\]/);
  using fidx = Tensor.zeros(dev, [3, 2]);
  assert.throws(
    () => gatherMatmul(x, w, fidx),
    /Cannot run gatherMatmul: idx must be i32 or u32: received f32/,
  );
  using xi = Tensor.zeros(dev, [3, 6], { dtype: "i32" });
  assert.throws(() => gatherMatmul(xi, w, idx), /x must be f32: received i32/);
  using wb = Tensor.zeros(dev, [4, 5, 6], { dtype: "bf16" });
  assert.throws(() => gatherMatmul(x, wb, idx), /w must be f32 or f16: received bf16/);
});

testOnDevices("gatherMatmul handles empty extents", async (dev) => {
  using x = Tensor.zeros(dev, [2, 0]); // C = 0: sums are zero
  using w = Tensor.zeros(dev, [3, 4, 0]);
  using idx = Tensor.fromArray(dev, new Int32Array([0, 2]), [2, 1]);
  using y = gatherMatmul(x, w, idx);
  assert.deepEqual(y.shape, [2, 1, 4]);
  assert.deepEqual([...await y.toArray()], new Array(8).fill(0));
  using none = Tensor.zeros(dev, [2, 0], { dtype: "i32" }); // K = 0
  using x1 = Tensor.zeros(dev, [2, 3]);
  using w1 = Tensor.zeros(dev, [3, 4, 3]);
  using z = gatherMatmul(x1, w1, none);
  assert.deepEqual(z.shape, [2, 0, 4]);
});
