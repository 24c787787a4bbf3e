import assert from "node:assert/strict";
import type { Device } from "../../src/device/device.ts";
import { attentionBackward, attentionBackwardRef } from "../../src/ops/attention_backward.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";

interface Case {
  T: number;
  Hq: number;
  Hkv: number;
  D: number;
  pos: number;
  /** Key rows; rows ≥ pos + T hold NaN, which must never be read. */
  S?: number;
  /** Multiplies q to make the logits large. */
  qScale?: number;
}

/** Independent float64 causal GQA attention (plain softmax, no max subtraction). */
function attention64(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  c: Case,
  scale: number,
): Float64Array {
  const { T, Hq, Hkv, D, pos } = c;
  const out = new Float64Array(T * Hq * D);
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < Hq; h++) {
      const kvh = Math.floor(h / (Hq / Hkv));
      const w: number[] = [];
      for (let j = 0; j <= pos + t; j++) {
        let s = 0;
        for (let d = 0; d < D; d++) s += q[(t * Hq + h) * D + d] * k[(j * Hkv + kvh) * D + d];
        w.push(Math.exp(s * scale));
      }
      const z = w.reduce((a, b) => a + b, 0);
      w.forEach((wj, j) => {
        for (let d = 0; d < D; d++) out[(t * Hq + h) * D + d] += (wj / z) * v[(j * Hkv + kvh) * D + d];
      });
    }
  }
  return out;
}

