import assert from "node:assert/strict";
import type { Device } from "../../src/device/device.ts";
import { attention, attentionRef } from "../../src/ops/attention.ts";
import { KvCache } from "../../src/ops/kv_cache.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";

// f32 online softmax on the GPU vs the float64 reference: logits are O(1..30), outputs O(1).
const TOL = { rtol: 2e-4, atol: 2e-5 };

interface Case {
  T: number;
  Hq: number;
  Hkv: number;
  D: number;
  pos: number;
  /** Cache rows; rows ≥ pos + T hold NaN, which must never be read. */
  S?: number;
  /** Multiplies q to make the logits large (softmax stability). */
  qScale?: number;
}

function data(c: Case, seed: number) {
  const S = c.S ?? c.pos + c.T;
  const q = randn(c.T * c.Hq * c.D, seed, c.qScale ?? 1);
  const k = randn(S * c.Hkv * c.D, seed + 1);
  const v = randn(S * c.Hkv * c.D, seed + 2);
  k.fill(NaN, (c.pos + c.T) * c.Hkv * c.D);
  v.fill(NaN, (c.pos + c.T) * c.Hkv * c.D);
  return { S, q, k, v };
}

async function check(dev: Device, c: Case, seed: number): Promise<void> {
  const { S, q, k, v } = data(c, seed);
  using tq = Tensor.fromArray(dev, q, [c.T, c.Hq, c.D]);
  using tk = Tensor.fromArray(dev, k, [S, c.Hkv, c.D]);
  using tv = Tensor.fromArray(dev, v, [S, c.Hkv, c.D]);
  using o = attention(tq, tk, tv, { pos: c.pos }); // [T, Hq, D]
  assert.deepEqual(o.shape, [c.T, c.Hq, c.D]);
  const want = new Float32Array(c.T * c.Hq * c.D);
  attentionRef(q, k, v, { ...c, scale: 1 / Math.sqrt(c.D) }, want);
  assertClose(await o.toArray(), want, { ...TOL, what: `attention ${JSON.stringify(c)}` });
}

testOnDevices("attention() matches attentionRef for prefill, decode and chunked prefill", async (dev) => {
  const cases: Case[] = [
    { T: 5, Hq: 4, Hkv: 1, D: 20, pos: 0 }, // prefill, G = 4
    { T: 1, Hq: 6, Hkv: 3, D: 33, pos: 37, S: 50 }, // decode, G = 2, odd D, spare cache rows
    { T: 3, Hq: 2, Hkv: 2, D: 64, pos: 9, S: 16 }, // chunked prefill, G = 1
    { T: 5, Hq: 6, Hkv: 3, D: 64, pos: 0 },
    { T: 1, Hq: 4, Hkv: 1, D: 33, pos: 0 }, // one key
    { T: 3, Hq: 4, Hkv: 2, D: 20, pos: 9, qScale: 30 }, // logits in the hundreds
  ];
  for (const [i, c] of cases.entries()) await check(dev, c, 10 * i + 1);
});

testOnDevices("attention() spans several key chunks in decode and long prefill", async (dev) => {
  await check(dev, { T: 1, Hq: 8, Hkv: 2, D: 128, pos: 2999, S: 3072 }, 101); // 12 chunks of 256 keys
  await check(dev, { T: 1, Hq: 3, Hkv: 1, D: 33, pos: 700, qScale: 8 }, 102);
  await check(dev, { T: 40, Hq: 2, Hkv: 1, D: 36, pos: 230 }, 103); // queries straddle a chunk edge
  // From T = 32 on, WebGPU takes the matmul route (src/ops/attention_matmul.ts).
  await check(dev, { T: 64, Hq: 8, Hkv: 2, D: 32, pos: 0 }, 104);
  await check(dev, { T: 33, Hq: 3, Hkv: 3, D: 20, pos: 5, S: 50, qScale: 8 }, 105);
});

testOnDevices("attention() honours an explicit scale", async (dev) => {
  const c = { T: 2, Hq: 2, Hkv: 1, D: 8, pos: 3 };
  const { S, q, k, v } = data(c, 7);
  using o = attention(
    Tensor.fromArray(dev, q, [2, 2, 8]),
    Tensor.fromArray(dev, k, [S, 1, 8]),
    Tensor.fromArray(dev, v, [S, 1, 8]),
    { pos: 3, scale: 0.7 },
  );
  const want = new Float32Array(32);
  attentionRef(q, k, v, { ...c, scale: 0.7 }, want);
  assertClose(await o.toArray(), want, TOL);
});

