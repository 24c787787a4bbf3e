/** Attention against a float64 reference (GQA, biases, both q/k-norm variants), with and without a cache. */
import assert from "node:assert/strict";
import { KvCache } from "../../src/ops/kv_cache.ts";
import { Attention } from "../../src/nn/attention.ts";
import { Linear } from "../../src/nn/linear.ts";
import { RMSNorm } from "../../src/nn/rms_norm.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import type { Device } from "../../src/device/device.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";
import { attendRef, linearRef, rmsRef, ropeRef } from "./_ref.ts";

const [T, C, H, Hkv, D, THETA, EPS] = [5, 16, 4, 2, 8, 10000, 1e-6];

type Variant = { bias: boolean; qkNorm: "none" | "per_head" | "full" };

function weights(v: Variant) {
  const w = {
    q: randn(H * D * C, 1, 0.3),
    k: randn(Hkv * D * C, 2, 0.3),
    v: randn(Hkv * D * C, 3, 0.3),
    o: randn(C * H * D, 4, 0.3),
  };
  const b = { q: randn(H * D, 5, 0.1), k: randn(Hkv * D, 6, 0.1), v: randn(Hkv * D, 7, 0.1) };
  const full = v.qkNorm === "full";
  const n = {
    q: randn(full ? H * D : D, 8, 0.1).map((x) => 1 + x),
    k: randn(full ? Hkv * D : D, 9, 0.1).map((x) => 1 + x),
  };
  return { w, b, n };
}

function build(dev: Device, v: Variant): Attention {
  const { w, b, n } = weights(v);
  const lin = (x: Float32Array, o: number, i: number, bias?: Float32Array) =>
    new Linear(Tensor.fromArray(dev, x, [o, i]), bias && v.bias ? Tensor.fromArray(dev, bias) : undefined);
  return new Attention({
    qProj: lin(w.q, H * D, C, b.q),
    kProj: lin(w.k, Hkv * D, C, b.k),
    vProj: lin(w.v, Hkv * D, C, b.v),
    oProj: lin(w.o, C, H * D),
    ...(v.qkNorm === "none" ? {} : {
      qNorm: new RMSNorm(Tensor.fromArray(dev, n.q), EPS),
      kNorm: new RMSNorm(Tensor.fromArray(dev, n.k), EPS),
    }),
  }, { heads: H, kvHeads: Hkv, headDim: D, ropeTheta: THETA, qkNorm: v.qkNorm });
}

function reference(x: Float32Array, v: Variant): Float64Array {
  const { w, b, n } = weights(v);
  let q = linearRef(x, w.q, T, C, H * D, v.bias ? b.q : undefined);
  let k = linearRef(x, w.k, T, C, Hkv * D, v.bias ? b.k : undefined);
  const val = linearRef(x, w.v, T, C, Hkv * D, v.bias ? b.v : undefined);
  if (v.qkNorm === "full") [q, k] = [rmsRef(q, n.q, H * D, EPS), rmsRef(k, n.k, Hkv * D, EPS)];
  if (v.qkNorm === "per_head") [q, k] = [rmsRef(q, n.q, D, EPS), rmsRef(k, n.k, D, EPS)];
  const o = attendRef(ropeRef(q, T, H, D, 0, THETA), ropeRef(k, T, Hkv, D, 0, THETA), val, T, H, Hkv, D);
  return linearRef(Float32Array.from(o), w.o, T, H * D, C);
}

const VARIANTS: Variant[] = [
  { bias: false, qkNorm: "none" },
  { bias: true, qkNorm: "none" },
  { bias: false, qkNorm: "per_head" },
  { bias: false, qkNorm: "full" },
];

testOnDevices(
  "Attention matches a float64 reference for GQA, biases and q/k norms, with and without a cache",
  async (dev) => {
    const x = randn(T * C, 42);
    for (const v of VARIANTS) {
      using attn = build(dev, v);
      const want = reference(x, v);
      using xt = Tensor.fromArray(dev, x, [T, C]);
      using y = attn.forward(xt); // [T, C] -> [T, C]
      assertClose(await y.toArray(), want, { rtol: 1e-4, atol: 1e-5, what: JSON.stringify(v) });
      // Prefill 2 tokens, then 1, then 2, through a cache.
      using cache = new KvCache(dev, { maxSeq: 8, kvHeads: Hkv, headDim: D });
      const got: number[] = [];
      for (const [a, b] of [[0, 2], [2, 3], [3, 5]]) {
        using part = Tensor.fromArray(dev, x.slice(a * C, b * C), [b - a, C]);
        using out = attn.forward(part, { cache });
        got.push(...await out.toArray() as Float32Array);
      }
      assert.equal(cache.length, T);
      assertClose(got, want, { rtol: 1e-4, atol: 1e-5, what: `${JSON.stringify(v)} cached` });
      const names = [...attn.parameters().keys()];
      assert.equal(names.includes("q_proj.bias"), v.bias);
      assert.equal(names.includes("q_norm.weight"), v.qkNorm !== "none");
    }
  },
);

testOnDevices("Attention checks its weights, options and cache room", (dev) => {
  const lin = (o: number, i: number) => new Linear(Tensor.zeros(dev, [o, i]));
  const opts = { heads: H, kvHeads: Hkv, headDim: D, ropeTheta: THETA };
  assert.throws(
    () =>
      new Attention({
        qProj: lin(H * D, C),
        kProj: lin(H * D, C),
        vProj: lin(Hkv * D, C),
        oProj: lin(C, H * D),
      }, opts),
    /Cannot create Attention: k_proj\.weight must be \[16,16\] \(out, in\): received \[32, 16\]/,
  );
  const parts = () => ({
    qProj: lin(H * D, C),
    kProj: lin(Hkv * D, C),
    vProj: lin(Hkv * D, C),
    oProj: lin(C, H * D),
  });
  assert.throws(
    () => new Attention(parts(), { ...opts, headDim: 7 }),
    /Invalid Attention config:\n {2}headDim: Invalid number: must be a multiple of 2 \(received 7\)/,
  );
  assert.throws(
    () => new Attention(parts(), { ...opts, rope: 1 } as typeof opts),
    /rope: unknown key \(received 1\); allowed keys: heads, kvHeads, headDim, ropeTheta, qkNorm/,
  );
  assert.throws(
    () => new Attention(parts(), { ...opts, qkNorm: "per_head" }),
    /qkNorm "per_head" needs qNorm and kNorm/,
  );
  using attn = new Attention(parts(), opts);
  using cache = new KvCache(dev, { maxSeq: 4, kvHeads: Hkv, headDim: D });
  assert.throws(
    () => attn.forward(Tensor.zeros(dev, [5, C]), { cache }),
    /the cache holds 4 rows but position 0 \+ 5 tokens = 5; create the cache with a larger maxSeq/,
  );
});
