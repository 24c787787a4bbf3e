import assert from "node:assert/strict";
import { createDevice } from "../../src/device/create_device.ts";
import { dequantize } from "../../src/ops/dequantize.ts";
import { dequantizeRef } from "../../src/ops/dequantize_ref.ts";
import { matmul, matmulRef } from "../../src/ops/matmul.ts";
import { qgemv } from "../../src/ops/qgemv.ts";
import { qmatmul, qmatmulRef } from "../../src/ops/qmatmul.ts";
import { disposeQuantized } from "../../src/tensor/quantized_tensor.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";
import { allCases, label, type QuantCase, randomQuantized } from "./_quantized.ts";

function rms(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s / Math.max(1, a.length));
}

// Tolerance as in qgemv_test.ts: 1e-5 relative with an absolute floor of 1e-5·sqrt(cols)·rms(x)·rms(Ŵ),
// the typical size of a dot product of cols terms; f32 accumulation errors are ~eps·sqrt(cols) of that.
function tol(cols: number, x: ArrayLike<number>, w: ArrayLike<number>) {
  return { rtol: 1e-5, atol: 1e-5 * Math.sqrt(cols) * rms(x) * rms(w) };
}

const TOKENS = [1, 3, 17];

testOnDevices(
  "qmatmul equals x · dequantize(q)ᵀ for every bits, axis and NF4 variant, T in {1, 3, 17}",
  async (dev) => {
    let seed = 1;
    for (const c of allCases()) {
      const { q, host } = randomQuantized(dev, c, seed++);
      const [rows, cols] = c.shape;
      const wh = dequantizeRef(host);
      using w = dequantize(q);
      for (const T of TOKENS) {
        const xh = randn(T * cols, seed * 7 + T);
        using x = Tensor.fromArray(dev, xh, [T, cols]);
        using y = qmatmul(x, q); // [T, cols] · [rows, cols]ᵀ -> [T, rows]
        assert.deepEqual(y.shape, [T, rows]);
        using want = matmul(x, w, { transB: true });
        const got = await y.toArray();
        const what = `qmatmul ${label(c)} T=${T}`;
        assertClose(got, await want.toArray(), { ...tol(cols, xh, wh), what });
        const ref = new Float32Array(T * rows);
        qmatmulRef(xh, host, ref, T);
        assertClose(got, ref, { ...tol(cols, xh, wh), what: `${what} vs qmatmulRef` });
      }
      disposeQuantized(q);
    }
  },
);

Deno.test("qmatmulRef equals dequantizeRef then matmulRef (transB)", async () => {
  const cpu = await createDevice({ backend: "cpu" });
  let seed = 300;
  for (const c of allCases()) {
    const { q, host } = randomQuantized(cpu, c, seed++);
    const [rows, cols] = c.shape;
    const T = 3;
    const x = randn(T * cols, seed);
    const got = new Float32Array(T * rows);
    const want = new Float32Array(T * rows);
    qmatmulRef(x, host, got, T);
    matmulRef(x, dequantizeRef(host), want, 1, T, rows, cols, true, false);
    assertClose(got, want, { rtol: 1e-5, atol: 0, what: `qmatmulRef ${label(c)}` });
    disposeQuantized(q);
  }
});

testOnDevices("qmatmul folds leading dimensions, and one token agrees with qgemv", async (dev) => {
  const c: QuantCase = { scheme: "nf4", bits: 4, groupSize: 16, axis: 1, shape: [70, 48], dq: true };
  const { q, host } = randomQuantized(dev, c, 11);
  const xh = randn(2 * 5 * 48, 12);
  using x = Tensor.fromArray(dev, xh, [2, 5, 48]);
  using y = qmatmul(x, q);
  assert.deepEqual(y.shape, [2, 5, 70]);
  const want = new Float32Array(10 * 70);
  qmatmulRef(xh, host, want, 10);
  const t = tol(48, xh, dequantizeRef(host));
  assertClose(await y.toArray(), want, { ...t, what: "qmatmul [2, 5, cols]" });
  using x1 = Tensor.fromArray(dev, xh.slice(0, 48), [1, 48]);
  using a = qmatmul(x1, q);
  using b = qgemv(q, x1);
  assertClose(await a.toArray(), await b.toArray(), { ...t, what: "qmatmul vs qgemv, T = 1" });
  disposeQuantized(q);
});

testOnDevices("qmatmul rejects a wrong x with a clear message", (dev) => {
  const { q } = randomQuantized(
    dev,
    { scheme: "affine", bits: 2, groupSize: 16, axis: 1, shape: [4, 32] },
    3,
  );
  using x = Tensor.zeros(dev, [3, 31]);
  assert.throws(
    () => qmatmul(x, q),
    /Cannot run qmatmul: x of shape \[3,31\] and weight of shape \[4,32\]: the last dimension of x must be 32/,
  );
  using xi = Tensor.zeros(dev, [3, 32], { dtype: "i32" });
  assert.throws(() => qmatmul(xi, q), /Cannot run qmatmul: x must be f32: received i32/);
  disposeQuantized(q);
});

// The last code word of a row runs past cols (40 = 2.5 two-bit words): its x lanes would read the next
// token's row, so a NaN there must not leak into this token's outputs.
testOnDevices("qmatmul keeps a token's outputs clean of the next token's values", async (dev) => {
  const c: QuantCase = { scheme: "affine", bits: 2, groupSize: 8, axis: 1, shape: [9, 40] };
  const { q, host } = randomQuantized(dev, c, 21);
  const xh = randn(2 * 40, 22);
  xh[40] = NaN; // token 1, column 0
  using x = Tensor.fromArray(dev, xh, [2, 40]);
  using y = qmatmul(x, q);
  const got = await y.toArray();
  const want = new Float32Array(2 * 9);
  qmatmulRef(xh, host, want, 2);
  assertClose(got.slice(0, 9), want.slice(0, 9), {
    ...tol(40, xh.slice(0, 40), dequantizeRef(host)),
    what: "token 0",
  });
  assert.ok(got.slice(9).every(Number.isNaN), "token 1 reads its own NaN");
  disposeQuantized(q);
});