testOnDevices("attention() over a prefill equals successive decode steps through KvCache", async (dev) => {
  const [n, Hq, Hkv, D] = [7, 4, 2, 20];
  const q = randn(n * Hq * D, 21);
  const k = randn(n * Hkv * D, 22);
  const v = randn(n * Hkv * D, 23);
  const row = (a: Float32Array, width: number, t: number, T = 1) => a.subarray(t * width, (t + T) * width);

  using prefill = new KvCache(dev, { maxSeq: n, kvHeads: Hkv, headDim: D });
  const pos = prefill.append(Tensor.fromArray(dev, k, [n, Hkv, D]), Tensor.fromArray(dev, v, [n, Hkv, D]));
  assert.equal(pos, 0);
  using full = attention(Tensor.fromArray(dev, q, [n, Hq, D]), prefill.k, prefill.v, { pos }); // [n, Hq, D]
  const want = await full.toArray();

  using decode = new KvCache(dev, { maxSeq: n + 3, kvHeads: Hkv, headDim: D });
  // A 2-token chunk, then one token per step: the cache must stitch both.
  let t = 0;
  for (const T of [2, 1, 1, 1, 1, 1]) {
    const p = decode.append(
      Tensor.fromArray(dev, row(k, Hkv * D, t, T), [T, Hkv, D]),
      Tensor.fromArray(dev, row(v, Hkv * D, t, T), [T, Hkv, D]),
    );
    assert.equal(p, t);
    using o = attention(Tensor.fromArray(dev, row(q, Hq * D, t, T), [T, Hq, D]), decode.k, decode.v, {
      pos: p,
    });
    assertClose(await o.toArray(), row(want, Hq * D, t, T), { rtol: 1e-5, atol: 1e-6, what: `step at ${t}` });
    t += T;
  }
  assert.equal(decode.length, n);
});

Deno.test("attentionRef equals a naive float64 softmax(QKᵀ/√D + mask)·V", () => {
  const [T, Hq, Hkv, D, pos] = [3, 4, 2, 5, 2];
  const S = pos + T;
  const q = randn(T * Hq * D, 31);
  const k = randn(S * Hkv * D, 32);
  const v = randn(S * Hkv * D, 33);
  const got = new Float32Array(T * Hq * D);
  attentionRef(q, k, v, { T, Hq, Hkv, D, pos, scale: 1 / Math.sqrt(D) }, got);
  const want: number[] = [];
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < Hq; h++) {
      const g = Math.floor(h / (Hq / Hkv));
      const logits = Array.from({ length: S }, (_, j) => {
        let s = 0;
        for (let d = 0; d < D; d++) s += q[(t * Hq + h) * D + d] * k[(j * Hkv + g) * D + d];
        return s / Math.sqrt(D) + (j > pos + t ? -Infinity : 0);
      });
      const e = logits.map(Math.exp); // small logits: no max subtraction on purpose
      const z = e.reduce((a, b) => a + b, 0);
      for (let d = 0; d < D; d++) {
        want.push(e.reduce((acc, w, j) => acc + (w / z) * v[(j * Hkv + g) * D + d], 0));
      }
    }
  }
  assertClose(got, want, { rtol: 1e-6, atol: 1e-7 });
});

testOnDevices("attention() rejects bad shapes and positions with clear errors", (dev) => {
  using q = Tensor.zeros(dev, [2, 4, 8]);
  using k = Tensor.zeros(dev, [5, 2, 8]);
  using k3 = Tensor.zeros(dev, [5, 3, 8]);
  using d6 = Tensor.zeros(dev, [5, 2, 6]);
  assert.throws(
    () => attention(q, k, k, { pos: 4 }),
    /Cannot run attention: the cache holds 5 rows but pos \+ T = 4 \+ 2 = 6/,
  );
  assert.throws(
    () => attention(q, k3, k3, { pos: 0 }),
    /query heads must be a multiple of kv heads: received Hq = 4, Hkv = 3/,
  );
  assert.throws(() => attention(q, d6, d6, { pos: 0 }), /q and k head dims differ/);
  assert.throws(() => attention(q, k, d6, { pos: 0 }), /k and v must have the same shape/);
  assert.throws(() => attention(q, k, k, { pos: -1 }), /pos must be a non-negative integer: received -1/);
  assert.throws(() => attention(q.reshape([8, 8]), k, k, { pos: 0 }), /q must have rank 3/);
});
