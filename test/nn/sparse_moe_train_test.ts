/**
 * The MoE training path: `SparseMoE.forwardTrain` equals `forward` (both routings, with and
 * without the shared expert), its gradients through the routing weights, experts, router and shared
 * gate match finite differences, expert LoRA adapters act the same in inference and training, and
 * the load-balancing loss has the HF value and gradient.
 */
import assert from "node:assert/strict";
import { Tape, TrainContext } from "../../src/autograd/mod.ts";
import type { Device } from "../../src/device/device.ts";
import { SwiGLUExperts } from "../../src/nn/experts.ts";
import { Linear } from "../../src/nn/linear.ts";
import { loadBalancingLoss } from "../../src/nn/load_balancing.ts";
import type { ExpertAdapterKey } from "../../src/nn/lora_adapter.ts";
import { SparseMoE } from "../../src/nn/sparse_moe.ts";
import { SwiGLU } from "../../src/nn/swiglu.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { gradcheck } from "../autograd/_gradcheck.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";
import { trainGradcheck } from "./_train_check.ts";

const [T, C, E, F, S, K, R] = [6, 8, 4, 6, 10, 2, 2];
const t = (d: Device, n: number[], s: number, std = 0.4) =>
  Tensor.fromArray(d, randn(n.reduce((a, b) => a * b, 1), s, std), n);

/** A MoE block plus its input; `adapters` attaches LoRA to experts 1 (gate) and 3 (down). */
function build(d: Device, normTopkProb: boolean, shared: boolean, adapters = false, dropout = 0) {
  const experts = new SwiGLUExperts(t(d, [E, F, C], 2), t(d, [E, F, C], 3), t(d, [E, C, F], 4));
  const moe = new SparseMoE({
    router: new Linear(t(d, [E, C], 1, 1)),
    experts,
    ...(shared
      ? {
        sharedExpert: new SwiGLU(
          new Linear(t(d, [S, C], 5)),
          new Linear(t(d, [S, C], 6)),
          new Linear(t(d, [C, S], 7)),
        ),
        sharedExpertGate: new Linear(t(d, [1, C], 8)),
      }
      : {}),
  }, { topK: K, normTopkProb });
  const lora: Tensor[] = [];
  if (adapters) {
    for (const [key, out, inp, s] of [["gate_proj.1", F, C, 11], ["down_proj.3", C, F, 13]] as const) {
      const a = t(d, [R, inp], s);
      const b = t(d, [out, R], s + 1);
      lora.push(a, b);
      experts.adapters.set(key as ExpertAdapterKey, { a, b, scaling: 0.75, dropout });
    }
  }
  const x = t(d, [T, C], 9, 1);
  return { moe, x, lora, dispose: () => [moe, x, ...lora].forEach((v) => v.dispose()) };
}

testOnDevices("SparseMoE.forwardTrain equals forward and matches finite differences", async (dev) => {
  for (const [norm, shared] of [[true, false], [false, true]] as const) {
    const c = build(dev, norm, shared);
    const want = c.moe.forward(c.x);
    using tape = new Tape();
    const out = await c.moe.forwardTrain(tape.constant(c.x), new TrainContext(tape, new Set()));
    const what = `norm ${norm}, shared ${shared}`;
    assert.deepEqual([...out.selected], [...await want.selected.toArray()], `${what}: selected`);
    assertClose(await out.y.value.toArray(), await want.y.toArray(), { rtol: 1e-5, atol: 1e-6, what });
    assertClose(await out.routerLogits.value.toArray(), await want.routerLogits.toArray(), { what });
    for (const v of Object.values(want)) v.dispose();
    c.dispose();
    await trainGradcheck(dev, (d) => {
      const b = build(d, norm, shared);
      return {
        params: [...b.moe.parameters(), ["x", b.x]],
        run: async (ctx) => (await b.moe.forwardTrain(ctx.v(b.x), ctx)).y,
        dispose: b.dispose,
      };
    }, { what, perTensor: 5 });
  }
});

