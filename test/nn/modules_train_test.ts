/**
 * Training forwards of the dense modules (Linear with a LoRA adapter and dropout, Embedding,
 * RMSNorm, Attention with every q/k-norm layout and biases, SwiGLU, DecoderLayer): values equal the
 * inference forward, gradients match finite differences, frozen weights get nothing.
 */
import assert from "node:assert/strict";
import { sum, Tape, TrainContext } from "../../src/autograd/mod.ts";
import type { Device } from "../../src/device/device.ts";
import { Attention } from "../../src/nn/attention.ts";
import { DecoderLayer } from "../../src/nn/decoder_layer.ts";
import { Embedding } from "../../src/nn/embedding.ts";
import { Linear } from "../../src/nn/linear.ts";
import { RMSNorm } from "../../src/nn/rms_norm.ts";
import { SwiGLU } from "../../src/nn/swiglu.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";
import { trainGradcheck } from "./_train_check.ts";
import { asDenseLinear } from "../../src/nn/linear_like.ts";

const dense = (l: Parameters<typeof asDenseLinear>[0]) => asDenseLinear(l, "read a test weight");

const [T, C, H, Hkv, D, F] = [5, 8, 4, 2, 2, 12];
let seed = 1;
const rand = (dev: Device, shape: number[], std = 0.4) =>
  Tensor.fromArray(dev, randn(shape.reduce((a, b) => a * b, 1), seed++, std), shape);

function linear(dev: Device, out: number, inp: number, bias = false): Linear {
  return new Linear(rand(dev, [out, inp]), bias ? rand(dev, [out], 0.1) : undefined);
}

function attention(dev: Device, qkNorm: "none" | "per_head" | "full", bias: boolean): Attention {
  const norm = (n: number) =>
    new RMSNorm(Tensor.fromArray(dev, randn(n, seed++, 0.1).map((v) => 1 + v)), 1e-6);
  const full = qkNorm === "full";
  return new Attention({
    qProj: linear(dev, H * D, C, bias),
    kProj: linear(dev, Hkv * D, C, bias),
    vProj: linear(dev, Hkv * D, C, bias),
    oProj: linear(dev, C, H * D),
    ...(qkNorm === "none" ? {} : { qNorm: norm(full ? H * D : D), kNorm: norm(full ? Hkv * D : D) }),
  }, { heads: H, kvHeads: Hkv, headDim: D, ropeTheta: 10000, qkNorm });
}

testOnDevices(
  "Linear.forwardTrain with an adapter equals forward and matches finite differences",
  async (dev) => {
    const make = (d: Device, p: number) => {
      seed = 10;
      const lin = linear(d, 6, C, true);
      const a = rand(d, [3, C]);
      const b = rand(d, [6, 3]);
      lin.adapter = { a, b, scaling: 1.5, dropout: p };
      const x = rand(d, [T, C]);
      return {
        lin,
        x,
        params: [["weight", lin.weight], ["bias", lin.bias!], ["a", a], ["b", b], ["x", x]] as [
          string,
          Tensor,
        ][],
        run: (ctx: TrainContext) => lin.forwardTrain(ctx.v(x), ctx),
        dispose: () => [lin, a, b, x].forEach((t) => t.dispose()),
      };
    };
    const c = make(dev, 0.3);
    {
      using want = c.lin.forward(c.x); // [T, 6]
      using tape = new Tape();
      const y = c.run(new TrainContext(tape, new Set(), { training: false })); // dropout off
      assertClose(await y.value.toArray(), await want.toArray(), { rtol: 1e-6, atol: 1e-6, what: "values" });
    }
    {
      // Training mode: inverted dropout on the adapter input only (some rows change, the base does not).
      using tape = new Tape();
      const y = c.run(new TrainContext(tape, new Set(), { training: true, seed: 3 }));
      using want = c.lin.forward(c.x);
      const [got, base] = [await y.value.toArray(), await want.toArray()];
      assert.ok(got.some((v, i) => Math.abs(v - base[i]) > 1e-4), "dropout changed nothing");
    }
    c.dispose();
    await trainGradcheck(dev, (d) => make(d, 0), { what: "Linear+LoRA" });
    await trainGradcheck(dev, (d) => make(d, 0.4), { what: "Linear+LoRA dropout", training: true });
  },
);

