import assert from "node:assert/strict";
import { createDevice } from "../../src/device/create_device.ts";
import { dequantize } from "../../src/ops/dequantize.ts";
import { dequantizeRef } from "../../src/ops/dequantize_ref.ts";
import { gemv, gemvRef } from "../../src/ops/gemv.ts";
import { qgemv, qgemvRef } from "../../src/ops/qgemv.ts";
import { disposeQuantized } from "../../src/tensor/quantized_tensor.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";
import { allCases, label, type QuantCase, randomQuantized } from "./_quantized.ts";

/** Root mean square. */
function rms(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s / Math.max(1, a.length));
}

// Tolerance: 1e-5 relative, with an absolute floor scaled to the size of a dot product of cols
// terms, atol = 1e-5·sqrt(cols)·rms(x)·rms(Ŵ) (the typical |y| for unrelated x and Ŵ; a row whose sum
// cancels to ~0 is judged against that scale, not against itself). f32 accumulation errors grow like
// eps·sqrt(cols)·rms(x)·rms(Ŵ) with eps = 6e-8, and the affine fold s·(Σq·x − z·Σx) loses at most a
// factor ~2^bits of that per group: both far below 1e-5 of the scale, so a wrong code, group, scale
// or slot (errors of order rms(x)·rms(Ŵ) per element) fails.
function tol(cols: number, x: ArrayLike<number>, w: ArrayLike<number>) {
  return { rtol: 1e-5, atol: 1e-5 * Math.sqrt(cols) * rms(x) * rms(w) };
}

async function checkCase(dev: Parameters<typeof randomQuantized>[0], c: QuantCase, seed: number) {
  const { q, host } = randomQuantized(dev, c, seed);
  const cols = c.shape[1];
  const xh = randn(cols, seed + 1);
  using x = Tensor.fromArray(dev, xh);
  using y = qgemv(q, x);
  assert.deepEqual(y.shape, [c.shape[0]]);
  using w = dequantize(q); // [rows, cols]
  using want = gemv(w, x); // dequantize-then-f32-GEMV on the same device
  const wh = dequantizeRef(host);
  const got = await y.toArray();
  assertClose(got, await want.toArray(), { ...tol(cols, xh, wh), what: `qgemv ${label(c)}` });
  const ref = new Float32Array(c.shape[0]);
  qgemvRef(host, xh, ref); // and the host reference, independent of the device's dequantize
  assertClose(got, ref, { ...tol(cols, xh, wh), what: `qgemv ${label(c)} vs qgemvRef` });
  disposeQuantized(q);
}

testOnDevices(
  "qgemv equals dequantize-then-gemv for every bits, axis and NF4 variant on odd shapes",
  async (dev) => {
    let seed = 1;
    for (const c of allCases()) await checkCase(dev, c, seed++);
  },
);

// Rows past 2048 use R = 32 rows per invocation (the bench's kernel) with a ragged last workgroup.
testOnDevices("qgemv with 32 rows per invocation and a ragged tail", async (dev) => {
  const shape: [number, number] = [2053, 96];
  let seed = 500;
  for (const bits of [2, 3, 4, 8] as const) {
    await checkCase(dev, { scheme: "affine", bits, groupSize: 32, axis: 1, shape }, seed++);
    await checkCase(dev, { scheme: "affine", bits, groupSize: 96, axis: 1, shape }, seed++);
  }
  await checkCase(dev, { scheme: "nf4", bits: 4, groupSize: 32, axis: 1, shape }, seed++);
  await checkCase(dev, { scheme: "nf4", bits: 4, groupSize: 32, axis: 1, shape, dq: true }, seed++);
  await checkCase(dev, { scheme: "affine", bits: 4, groupSize: 64, axis: 0, shape: [2048, 40] }, seed++);
});

Deno.test("qgemvRef equals dequantizeRef then gemvRef", async () => {
  const cpu = await createDevice({ backend: "cpu" });
  let seed = 900;
  for (const c of allCases()) {
    const { q, host } = randomQuantized(cpu, c, seed++);
    const [rows, cols] = c.shape;
    const x = randn(cols, seed);
    const got = new Float32Array(rows);
    const want = new Float32Array(rows);
    qgemvRef(host, x, got);
    gemvRef(dequantizeRef(host), x, want, rows, cols);
    assertClose(got, want, { rtol: 1e-5, atol: 0, what: `qgemvRef ${label(c)}` });
    disposeQuantized(q);
  }
});

testOnDevices("qgemv of x [1, cols] gives [1, rows]", async (dev) => {
  const c: QuantCase = { scheme: "affine", bits: 3, groupSize: 20, axis: 1, shape: [33, 60] };
  const { q, host } = randomQuantized(dev, c, 77);
  const xh = randn(60, 78);
  using x = Tensor.fromArray(dev, xh, [1, 60]);
  using y = qgemv(q, x);
  assert.deepEqual(y.shape, [1, 33]);
  const want = new Float32Array(33);
  qgemvRef(host, xh, want);
  assertClose(await y.toArray(), want, { ...tol(60, xh, dequantizeRef(host)), what: "qgemv [1, cols]" });
  disposeQuantized(q);
});

testOnDevices("qgemv rejects a wrong x with a message naming both shapes", (dev) => {
  const { q } = randomQuantized(dev, { scheme: "affine", bits: 4, groupSize: 8, axis: 1, shape: [4, 16] }, 3);
  using x5 = Tensor.zeros(dev, [5]);
  assert.throws(
    () => qgemv(q, x5),
    /Cannot run qgemv: weight of shape \[4,16\] and x of shape \[5\]: x must be \[16\] or \[1, 16\]/,
  );
  using x2 = Tensor.zeros(dev, [2, 16]);
  assert.throws(() => qgemv(q, x2), /x of shape \[2,16\].*use qmatmul\(x, q\)/);
  using xi = Tensor.zeros(dev, [16], { dtype: "i32" });
  assert.throws(() => qgemv(q, xi), /Cannot run qgemv: x must be f32: received i32/);
  assert.throws(() => qgemv({ ...q, bits: 5 as 4 }, x5), /bits must be one of 2, 3, 4, 8: received 5/);
  assert.throws(
    () => qgemv({ ...q, groupSize: 5 }, x5),
    /group size 5 must be a positive integer dividing the row length/,
  );
  using short = Tensor.zeros(dev, [3], { dtype: "u32" });
  assert.throws(
    () => qgemv({ ...q, meta: short }, x5),
    /meta of a \[4,16\] affine weight .* must be u32\[8\]: received u32\[3\]/,
  );
  disposeQuantized(q);
});
