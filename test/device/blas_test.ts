/**
 * The CPU backend's BLAS path against the TypeScript references: every op that hands work to
 * `cblas_sgemm` / `cblas_sgemv` runs on a CPU device with the BLAS and on one without, on odd
 * shapes, both transposes, batched and shared operands and offset views. Registered as ignored,
 * with the reason, where no BLAS can be loaded.
 */
import assert from "node:assert/strict";
import { loadBlas } from "../../src/device/blas.ts";
import { createDevice } from "../../src/device/create_device.ts";
import type { Device } from "../../src/device/device.ts";
import { attention } from "../../src/ops/attention.ts";
import { attentionBackward } from "../../src/ops/attention_backward.ts";
import { gatherMatmul } from "../../src/ops/gather_matmul.ts";
import { gemv } from "../../src/ops/gemv.ts";
import { matmul, type MatmulOptions } from "../../src/ops/matmul.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn } from "../_helpers.ts";

const blas = await loadBlas({ quiet: true });
const withBlas: Device = await createDevice({ backend: "cpu" });
const reference: Device = await createDevice({ backend: "cpu", blas: false });
const ignore = blas === null;
const why = ignore ? " (ignored: no BLAS found; apt-get install libopenblas0-pthread)" : "";

function test(name: string, fn: () => Promise<void> | void): void {
  Deno.test({ name: name + why, ignore, fn });
}

/** Runs `f` on both devices with the same host inputs; returns both outputs. */
async function both(
  inputs: { data: Float32Array | Int32Array; shape: number[] }[],
  f: (...t: Tensor[]) => Tensor | Tensor[],
): Promise<[Float32Array[], Float32Array[]]> {
  const out: Float32Array[][] = [];
  for (const dev of [withBlas, reference]) {
    const ts = inputs.map((x) => Tensor.fromArray(dev, x.data, x.shape));
    const ys = [f(...ts)].flat();
    out.push(await Promise.all(ys.map(async (y) => new Float32Array(await y.toArray()))));
    for (const t of [...ts, ...ys]) t.dispose();
  }
  return [out[0], out[1]];
}

const tol = (K: number) => ({ rtol: 1e-4, atol: 1e-5 * Math.sqrt(K) });

test("the CPU device reports the BLAS it loaded", () => {
  assert.ok(withBlas.info.blas, "createDevice({ backend: 'cpu' }) should load the BLAS");
  assert.match(withBlas.info.adapter, /thread/);
  assert.ok(withBlas.info.blas.threads >= 1);
  assert.equal(reference.info.blas, undefined);
  assert.equal(reference.info.adapter, "cpu (TypeScript reference)");
});

test("matmul with a BLAS equals the reference: odd shapes, transA, transB, batched and shared b", async () => {
  // [B, M, N, K], b batched?, transA, transB
  const cases: [number[], boolean, boolean, boolean][] = [];
  for (const dims of [[1, 1, 1, 1], [1, 3, 17, 63], [1, 65, 129, 31], [3, 7, 5, 9], [2, 1, 33, 130]]) {
    for (const bBatched of dims[0] > 1 ? [true, false] : [false]) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) cases.push([dims, bBatched, transA, transB]);
      }
    }
  }
  for (const [[B, M, N, K], bBatched, transA, transB] of cases) {
    const seed = B * 1e6 + M * 1e4 + N * 100 + K;
    const aInner = transA ? [K, M] : [M, K];
    const bInner = transB ? [N, K] : [K, N];
    const aShape = B > 1 ? [B, ...aInner] : aInner;
    const bShape = bBatched ? [B, ...bInner] : bInner;
    const options: MatmulOptions = { transA, transB };
    const [[got], [want]] = await both(
      [{ data: randn(B * M * K, seed), shape: aShape }, {
        data: randn((bBatched ? B : 1) * N * K, seed + 1),
        shape: bShape,
      }],
      (a, b) => matmul(a, b, options),
    );
    assertClose(got, want, { ...tol(K), what: `[${aShape}] x [${bShape}] ${JSON.stringify(options)}` });
  }
});

