/**
 * loadModel({ dtype: "f16" }): projection weights and expert stacks stay at 16 bits on the device.
 * On an F16 checkpoint the halves are the checkpoint's own values, so the logits equal the f32
 * load's up to f32 summation order, the greedy tokens equal PyTorch's, and the weights take half
 * the ledger bytes. Training through a 16-bit weight is refused with a message.
 */
import assert from "node:assert/strict";
import { Tape } from "../../src/autograd/tape.ts";
import { TrainContext } from "../../src/autograd/train_context.ts";
import { generate } from "../../src/models/generate.ts";
import { isHalfParameter, loadModel } from "../../src/models/load.ts";
import type { Linear } from "../../src/nn/linear.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, testOnDevices } from "../_helpers.ts";
import { FIXTURES } from "./_fixtures.ts";

const qwen = FIXTURES.find((f) => f.name === "qwen2-f16")!;
const mixtral = FIXTURES.find((f) => f.name === "mixtral-top2-f32")!;

Deno.test("isHalfParameter: projections, embeddings, lm_head and expert stacks; not norms, biases or routers", () => {
  const half = [
    "model.layers.0.self_attn.q_proj.weight",
    "lm_head.weight",
    "model.embed_tokens.weight",
    "model.layers.1.mlp.experts.down_proj",
  ];
  for (const n of half) assert.ok(isHalfParameter(n), n);
  const full = [
    "model.layers.0.input_layernorm.weight",
    "model.layers.0.mlp.gate.weight",
    "model.layers.0.self_attn.q_proj.bias",
  ];
  for (const n of full) assert.ok(!isHalfParameter(n), n);
});

testOnDevices(
  "loadModel f16 on an F16 checkpoint: the f32 load's logits and PyTorch's greedy tokens",
  async (device) => {
    using full = await loadModel(qwen.dir, { device });
    const fullBytes = device.ledger.current("weights");
    using half = await loadModel(qwen.dir, { device, dtype: "f16" });
    const halfBytes = device.ledger.current("weights") - fullBytes;
    assert.ok(halfBytes < 0.75 * fullBytes, `f16 weights ${halfBytes} B vs f32 ${fullBytes} B`);
    assert.equal(half.parameters().get("model.layers.0.self_attn.q_proj.weight")?.dtype, "f16");
    const ids = qwen.golden.inputIds;
    const a = full.forward(ids).logits;
    const b = half.forward(ids).logits; // prefill: widened temporaries
    assertClose(await b.toArray(), await a.toArray(), { rtol: 1e-4, atol: 1e-4, what: "qwen2-f16 logits" });
    a.dispose();
    b.dispose();
    const out = await generate(half, ids, { maxNewTokens: qwen.golden.greedy.length }); // decode: gemv on halves
    assert.deepEqual(out.tokens, Array.from(qwen.golden.greedy));
  },
);

testOnDevices(
  "loadModel f16 of a MoE keeps its expert stacks at 16 bits and its logits within f16 rounding",
  async (device) => {
    using full = await loadModel(mixtral.dir, { device });
    using half = await loadModel(mixtral.dir, { device, dtype: "f16" });
    const p = half.parameters();
    assert.equal(p.get("model.layers.0.mlp.experts.up_proj")?.dtype, "f16");
    assert.equal(p.get("model.layers.0.mlp.gate.weight")?.dtype, "f32");
    const ids = mixtral.golden.inputIds;
    const a = full.forward(ids).logits;
    const b = half.forward(ids).logits;
    // Weights rounded to 11 significant bits move each logit by about 2⁻¹¹ of its scale.
    assertClose(await b.toArray(), await a.toArray(), { rtol: 2e-2, atol: 2e-2, what: "mixtral f16 logits" });
    a.dispose();
    b.dispose();
  },
);

testOnDevices("training through a 16-bit weight is refused with what to do", async (device) => {
  using half = await loadModel(qwen.dir, { device, dtype: "f16" });
  using tape = new Tape();
  const ctx = new TrainContext(tape, new Set());
  const lin = half.layers[0].attention.qProj as Linear;
  using x = Tensor.zeros(device, [1, lin.inFeatures]);
  assert.throws(
    () => lin.forwardTrain(ctx.v(x), ctx),
    /weight is f16 \(inference only\); load the model with dtype f32/,
  );
});