/** Central-difference gradient of `loss` at `v` (every entry), in float64. */
function fdGrad(loss: (v: Float64Array) => number, v: Float64Array, h: number): Float64Array {
  const g = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const keep = v[i];
    v[i] = keep + h;
    const up = loss(v);
    v[i] = keep - h;
    const down = loss(v);
    v[i] = keep;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

function data(c: Case, seed: number) {
  const S = c.S ?? c.pos + c.T;
  const q = randn(c.T * c.Hq * c.D, seed, c.qScale ?? 1);
  const k = randn(S * c.Hkv * c.D, seed + 1);
  const v = randn(S * c.Hkv * c.D, seed + 2);
  const dy = randn(c.T * c.Hq * c.D, seed + 3);
  k.fill(NaN, (c.pos + c.T) * c.Hkv * c.D);
  v.fill(NaN, (c.pos + c.T) * c.Hkv * c.D);
  return { S, q, k, v, dy };
}

// L = Σ dy ⊙ attention64(q, k, v): full gradients by float64 central differences (h = 1e-5, exact
// to ~1e-9) against the reference, whose only error is the final f32 rounding (rtol 1e-5, atol 1e-6).
Deno.test("attentionBackwardRef() matches float64 central differences of the forward", () => {
  let seed = 1;
  for (const T of [1, 4, 7]) {
    for (const [Hq, Hkv] of [[2, 1], [4, 2], [3, 3]]) {
      seed += 4;
      const D = [4, 6, 8][seed % 3];
      const c: Case = { T, Hq, Hkv, D, pos: [0, 3][seed % 2], S: seed % 4 === 1 ? undefined : T + 5 };
      const { S, q, k, v, dy } = data(c, seed);
      const scale = 1 / Math.sqrt(D);
      const dq = new Float32Array(q.length);
      const dk = new Float32Array(k.length);
      const dv = new Float32Array(v.length);
      attentionBackwardRef(q, k, v, dy, { ...c, scale }, dq, dk, dv);
      const n = (c.pos + T) * Hkv * D; // rows that are read
      const [q64, k64, v64] = [q, k.subarray(0, n), v.subarray(0, n)].map((a) => Float64Array.from(a));
      const loss = (a: Float64Array, b: Float64Array, e: Float64Array) =>
        dot(dy, attention64(a, b, e, c, scale));
      const what = `${JSON.stringify(c)}`;
      const tol = { rtol: 1e-5, atol: 1e-6 };
      assertClose(dq, fdGrad((x) => loss(x, k64, v64), q64, 1e-5), { ...tol, what: `dq ${what}` });
      assertClose(dk.subarray(0, n), fdGrad((x) => loss(q64, x, v64), k64, 1e-5), {
        ...tol,
        what: `dk ${what}`,
      });
      assertClose(dv.subarray(0, n), fdGrad((x) => loss(q64, k64, x), v64, 1e-5), {
        ...tol,
        what: `dv ${what}`,
      });
      assert.ok(dk.subarray(n).every((x) => x === 0) && dv.subarray(n).every((x) => x === 0));
      assert.equal(S * Hkv * D, k.length);
    }
  }
});

/**
 * rtol 1e-4 plus atol 2e-5 × the gradient's rms (f32 sums over up to hundreds of keys and queries),
 * times `grow` for large logits: an f32 logit of size L is off by ~L·6e-8, and so is P relatively.
 */
function assertGrad(got: Float32Array, want: Float32Array, what: string, grow = 1): void {
  const rms = Math.sqrt(dot(want, want) / Math.max(1, want.length));
  assertClose(got, want, { rtol: 1e-4, atol: 2e-5 * grow * rms + 1e-12, what });
}

async function check(dev: Device, c: Case, seed: number): Promise<void> {
  const { S, q, k, v, dy } = data(c, seed);
  using tq = Tensor.fromArray(dev, q, [c.T, c.Hq, c.D]);
  using tk = Tensor.fromArray(dev, k, [S, c.Hkv, c.D]);
  using tv = Tensor.fromArray(dev, v, [S, c.Hkv, c.D]);
  using tdy = Tensor.fromArray(dev, dy, [c.T, c.Hq, c.D]);
  const g = attentionBackward(tq, tk, tv, tdy, { pos: c.pos });
  using dq = g.dq;
  using dk = g.dk;
  using dv = g.dv;
  assert.deepEqual(dq.shape, [c.T, c.Hq, c.D]);
  assert.deepEqual(dk.shape, [S, c.Hkv, c.D]);
  assert.deepEqual(dv.shape, [S, c.Hkv, c.D]);
  const want = [new Float32Array(q.length), new Float32Array(k.length), new Float32Array(v.length)];
  attentionBackwardRef(q, k, v, dy, { ...c, scale: 1 / Math.sqrt(c.D) }, want[0], want[1], want[2]);
  const what = JSON.stringify(c);
  assertGrad(await dq.toArray(), want[0], `dq ${what}`, c.qScale ?? 1);
  assertGrad(await dk.toArray(), want[1], `dk ${what}`, c.qScale ?? 1);
  assertGrad(await dv.toArray(), want[2], `dv ${what}`, c.qScale ?? 1);
}

testOnDevices("attentionBackward() matches attentionBackwardRef on odd shapes", async (dev) => {
  const cases: Case[] = [
    { T: 37, Hq: 4, Hkv: 1, D: 20, pos: 0 }, // training shape, G = 4
    { T: 37, Hq: 6, Hkv: 3, D: 33, pos: 0 }, // odd D
    { T: 5, Hq: 3, Hkv: 3, D: 33, pos: 9, S: 20 }, // chunked prefill, spare rows (NaN) get zeros
    { T: 1, Hq: 4, Hkv: 2, D: 64, pos: 40, S: 48 }, // decode
    { T: 7, Hq: 4, Hkv: 2, D: 20, pos: 3, qScale: 20 }, // large logits
  ];
  for (const [i, c] of cases.entries()) await check(dev, c, 10 * i + 1);
});

testOnDevices("attentionBackward() spans several chunks of keys and query pairs", async (dev) => {
  await check(dev, { T: 300, Hq: 2, Hkv: 1, D: 16, pos: 0 }, 101); // 300 keys, 600 (t, h) pairs
  await check(dev, { T: 3, Hq: 2, Hkv: 2, D: 128, pos: 270 }, 102); // D = 128, 273 keys
});

// From T = 16 on, WebGPU takes the matmul route (src/ops/attention_matmul.ts); same tolerance.
testOnDevices("attentionBackward() matches attentionBackwardRef at training shapes", async (dev) => {
  await check(dev, { T: 64, Hq: 8, Hkv: 2, D: 48, pos: 0 }, 201); // G = 4, vec4 row kernel
  await check(dev, { T: 17, Hq: 2, Hkv: 2, D: 8, pos: 4, S: 30 }, 202); // G = 1, spare NaN rows
  await check(dev, { T: 33, Hq: 4, Hkv: 2, D: 32, pos: 0, qScale: 20 }, 203); // odd T, large logits
});

testOnDevices("attentionBackward() is deterministic", async (dev) => {
  const { S, q, k, v, dy } = data({ T: 40, Hq: 4, Hkv: 2, D: 12, pos: 0 }, 7);
  using tq = Tensor.fromArray(dev, q, [40, 4, 12]);
  using tk = Tensor.fromArray(dev, k, [S, 2, 12]);
  using tv = Tensor.fromArray(dev, v, [S, 2, 12]);
  using tdy = Tensor.fromArray(dev, dy, [40, 4, 12]);
  const a = attentionBackward(tq, tk, tv, tdy, { pos: 0 });
  const b = attentionBackward(tq, tk, tv, tdy, { pos: 0 });
  for (const key of ["dq", "dk", "dv"] as const) {
    assert.deepEqual(await a[key].toArray(), await b[key].toArray(), key);
    a[key].dispose();
    b[key].dispose();
  }
});

testOnDevices("attentionBackward() rejects mismatched shapes and positions", (dev) => {
  using q = Tensor.zeros(dev, [2, 4, 8]);
  using k = Tensor.zeros(dev, [3, 2, 8]);
  using k3 = Tensor.zeros(dev, [3, 3, 8]);
  using k6 = Tensor.zeros(dev, [3, 2, 6]);
  using dy = Tensor.zeros(dev, [2, 4, 8]);
  using dy2 = Tensor.zeros(dev, [2, 4, 4]);
  using flat = Tensor.zeros(dev, [2, 32]);
  const re = (s: string) => new RegExp(`^TypeError: Cannot run attentionBackward: ${s}`);
  assert.throws(() => attentionBackward(q, k, k, dy2, { pos: 0 }), (e) => {
    assert.match(String(e), re(`dy must have the shape of q \\[2,4,8\\]: received \\[2,4,4\\]`));
    return true;
  });
  assert.throws(
    () => attentionBackward(q, k, k3, dy, { pos: 0 }),
    /k and v must have the same shape: received \[3,2,8\] and \[3,3,8\]/,
  );
  assert.throws(() => attentionBackward(q, k6, k6, dy, { pos: 0 }), /q and k head dims differ/);
  assert.throws(
    () => attentionBackward(q, k3, k3, dy, { pos: 0 }),
    /query heads must be a multiple of kv heads: received Hq = 4, Hkv = 3/,
  );
  assert.throws(
    () => attentionBackward(flat, k, k, dy, { pos: 0 }),
    /q must have rank 3: received shape \[2,32\]/,
  );
  assert.throws(
    () => attentionBackward(q, k, k, dy, { pos: 2 }),
    /k and v hold 3 rows but pos \+ T = 2 \+ 2 = 4/,
  );
  assert.throws(() => attentionBackward(q, k, k, dy, { pos: -1 }), /pos must be a non-negative integer/);
});
