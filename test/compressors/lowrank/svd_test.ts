/**
 * Truncated SVD and the low-rank compressors against torch.linalg.svd in float64
 * (test/fixtures/make_lowrank_golden.py), plus the Eckart–Young optimality of the residual fit.
 */
import assert from "node:assert/strict";
import { SafetensorsFile } from "../../../src/io/safetensors.ts";
import { truncatedSvd } from "../../../src/compressors/lowrank/svd.ts";
import {
  compensateQuantization,
  lowRankFactorize,
  lowRankProduct,
} from "../../../src/compressors/lowrank/low_rank.ts";
import { assertClose, randn } from "../../_helpers.ts";

using file = await SafetensorsFile.open(
  new URL("../../fixtures/lowrank/golden.safetensors", import.meta.url),
);
const golden = new Map<string, { shape: readonly number[]; data: Float32Array }>();
for (const name of file.names) {
  golden.set(name, { shape: (await file.read(name)).shape, data: await file.readF32(name) });
}
const CASES = ["tall", "wide", "decay", "heavy", "lowrank"];
const frob = (x: ArrayLike<number>) => Math.sqrt(Array.from(x).reduce((s, v) => s + v * v, 0));

for (const method of ["exact", "randomized"] as const) {
  // The randomized range finder is only accurate where the spectrum decays past the rank (its error
  // falls like (σ_{l+1}/σ_r)^(2q+1)); on flat Gaussian spectra it is an approximation by design.
  const cases = method === "exact" ? CASES : ["decay", "lowrank"];
  Deno.test(`truncatedSvd (${method}) matches torch's singular values and rank-4 reconstruction`, () => {
    for (const name of cases) {
      const w = golden.get(`${name}.w`)!;
      const s = golden.get(`${name}.s`)!.data;
      const shape = w.shape as [number, number];
      const f = truncatedSvd(w.data, shape, 4, { method, oversample: 6, powerIterations: 4 });
      // Singular values of an f32 matrix in f64 arithmetic: both sides agree to f32 rounding of
      // the inputs; the rank-deficient case's trailing values are ~1e-7 and only checked absolutely.
      assertClose(f.s, s.subarray(0, 4), { rtol: 2e-5, atol: 1e-5 * s[0], what: `${name} singular values` });
      const fac = lowRankFactorize(w.data, shape, 4, { method, oversample: 6, powerIterations: 4 });
      assertClose(lowRankProduct(fac), golden.get(`${name}.rank4`)!.data, {
        rtol: 1e-4,
        atol: 1e-5 * s[0],
        what: `${name} rank-4 reconstruction`,
      });
    }
  });
}

Deno.test("truncatedSvd: orthonormal factors, full rank reproduces W", () => {
  const [m, n] = [23, 17];
  const w = randn(m * n, 3);
  const f = truncatedSvd(w, [m, n], n);
  for (let a = 0; a < n; a++) {
    for (let b = 0; b < n; b++) {
      let du = 0, dv = 0;
      for (let i = 0; i < m; i++) du += f.u[i * n + a] * f.u[i * n + b];
      for (let i = 0; i < n; i++) dv += f.vt[a * n + i] * f.vt[b * n + i];
      assert.ok(Math.abs(du - (a === b ? 1 : 0)) < 1e-5, `UᵀU[${a},${b}] = ${du}`);
      assert.ok(Math.abs(dv - (a === b ? 1 : 0)) < 1e-5, `VVᵀ[${a},${b}] = ${dv}`);
    }
  }
  assertClose(lowRankProduct(lowRankFactorize(w, [m, n], n)), w, { rtol: 1e-4, atol: 1e-5 });
});

Deno.test("compensateQuantization is the best rank-r correction (error = tail singular values)", () => {
  const [m, n, r] = [31, 20, 5];
  const w = randn(m * n, 11);
  const rounded = w.map((v) => Math.round(v * 2) / 2); // a crude quantizer, step 0.5
  const c = compensateQuantization(w, rounded, [m, n], r);
  const err = w.map((v, i) => v - rounded[i]);
  const s = truncatedSvd(err, [m, n], Math.min(m, n)).s;
  const tail = Math.sqrt(Array.from(s.subarray(r)).reduce((acc, v) => acc + v * v, 0));
  const got = frob(w.map((v, i) => v - c.reconstruction[i]));
  assert.ok(Math.abs(got - tail) < 1e-4 * tail, `residual ${got} vs Eckart–Young ${tail}`);
  assert.ok(got < frob(err), "compensation must lower the error");
  assert.equal(c.residual.bytes, 4 * r * (m + n));
});

Deno.test("truncatedSvd rejects bad ranks and shapes with clear errors", () => {
  const w = new Float32Array(12);
  assert.throws(() => truncatedSvd(w, [3, 4], 4), /rank must be an integer in \[1, 3\]/);
  assert.throws(() => truncatedSvd(w, [3, 4], 0), /rank must be an integer/);
  assert.throws(() => truncatedSvd(w, [5, 4], 2), /data has 12 values but shape \[5,4\] needs 20/);
  assert.throws(() => compensateQuantization(w, new Float32Array(11), [3, 4], 1), /dequantized one 11/);
});
