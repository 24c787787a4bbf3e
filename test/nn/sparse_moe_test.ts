/** SparseMoE against a per-token float64 reference: routing, mixing, shared expert, no host round trip. */
import assert from "node:assert/strict";
import type { Device } from "../../src/device/device.ts";
import { SwiGLUExperts } from "../../src/nn/experts.ts";
import { Linear } from "../../src/nn/linear.ts";
import { SparseMoE } from "../../src/nn/sparse_moe.ts";
import { SwiGLU } from "../../src/nn/swiglu.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";
import { linearRef, swigluRef } from "./_ref.ts";

const [C, E, F, S, K] = [12, 5, 10, 14, 2];

const W = {
  router: randn(E * C, 1),
  gate: randn(E * F * C, 2, 0.4),
  up: randn(E * F * C, 3, 0.4),
  down: randn(E * C * F, 4, 0.4),
  sGate: randn(S * C, 5, 0.4),
  sUp: randn(S * C, 6, 0.4),
  sDown: randn(C * S, 7, 0.4),
  sg: randn(C, 8),
};

function build(dev: Device, normTopkProb: boolean, shared: boolean): SparseMoE {
  const t = (x: Float32Array, shape: number[], category: "weights" | "experts" = "weights") =>
    Tensor.fromArray(dev, x, shape, { category });
  return new SparseMoE({
    router: new Linear(t(W.router, [E, C])),
    experts: new SwiGLUExperts(
      t(W.gate, [E, F, C], "experts"),
      t(W.up, [E, F, C], "experts"),
      t(W.down, [E, C, F], "experts"),
    ),
    ...(shared
      ? {
        sharedExpert: new SwiGLU(
          new Linear(t(W.sGate, [S, C])),
          new Linear(t(W.sUp, [S, C])),
          new Linear(t(W.sDown, [C, S])),
        ),
        sharedExpertGate: new Linear(t(W.sg, [1, C])),
      }
      : {}),
  }, { topK: K, normTopkProb });
}

/** transformers' routing: softmax, top-k, optional renormalisation, weighted sum of experts (+ shared). */
function reference(x: Float32Array, T: number, normTopkProb: boolean, shared: boolean) {
  const logits = linearRef(x, W.router, T, C, E);
  const y = new Float64Array(T * C);
  const selected: number[] = [];
  const weights: number[] = [];
  for (let t = 0; t < T; t++) {
    const row = Array.from(logits.subarray(t * E, (t + 1) * E));
    const m = Math.max(...row);
    const z = row.reduce((s, v) => s + Math.exp(v - m), 0);
    const p = row.map((v) => Math.exp(v - m) / z);
    const top = p.map((v, e) => [v, e]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, K);
    const sum = top.reduce((s, [v]) => s + v, 0);
    const xt = x.slice(t * C, (t + 1) * C);
    for (const [pv, e] of top) {
      const w = normTopkProb ? pv / sum : pv;
      selected.push(e);
      weights.push(w);
      const out = swigluRef(
        xt,
        W.gate.slice(e * F * C, (e + 1) * F * C),
        W.up.slice(e * F * C, (e + 1) * F * C),
        W.down.slice(e * C * F, (e + 1) * C * F),
        1,
        C,
        F,
      );
      for (let c = 0; c < C; c++) y[t * C + c] += w * out[c];
    }
    if (shared) {
      const s = swigluRef(xt, W.sGate, W.sUp, W.sDown, 1, C, S);
      const g = 1 / (1 + Math.exp(-linearRef(xt, W.sg, 1, C, 1)[0]));
      for (let c = 0; c < C; c++) y[t * C + c] += g * s[c];
    }
  }
  return { y, logits, selected, weights };
}

testOnDevices("SparseMoE routes, mixes and adds the shared expert as transformers does", async (dev) => {
  for (const [normTopkProb, shared] of [[true, false], [false, false], [false, true], [true, true]]) {
    using moe = build(dev, normTopkProb, shared);
    for (const T of [1, 6]) {
      const x = randn(T * C, 100 + T);
      const want = reference(x, T, normTopkProb, shared);
      using xt = Tensor.fromArray(dev, x, [T, C]);
      const submits = dev.stats.submits;
      const out = moe.forward(xt); // [T, C]
      assert.equal(
        dev.stats.submits,
        submits,
        "routing stays on the device: nothing is submitted or read back",
      );
      const what = `norm ${normTopkProb}, shared ${shared}, T ${T}`;
      assert.deepEqual([...await out.selected.toArray()], want.selected, `${what}: selected`);
      assertClose(await out.weights.toArray(), want.weights, {
        rtol: 1e-5,
        atol: 1e-6,
        what: `${what}: weights`,
      });
      assertClose(await out.routerLogits.toArray(), want.logits, {
        rtol: 1e-5,
        atol: 1e-5,
        what: `${what}: logits`,
      });
      assertClose(await out.y.toArray(), want.y, { rtol: 1e-4, atol: 1e-5, what: `${what}: y` });
      for (const t of Object.values(out)) t.dispose();
    }
    const names = [...moe.parameters().keys()];
    assert.deepEqual(names.slice(0, 4), [
      "gate.weight",
      "experts.gate_proj",
      "experts.up_proj",
      "experts.down_proj",
    ]);
    assert.equal(names.includes("shared_expert_gate.weight"), shared);
  }
});

testOnDevices("SparseMoE checks its parts and options", (dev) => {
  const experts = () =>
    new SwiGLUExperts(
      Tensor.zeros(dev, [E, F, C]),
      Tensor.zeros(dev, [E, F, C]),
      Tensor.zeros(dev, [E, C, F]),
    );
  assert.throws(
    () =>
      new SparseMoE({ router: new Linear(Tensor.zeros(dev, [E + 1, C])), experts: experts() }, {
        topK: K,
        normTopkProb: true,
      }),
    /Cannot create SparseMoE: gate\.weight must be \[5,12\] \(out, in\): received \[6, 12\]/,
  );
  assert.throws(
    () =>
      new SparseMoE({ router: new Linear(Tensor.zeros(dev, [E, C])), experts: experts() }, {
        topK: E + 1,
        normTopkProb: true,
      }),
    /topK must be at most the 5 experts: received 6/,
  );
  assert.throws(
    () =>
      new SparseMoE(
        { router: new Linear(Tensor.zeros(dev, [E, C])), experts: experts() },
        { topK: 2 } as never,
      ),
    /Invalid SparseMoE config:\n {2}normTopkProb: required/,
  );
  assert.throws(
    () =>
      new SwiGLUExperts(
        Tensor.zeros(dev, [E, F, C]),
        Tensor.zeros(dev, [E, F, C]),
        Tensor.zeros(dev, [E, F, C]),
      ),
    /Cannot create SwiGLUExperts: expected gate \[E, F, C\], up \[E, F, C\], down \[E, C, F\], all f32 or all f16/,
  );
});
