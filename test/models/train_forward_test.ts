/**
 * `CausalLM.forwardTrain` / `lossTrain` on every golden fixture: the training logits equal the
 * inference logits, frozen weights cost no gradient memory, a tied head accumulates both uses, and
 * the loss is the cross-entropy of the shifted ids (+ the weighted aux loss for MoE models), and the
 * whole-model gradients of tiny random dense and MoE models match finite differences.
 */
import assert from "node:assert/strict";
import { crossEntropyRef } from "../../src/ops/cross_entropy.ts";
import { Tape, TrainContext } from "../../src/autograd/mod.ts";
import type { Device } from "../../src/device/device.ts";
import { CausalLM } from "../../src/models/causal_lm.ts";
import { parseModelConfig } from "../../src/models/config.ts";
import { loadModel } from "../../src/models/load.ts";
import { parameterSpecs } from "../../src/models/weights.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";
import { trainGradcheck } from "../nn/_train_check.ts";
import { fixture, FIXTURES } from "./_fixtures.ts";

for (const { name, dir, golden } of FIXTURES) {
  testOnDevices(`CausalLM.forwardTrain(${name}) logits equal the inference forward`, async (device) => {
    using model = await loadModel(dir, { device });
    const ids = golden.inputIds;
    using want = model.forward(ids).logits; // [T, V]
    const expected = await want.toArray() as Float32Array;
    using tape = new Tape();
    const ctx = new TrainContext(tape, new Set(model.parameters().values()), { training: false });
    const { logits, auxLoss } = await model.forwardTrain(ctx, ids); // [T, V]
    assert.deepEqual(logits.shape, [ids.length, model.config.vocabSize]);
    let max = 0;
    for (const v of expected) max = Math.max(max, Math.abs(v));
    assertClose(await logits.value.toArray(), expected, {
      rtol: 0,
      atol: 1e-5 * Math.max(1, max),
      what: name,
    });
    assert.equal(auxLoss !== undefined, model.config.family === "moe");
    if (auxLoss) {
      const aux = (await auxLoss.value.toArray())[0];
      const K = model.config.topK;
      assert.ok(aux >= K * 0.5 && aux <= model.config.numExperts * K, `${name}: aux ${aux} out of range`);
    }
  });
}

testOnDevices("CausalLM.lossTrain: frozen weights get no gradient and no grads bytes", async (device) => {
  using model = await loadModel(fixture("mixtral-top2-f32").dir, { device });
  const trainable = [model.layers[1].mlp.parameters().get("experts.down_proj")!, model.norm.weight];
  const before = device.ledger.current("grads");
  {
    using tape = new Tape();
    const ctx = new TrainContext(tape, new Set(trainable));
    const { loss, auxLoss, tokens } = await model.lossTrain(ctx, Int32Array.of(3, 14, 15, 9, 2, 6, 5));
    assert.equal(tokens, 6);
    assert.ok(auxLoss);
    tape.backward(loss);
    const bytes = trainable.reduce((n, t) => n + t.size * 4, 0);
    assert.equal(device.ledger.current("grads") - before, bytes);
    for (const [n, t] of model.parameters()) {
      assert.equal(ctx.grad(t) !== null, trainable.includes(t), n);
    }
  }
  assert.equal(device.ledger.current("grads"), before);
});

testOnDevices(
  "CausalLM.lossTrain: tied head accumulates both uses; loss is the shifted cross-entropy",
  async (device) => {
    using model = await loadModel(fixture("llama-gqa-tied-f32").dir, { device });
    assert.equal(model.lmHead.weight, model.embedTokens.weight);
    const ids = Int32Array.of(3, 14, 15, 92, 65, 35, 8);
    using tape = new Tape();
    const emb = model.embedTokens.weight;
    const ctx = new TrainContext(tape, new Set([emb]));
    const { loss, lmLoss, auxLoss, tokens } = await model.lossTrain(ctx, ids, { ignoreIndex: 65 });
    assert.equal(loss, lmLoss);
    assert.equal(auxLoss, undefined);
    assert.equal(tokens, 5); // 6 targets, one is the ignored 65
    using full = model.forward(ids).logits; // [T+1, V]
    const V = model.config.vocabSize;
    const targets = Int32Array.of(14, 15, 92, 65, 35, 8, 65);
    const ref = crossEntropyRef(await full.toArray() as Float32Array, targets, V, 65);
    assertClose([(await loss.value.toArray())[0]], [ref.loss], { rtol: 1e-5, what: "loss" });
    tape.backward(loss);
    const g = await ctx.grad(emb)!.toArray() as Float32Array; // [V, C]
    const C = model.config.hidden;
    // Row 100 is never an input, so only the head contributes; row 3 (input only, never a target) gets both.
    const rowNorm = (r: number) => Math.hypot(...g.subarray(r * C, (r + 1) * C));
    assert.ok(rowNorm(100) > 0 && rowNorm(3) > 0);
  },
);

/** A tiny random model on `device` (same weights for the same config on every device). */
function tinyModel(device: Device, hf: Record<string, unknown>): CausalLM {
  const config = parseModelConfig(hf);
  const params = new Map<string, Tensor>();
  parameterSpecs(config).forEach((spec, i) => {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    const norm = /norm\.weight$/.test(spec.name);
    const std = spec.name.endsWith("mlp.gate.weight") ? 1 : 0.3;
    const data = norm ? randn(n, 500 + i, 0.1).map((v) => 1 + v) : randn(n, 500 + i, std);
    params.set(spec.name, Tensor.fromArray(device, data, spec.shape));
  });
  return CausalLM.fromParameters(config, params, hf);
}

const TINY = {
  vocab_size: 11,
  hidden_size: 8,
  intermediate_size: 12,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
};
const TINY_IDS = Int32Array.of(3, 1, 4, 1, 5, 9, 2);

for (
  const [what, hf] of [
    ["dense qwen2, tied", { ...TINY, model_type: "qwen2", tie_word_embeddings: true }],
    ["qwen2-moe, shared expert, aux 0.05", {
      ...TINY,
      model_type: "qwen2_moe",
      num_experts: 4,
      num_experts_per_tok: 2,
      moe_intermediate_size: 6,
      shared_expert_intermediate_size: 10,
      mlp_only_layers: [0],
      router_aux_loss_coef: 0.05,
    }],
    ["qwen3-moe, renormalised, aux 0.1", {
      ...TINY,
      model_type: "qwen3_moe",
      num_experts: 4,
      num_experts_per_tok: 2,
      moe_intermediate_size: 6,
      norm_topk_prob: true,
      router_aux_loss_coef: 0.1,
    }],
  ] as const
) {
  testOnDevices(`CausalLM.lossTrain (${what}) matches finite differences`, async (device) => {
    await trainGradcheck(device, (d) => {
      const model = tinyModel(d, hf);
      return {
        params: [...model.parameters()],
        run: async (ctx) => (await model.lossTrain(ctx, TINY_IDS)).loss,
        dispose: () => model.dispose(),
      };
    }, { what, perTensor: 3 });
  });
}
