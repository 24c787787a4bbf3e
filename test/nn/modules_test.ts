/** Linear, Embedding, RMSNorm, SwiGLU and DecoderLayer against float64 references, and their checks. */
import assert from "node:assert/strict";
import { Attention } from "../../src/nn/attention.ts";
import { DecoderLayer } from "../../src/nn/decoder_layer.ts";
import { Embedding } from "../../src/nn/embedding.ts";
import { Linear } from "../../src/nn/linear.ts";
import { countParameters } from "../../src/nn/module.ts";
import { RMSNorm } from "../../src/nn/rms_norm.ts";
import { SwiGLU } from "../../src/nn/swiglu.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";
import { linearRef, rmsRef, swigluRef } from "./_ref.ts";

testOnDevices("Linear computes x Wᵀ + b over the last axis", async (dev) => {
  const [T, I, O] = [5, 12, 7];
  const x = randn(T * I, 1);
  const w = randn(O * I, 2);
  const b = randn(O, 3);
  using xt = Tensor.fromArray(dev, x, [T, I]);
  using lin = new Linear(Tensor.fromArray(dev, w, [O, I]), Tensor.fromArray(dev, b));
  using y = lin.forward(xt); // [T, I] -> [T, O]
  assert.deepEqual(y.shape, [T, O]);
  assertClose(await y.toArray(), linearRef(x, w, T, I, O, b), { rtol: 1e-5, atol: 1e-5 });
  using noBias = new Linear(Tensor.fromArray(dev, w, [O, I]));
  using x3 = xt.reshape([1, T, I]);
  using y3 = noBias.forward(x3); // [1, T, I] -> [1, T, O]
  assert.deepEqual(y3.shape, [1, T, O]);
  assertClose(await y3.toArray(), linearRef(x, w, T, I, O), { rtol: 1e-5, atol: 1e-5 });
  assert.deepEqual([...lin.parameters().keys()], ["weight", "bias"]);
  assert.equal(countParameters(lin.parameters()), O * I + O);
  assert.deepEqual([lin.inFeatures, lin.outFeatures], [I, O]);
  assert.throws(
    () => new Linear(Tensor.zeros(dev, [3, 4]), Tensor.zeros(dev, [4])),
    /Cannot create Linear: bias must be f32 \[3\] \(out\): received f32\[4\]/,
  );
  assert.throws(
    () => new Linear(Tensor.zeros(dev, [3])),
    /weight must be f32 or f16 \[out, in\]: received f32\[3\]/,
  );
});

testOnDevices("Embedding, RMSNorm and SwiGLU match their float64 references", async (dev) => {
  const [V, C, F, T] = [11, 8, 20, 4];
  const table = randn(V * C, 4);
  using emb = new Embedding(Tensor.fromArray(dev, table, [V, C]));
  using ids = Tensor.fromArray(dev, Int32Array.of(3, 0, 10, 3), [T]);
  using x = emb.forward(ids); // [T] -> [T, C]
  const xs = await x.toArray() as Float32Array;
  assert.deepEqual([...xs.subarray(2 * C, 3 * C)], [...table.subarray(10 * C, 11 * C)]);
  assert.deepEqual([emb.numEmbeddings, emb.embeddingDim], [V, C]);

  const g = randn(C, 5);
  using norm = new RMSNorm(Tensor.fromArray(dev, g), 1e-5);
  using n = norm.forward(x); // [T, C]
  assertClose(await n.toArray(), rmsRef(xs, g, C, 1e-5), { rtol: 1e-5, atol: 1e-6 });
  assert.throws(
    () => new RMSNorm(Tensor.zeros(dev, [C]), -1),
    /eps must be a finite non-negative number: received -1/,
  );

  const [wg, wu, wd] = [randn(F * C, 6), randn(F * C, 7), randn(C * F, 8)];
  using mlp = new SwiGLU(
    new Linear(Tensor.fromArray(dev, wg, [F, C])),
    new Linear(Tensor.fromArray(dev, wu, [F, C])),
    new Linear(Tensor.fromArray(dev, wd, [C, F])),
  );
  using y = mlp.forward(x); // [T, C] -> [T, C]
  assertClose(await y.toArray(), swigluRef(xs, wg, wu, wd, T, C, F), { rtol: 1e-4, atol: 1e-5 });
  assert.deepEqual([...mlp.parameters().keys()], ["gate_proj.weight", "up_proj.weight", "down_proj.weight"]);
  assert.throws(
    () =>
      new SwiGLU(
        new Linear(Tensor.zeros(dev, [F, C])),
        new Linear(Tensor.zeros(dev, [F, C])),
        new Linear(Tensor.zeros(dev, [F, C])),
      ),
    /Cannot create SwiGLU: projections must be gate \[F, C\], up \[F, C\], down \[C, F\]/,
  );
});

testOnDevices(
  "DecoderLayer is pre-norm attention and MLP with residuals, named as HF names them",
  async (dev) => {
    const [T, C, H, D, F] = [3, 8, 2, 4, 16];
    let seed = 10;
    const lin = (o: number, i: number) =>
      new Linear(Tensor.fromArray(dev, randn(o * i, seed++, 0.3), [o, i]));
    const norm = () => new RMSNorm(Tensor.fromArray(dev, randn(C, seed++, 0.1).map((v) => 1 + v)), 1e-6);
    const attn = new Attention({
      qProj: lin(H * D, C),
      kProj: lin(D, C),
      vProj: lin(D, C),
      oProj: lin(C, H * D),
    }, {
      heads: H,
      kvHeads: 1,
      headDim: D,
      ropeTheta: 10000,
    });
    using layer = new DecoderLayer({
      inputNorm: norm(),
      attention: attn,
      postNorm: norm(),
      mlp: new SwiGLU(lin(F, C), lin(F, C), lin(C, F)),
    });
    using x = Tensor.fromArray(dev, randn(T * C, 99), [T, C]);
    const { x: y, router } = layer.forward(x); // [T, C]
    using _y = y;
    assert.equal(router, undefined);
    assert.equal(layer.isMoe, false);
    // Recompute by hand from the same modules.
    using n1 = layer.inputNorm.forward(x);
    using a = layer.attention.forward(n1);
    const h = Float32Array.from(await x.toArray() as Float32Array);
    const av = await a.toArray() as Float32Array;
    for (let i = 0; i < h.length; i++) h[i] += av[i];
    using ht = Tensor.fromArray(dev, h, [T, C]);
    using n2 = layer.postNorm.forward(ht);
    using m = (layer.mlp as SwiGLU).forward(n2);
    const mv = await m.toArray() as Float32Array;
    assertClose(await y.toArray(), h.map((v, i) => v + mv[i]), { rtol: 1e-6, atol: 1e-6 });
    assert.deepEqual([...layer.parameters().keys()], [
      "input_layernorm.weight",
      "self_attn.q_proj.weight",
      "self_attn.k_proj.weight",
      "self_attn.v_proj.weight",
      "self_attn.o_proj.weight",
      "post_attention_layernorm.weight",
      "mlp.gate_proj.weight",
      "mlp.up_proj.weight",
      "mlp.down_proj.weight",
    ]);
  },
);