test("matmul with a BLAS reads tensors that are views into a larger storage", async () => {
  for (const dev of [withBlas, reference]) {
    using whole = Tensor.fromArray(dev, randn(6 * 5, 3), [6, 5]);
    using view = whole.reshape([2, 3, 5]); // shares storage: the second batch starts 15 floats in
    using w = Tensor.fromArray(dev, randn(4 * 5, 4), [4, 5]);
    using y = matmul(view, w, { transB: true }); // [2, 3, 5] x [4, 5]ᵀ -> [2, 3, 4]
    using y2 = matmul(whole, w, { transB: true }); // [6, 5] x [4, 5]ᵀ -> [6, 4]
    assertClose(await y.toArray(), await y2.toArray(), { rtol: 0, atol: 0, what: dev.info.adapter });
  }
});

test("gemv with a BLAS equals the reference on odd shapes", async () => {
  for (const [rows, cols] of [[1, 1], [3, 17], [129, 63], [5, 4099]]) {
    const [[got], [want]] = await both(
      [{ data: randn(rows * cols, rows + cols), shape: [rows, cols] }, {
        data: randn(cols, cols),
        shape: [1, cols],
      }],
      (w, x) => gemv(w, x),
    );
    assertClose(got, want, { ...tol(cols), what: `gemv [${rows}, ${cols}]` });
  }
});

test("gatherMatmul with a BLAS groups pairs by expert and equals the reference", async () => {
  // [T, K, Kx, E, N, C]: decode (one pair per expert: sgemv), prefill (sgemm per expert), unused experts.
  for (
    const [T, K, Kx, E, N, C] of [[1, 2, 1, 8, 17, 9], [13, 2, 1, 5, 7, 33], [9, 3, 3, 4, 65, 3], [
      4,
      1,
      1,
      7,
      5,
      5,
    ]]
  ) {
    const ids = new Int32Array(T * K);
    for (let i = 0; i < ids.length; i++) ids[i] = (i * 5 + Math.floor(i / K)) % Math.min(E, 3 + (i % 2));
    const [[got], [want]] = await both(
      [
        { data: randn(T * Kx * C, T + C), shape: Kx === 1 ? [T, C] : [T, Kx, C] },
        { data: randn(E * N * C, E + N), shape: [E, N, C] },
        { data: ids, shape: [T, K] },
      ],
      (x, w, idx) => gatherMatmul(x, w, idx),
    );
    assertClose(got, want, { ...tol(C), what: `gatherMatmul T=${T} K=${K} Kx=${Kx} E=${E} N=${N} C=${C}` });
  }
});

test("attention and its backward with a BLAS (matmul route) equal the reference", async () => {
  for (const [T, pos, Hq, Hkv, D] of [[5, 0, 4, 2, 7], [17, 3, 6, 3, 16], [2, 9, 2, 1, 5]]) {
    const S = pos + T;
    const inputs = [
      { data: randn(T * Hq * D, T), shape: [T, Hq, D] },
      { data: randn(S * Hkv * D, S), shape: [S, Hkv, D] },
      { data: randn(S * Hkv * D, S + 1), shape: [S, Hkv, D] },
      { data: randn(T * Hq * D, T + 2), shape: [T, Hq, D] },
    ];
    const [got, want] = await both(inputs, (q, k, v, dy) => {
      const o = attention(q, k, v, { pos });
      const g = attentionBackward(q, k, v, dy, { pos });
      return [o, g.dq, g.dk, g.dv];
    });
    ["out", "dq", "dk", "dv"].forEach((name, i) =>
      assertClose(got[i], want[i], {
        ...tol(S),
        what: `${name} T=${T} pos=${pos} Hq=${Hq} Hkv=${Hkv} D=${D}`,
      })
    );
  }
});

test("FERRY_BLAS names a library that cannot load: a clear error", async () => {
  await assert.rejects(
    () => loadBlas({ path: "/nonexistent/libopenblas.so" }),
    /Cannot use FERRY_BLAS=\/nonexistent\/libopenblas\.so/,
  );
  await assert.rejects(() => createDevice({ backend: "cpu", blas: 3 as unknown as string }), /blas must be/);
});