testOnDevices("Embedding and RMSNorm forwardTrain match finite differences", async (dev) => {
  await trainGradcheck(dev, (d) => {
    seed = 20;
    const emb = new Embedding(rand(d, [7, C]));
    const norm = new RMSNorm(rand(d, [C]), 1e-5);
    const ids = Tensor.fromArray(d, new Int32Array([3, 0, 3, 6]));
    return {
      params: [["table", emb.weight], ["gain", norm.weight]],
      run: (ctx) => norm.forwardTrain(emb.forwardTrain(ids, ctx), ctx),
      dispose: () => [emb, norm, ids].forEach((t) => t.dispose()),
    };
  }, { what: "Embedding→RMSNorm" });
});

testOnDevices(
  "Attention.forwardTrain equals forward and matches finite differences (GQA, biases, q/k norms)",
  async (dev) => {
    for (const [qkNorm, bias] of [["none", true], ["per_head", false], ["full", false]] as const) {
      const make = (d: Device) => {
        seed = 30;
        const attn = attention(d, qkNorm, bias);
        const x = rand(d, [T, C], 1);
        const params = [...attn.parameters()].filter(([n]) => !n.startsWith("o_proj"));
        return {
          attn,
          x,
          params: [...params, ["x", x]] as [string, Tensor][],
          run: (ctx: TrainContext) => attn.forwardTrain(ctx.v(x), ctx),
          dispose: () => [attn, x].forEach((t) => t.dispose()),
        };
      };
      const c = make(dev);
      {
        using want = c.attn.forward(c.x);
        using tape = new Tape();
        const y = c.run(new TrainContext(tape, new Set()));
        assertClose(await y.value.toArray(), await want.toArray(), { rtol: 1e-5, atol: 1e-6, what: qkNorm });
      }
      c.dispose();
      await trainGradcheck(dev, make, { what: `Attention ${qkNorm}`, perTensor: 4 });
    }
  },
);

testOnDevices(
  "SwiGLU and DecoderLayer forwardTrain equal forward; frozen weights get no grads bytes",
  async (dev) => {
    const make = (d: Device) => {
      seed = 40;
      const norm = () => new RMSNorm(Tensor.fromArray(d, randn(C, seed++, 0.1).map((v) => 1 + v)), 1e-6);
      const mlp = new SwiGLU(linear(d, F, C), linear(d, F, C), linear(d, C, F));
      const layer = new DecoderLayer({
        inputNorm: norm(),
        attention: attention(d, "none", false),
        postNorm: norm(),
        mlp,
      });
      const x = rand(d, [T, C], 1);
      return {
        layer,
        x,
        params: [
          ["mlp.gate_proj", dense(mlp.gateProj).weight],
          ["mlp.down_proj", dense(mlp.downProj).weight],
          [
            "post_attention_layernorm",
            layer.postNorm.weight,
          ],
          ["q_proj", dense(layer.attention.qProj).weight],
          ["x", x],
        ] as [string, Tensor][],
        run: async (ctx: TrainContext) => (await layer.forwardTrain(ctx.v(x), ctx)).x,
        dispose: () => [layer, x].forEach((t) => t.dispose()),
      };
    };
    const c = make(dev);
    {
      const want = c.layer.forward(c.x).x;
      const before = dev.ledger.current("grads");
      using tape = new Tape();
      const ctx = new TrainContext(tape, new Set([c.layer.mlp.parameters().get("up_proj.weight")!]));
      const y = await c.run(ctx);
      assertClose(await y.value.toArray(), await want.toArray(), { rtol: 1e-5, atol: 1e-6, what: "layer" });
      want.dispose();
      tape.backward(sum(y));
      assert.equal(dev.ledger.current("grads") - before, F * C * 4, "only up_proj's gradient is kept");
      for (const [n, t] of c.layer.parameters()) {
        assert.equal(
          ctx.grad(t) !== null,
          n === "mlp.up_proj.weight",
          n,
        );
      }
    }
    c.dispose();
    await trainGradcheck(dev, make, { what: "DecoderLayer", perTensor: 4 });
  },
);
