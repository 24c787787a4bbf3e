/**
 * QLoRAM: the NF4 training linear computes what a Linear holding the dequantized weight computes,
 * forward and backward (input, adapter and bias gradients), on every device; a whole model with
 * NF4 projections gives the dequantized model's loss and LoRA gradients, and the ledger holds the
 * packed bytes instead of the f32 weights.
 */
import assert from "node:assert/strict";
import { sum, Tape, TrainContext } from "../../src/autograd/mod.ts";
import { quantize } from "../../src/compressors/quant/quantize.ts";
import { createDevice } from "../../src/device/create_device.ts";
import { loraSites, siteWeight } from "../../src/lora/hf_names.ts";
import { applyLora } from "../../src/lora/lora_model.ts";
import { nf4BlockFor, nf4LinearBytes, quantizeLinearsNf4 } from "../../src/loram/qloram.ts";
import { loadModel } from "../../src/models/load.ts";
import { Linear } from "../../src/nn/linear.ts";
import { QuantizedLinear } from "../../src/nn/quantized_linear.ts";
import { dequantize } from "../../src/ops/dequantize.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";

testOnDevices(
  "QuantizedLinear (NF4): forward and backward equal a Linear on the dequantized weight",
  async (device) => {
    const [OUT, IN, T, R] = [40, 128, 5, 3];
    const w = Tensor.fromArray<"f32">(device, randn(OUT * IN, 1, 0.1), [OUT, IN]);
    const q = await quantize(w, { method: "nf4", groupSize: 64, doubleQuant: true });
    const wHat = dequantize(q); // [OUT, IN]
    w.dispose();
    const bias = () => Tensor.fromArray(device, randn(OUT, 2, 0.1), [OUT]);
    const a = Tensor.fromArray(device, randn(R * IN, 3, 0.1), [R, IN]);
    const b = Tensor.fromArray(device, randn(OUT * R, 4, 0.1), [OUT, R]);
    using nf4 = new QuantizedLinear(q, bias());
    using ref = new Linear(wHat, bias());
    const x = randn(T * IN, 5);
    const results = [];
    for (const layer of [nf4, ref]) {
      layer.adapter = { a, b, scaling: 2, dropout: 0 };
      // Inference forward.
      const yInf = await layer.forward(Tensor.fromArray(device, x, [T, IN])).toArray();
      // Training forward + backward with x, A, B and the bias trainable.
      using tape = new Tape();
      const ctx = new TrainContext(tape, new Set([a, b, layer.bias!]));
      const xv = tape.param(Tensor.fromArray(device, x, [T, IN]));
      const y = layer.forwardTrain(xv, ctx); // [T, OUT]
      const wts = tape.constant(Tensor.fromArray(device, randn(T * OUT, 6), [T, OUT]));
      const { mul } = await import("../../src/autograd/elementwise.ts");
      tape.backward(sum(mul(y, wts)));
      results.push({
        yInf,
        y: await y.value.toArray(),
        dx: await xv.grad!.toArray(),
        da: await ctx.grad(a)!.toArray(),
        db: await ctx.grad(b)!.toArray(),
        dbias: await ctx.grad(layer.bias!)!.toArray(),
      });
    }
    const [got, want] = results;
    for (const k of ["yInf", "y", "dx", "da", "db", "dbias"] as const) {
      assertClose(got[k], want[k], { rtol: 1e-4, atol: 1e-5, what: k });
    }
    a.dispose();
    b.dispose();
  },
);

Deno.test("quantizeLinearsNf4: the model's loss and LoRA gradients equal the dequantized model's; the ledger holds packed bytes", async () => {
  const device = await createDevice({ backend: "cpu" });
  const FIXTURE = "test/fixtures/models/llama-gqa-tied-f32";
  using q = await loadModel(FIXTURE, { device });
  using ref = await loadModel(FIXTURE, { device });
  const weightsF32 = device.ledger.current("weights");
  const r = await quantizeLinearsNf4(q);
  assert.equal(r.modules, 14);
  // q/k/v/o [32|16, 32], gate/up [64, 32], down [32, 64]: blocks of 32 on 32-wide rows, 64 on down.
  assert.equal(nf4BlockFor(32), 32);
  const expected = 2 *
    (2 * nf4LinearBytes(32, 32, 32) + 2 * nf4LinearBytes(16, 32, 32) + 2 * nf4LinearBytes(64, 32, 32) +
      nf4LinearBytes(32, 64, 64));
  assert.equal(r.bytes, expected);
  const f32Linears = 4 * 2 * (2 * 32 * 32 + 2 * 16 * 32 + 3 * 64 * 32);
  // Each projection's f32 offset is a host scalar (4 bytes in the formula, none on the ledger).
  assert.equal(device.ledger.current("weights"), weightsF32 - f32Linears + expected - 4 * r.modules);
  // The reference: every projection's weight replaced by its dequantized NF4 value.
  for (const [i, layer] of q.layers.entries()) {
    const pairs: [QuantizedLinear, Linear][] = [
      [layer.attention.qProj as unknown as QuantizedLinear, ref.layers[i].attention.qProj as Linear],
      [layer.attention.kProj as unknown as QuantizedLinear, ref.layers[i].attention.kProj as Linear],
      [layer.attention.vProj as unknown as QuantizedLinear, ref.layers[i].attention.vProj as Linear],
      [layer.attention.oProj as unknown as QuantizedLinear, ref.layers[i].attention.oProj as Linear],
    ];
    for (const [n, l] of pairs) {
      assert.ok(n instanceof QuantizedLinear);
      using w = dequantize(n.weight);
      device.upload(l.weight.storage, await w.toArray() as Float32Array);
    }
    const mq = layer.mlp as unknown as Record<string, QuantizedLinear>;
    const mr = ref.layers[i].mlp as unknown as Record<string, Linear>;
    for (const f of ["gateProj", "upProj", "downProj"]) {
      using w = dequantize(mq[f].weight);
      device.upload(mr[f].weight.storage, await w.toArray() as Float32Array);
    }
  }
  const ids = Int32Array.of(3, 17, 5, 40, 11, 2, 29, 64);
  const out: { loss: number; grads: Float32Array[]; logits: ArrayLike<number> }[] = [];
  for (const model of [q, ref]) {
    using lora = applyLora(model, { r: 4, targetModules: "all-linear", initLoraWeights: false }, { seed: 2 });
    using tape = new Tape();
    const params = lora.trainableParameters();
    const ctx = new TrainContext(tape, new Set(params.values()), { training: false });
    const { loss } = await model.lossTrain(ctx, ids);
    tape.backward(loss);
    const grads: Float32Array[] = [];
    for (const t of params.values()) grads.push(await ctx.grad(t)!.toArray() as Float32Array);
    out.push({
      loss: (await loss.value.toArray())[0],
      grads,
      logits: await model.forward(ids).logits.toArray(),
    });
  }
  assert.ok(Math.abs(out[0].loss - out[1].loss) < 1e-5, `${out[0].loss} vs ${out[1].loss}`);
  assertClose(out[0].logits, out[1].logits, { rtol: 1e-4, atol: 1e-5, what: "logits" });
  out[0].grads.forEach((g, j) =>
    assertClose(g, out[1].grads[j], { rtol: 1e-3, atol: 1e-6, what: `grad ${j}` })
  );
  // An adapter trained on the packed base is never merged into its codes.
  const site = loraSites(q).find((s) => s.name === "model.layers.0.self_attn.q_proj")!;
  assert.throws(
    () => siteWeight(site),
    /Cannot merge into model\.layers\.0\.self_attn\.q_proj: its weight is packed \(nf4\)/,
  );
});