testOnDevices(
  "expert LoRA adapters: forward equals merged weights, forwardTrain equals forward, gradients",
  async (dev) => {
    const c = build(dev, true, false, true);
    // Reference: the same block with each adapter merged into its expert (W_e + s · B A).
    const merged = build(dev, true, false);
    const mergeInto = async (stack: Tensor, e: number, a: Tensor, b: Tensor) => {
      const [, O, I] = stack.shape;
      const [A, B] = [await a.toArray() as Float32Array, await b.toArray() as Float32Array];
      const w = await stack.toArray() as Float32Array;
      for (let o = 0; o < O; o++) {
        for (let i = 0; i < I; i++) {
          let s = 0;
          for (let r = 0; r < R; r++) s += B[o * R + r] * A[r * I + i];
          w[e * O * I + o * I + i] += 0.75 * s;
        }
      }
      return Tensor.fromArray(dev, w, stack.shape);
    };
    const gate = await mergeInto((merged.moe.experts as SwiGLUExperts).gateProj, 1, c.lora[0], c.lora[1]);
    const down = await mergeInto((merged.moe.experts as SwiGLUExperts).downProj, 3, c.lora[2], c.lora[3]);
    using ref = new SparseMoE({
      router: merged.moe.router,
      experts: new SwiGLUExperts(gate, (merged.moe.experts as SwiGLUExperts).upProj, down),
    }, { topK: K, normTopkProb: true });
    const want = ref.forward(c.x);
    const got = c.moe.forward(c.x);
    assertClose(await got.y.toArray(), await want.y.toArray(), { rtol: 1e-5, atol: 1e-5, what: "forward" });
    using tape = new Tape();
    const out = await c.moe.forwardTrain(tape.constant(c.x), new TrainContext(tape, new Set()));
    assertClose(await out.y.value.toArray(), await got.y.toArray(), {
      rtol: 1e-5,
      atol: 1e-6,
      what: "train",
    });
    assert.ok(out.selected.includes(1) && out.selected.includes(3), "the adapted experts get tokens");
    assert.ok(!out.selected.every((e) => e === 1 || e === 3), "so do experts without adapters");
    for (const v of [...Object.values(want), ...Object.values(got)]) v.dispose();
    (merged.moe.experts as SwiGLUExperts).gateProj.dispose();
    (merged.moe.experts as SwiGLUExperts).downProj.dispose();
    merged.x.dispose();
    c.dispose();
    for (const dropout of [0, 0.3]) {
      await trainGradcheck(dev, (d) => {
        const b = build(d, true, false, true, dropout);
        return {
          params: [
            ["gate_proj.1.a", b.lora[0]],
            ["gate_proj.1.b", b.lora[1]],
            ["down_proj.3.a", b.lora[2]],
            ["down_proj.3.b", b.lora[3]],
            ["x", b.x],
          ],
          run: async (ctx) => (await b.moe.forwardTrain(ctx.v(b.x), ctx)).y,
          dispose: b.dispose,
        };
      }, { what: `expert adapters, dropout ${dropout}`, training: dropout > 0 });
    }
  },
);

testOnDevices("loadBalancingLoss is E · Σ f_e P_e pooled over layers, with its gradient", async (dev) => {
  const probs = [randn(3 * E, 1), randn(2 * E, 2)].map((r) => r.map((v) => Math.abs(v)));
  const sel = [Int32Array.of(0, 1, 0, 2, 3, 0), Int32Array.of(1, 2, 1, 0)]; // [3, K], [2, K]
  using tape = new Tape();
  const vars = probs.map((p) => tape.param(tape.keep(Tensor.fromArray(dev, p, [p.length / E, E]))));
  const aux = loadBalancingLoss(vars.map((p, i) => ({ probs: p, selected: sel[i] })), E);
  const N = 5;
  const f = new Array(E).fill(0);
  for (const s of sel) for (const e of s) f[e] += 1 / N;
  const P = new Array(E).fill(0);
  for (const p of probs) p.forEach((v, i) => P[i % E] += v / N);
  const want = E * f.reduce((s, fe, e) => s + fe * P[e], 0);
  assertClose(await aux.value.toArray(), [want], { rtol: 1e-5, what: "aux" });
  await gradcheck(
    dev,
    (_t, [a, b]) => loadBalancingLoss([{ probs: a, selected: sel[0] }, { probs: b, selected: sel[1] }], E),
    [
      { data: probs[0], shape: [3, E] },
      { data: probs[1], shape: [2, E] },
    ],
    { what: "loadBalancingLoss" },
  );
});
