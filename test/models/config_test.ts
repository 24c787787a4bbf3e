/** `parseModelConfig`: every family's config.json, transformers' defaults, and clear refusals. */
import assert from "node:assert/strict";
import { ConfigError } from "../../src/errors.ts";
import { type ModelConfig, parseModelConfig, SUPPORTED_MODEL_TYPES } from "../../src/models/config.ts";
import { loadModel } from "../../src/models/load.ts";
import { testOnDevices } from "../_helpers.ts";
import { copyFixture, fixture, FIXTURES } from "./_fixtures.ts";

async function fixtureConfig(name: string): Promise<ModelConfig> {
  return parseModelConfig(JSON.parse(await Deno.readTextFile(`${fixture(name).dir}/config.json`)));
}

const SMALL = {
  vocab_size: 64,
  hidden_size: 32,
  intermediate_size: 48,
  num_hidden_layers: 4,
  num_attention_heads: 4,
};

Deno.test("parseModelConfig normalises every fixture's config.json", async () => {
  assert.ok(FIXTURES.length >= 7);
  const llama = await fixtureConfig("llama-gqa-tied-f32");
  assert.equal(llama.family, "dense");
  assert.equal(llama.tieWordEmbeddings, true);
  assert.equal(llama.kvHeads, 2);
  assert.equal(llama.headDim, 8);
  assert.equal(llama.rmsNormEps, 1e-5);
  assert.equal(llama.qkNorm, "none");
  const bf16 = await fixtureConfig("llama-bf16-sharded");
  assert.equal(bf16.headDim, 16, "head_dim wins over hidden / heads");
  assert.equal(bf16.kvHeads, 1);
  assert.equal(bf16.ropeTheta, 500000);
  const qwen2 = await fixtureConfig("qwen2-f16");
  assert.equal(qwen2.attentionBias, true);
  assert.equal(qwen2.oProjBias, false);
  assert.equal(qwen2.slidingWindow, null, "use_sliding_window false");
  const mixtral = await fixtureConfig("mixtral-top2-f32");
  assert.deepEqual(
    [mixtral.family, mixtral.numExperts, mixtral.topK, mixtral.normTopkProb, mixtral.moeIntermediate],
    ["moe", 4, 2, true, 48],
  );
  assert.deepEqual(mixtral.moeLayers, [true, true]);
  const qwen2Moe = await fixtureConfig("qwen2-moe-f32");
  assert.deepEqual(qwen2Moe.moeLayers, [false, true], "mlp_only_layers [0]");
  assert.deepEqual([qwen2Moe.moeIntermediate, qwen2Moe.sharedExpertIntermediate, qwen2Moe.intermediate], [
    24,
    48,
    64,
  ]);
  assert.equal(qwen2Moe.normTopkProb, false);
  assert.equal(qwen2Moe.attentionBias, true, "qkv_bias defaults to true");
  const qwen3 = await fixtureConfig("qwen3-moe-f32");
  assert.deepEqual([qwen3.qkNorm, qwen3.headDim, qwen3.normTopkProb, qwen3.attentionBias], [
    "per_head",
    16,
    true,
    false,
  ]);
  const olmoe = await fixtureConfig("olmoe-f32");
  assert.deepEqual([olmoe.qkNorm, olmoe.normTopkProb, olmoe.moeIntermediate], ["full", false, 32]);
  assert.ok(Object.isFrozen(olmoe) && Object.isFrozen(olmoe.moeLayers));
});

Deno.test("parseModelConfig fills in transformers' defaults per family", () => {
  const mistral = parseModelConfig({ ...SMALL, model_type: "mistral", num_attention_heads: 8 });
  assert.deepEqual([mistral.kvHeads, mistral.slidingWindow, mistral.rmsNormEps, mistral.ropeTheta], [
    8,
    4096,
    1e-6,
    10000,
  ]);
  const llama = parseModelConfig({ ...SMALL, model_type: "llama" });
  assert.deepEqual([llama.kvHeads, llama.tieWordEmbeddings, llama.attentionBias], [4, false, false]);
  const mixtral = parseModelConfig({ ...SMALL, model_type: "mixtral", num_key_value_heads: 2 });
  assert.deepEqual([mixtral.numExperts, mixtral.topK, mixtral.rmsNormEps, mixtral.ropeTheta], [
    8,
    2,
    1e-5,
    1e6,
  ]);
  const sparse = parseModelConfig({
    ...SMALL,
    model_type: "qwen3_moe",
    num_key_value_heads: 2,
    num_experts: 4,
    num_experts_per_tok: 2,
    moe_intermediate_size: 16,
    decoder_sparse_step: 2,
    mlp_only_layers: null,
  });
  assert.deepEqual(sparse.moeLayers, [false, true, false, true], "every decoder_sparse_step-th layer");
  const v5 = parseModelConfig({
    ...SMALL,
    model_type: "llama",
    rope_parameters: { rope_type: "default", rope_theta: 5e5 },
  });
  assert.equal(v5.ropeTheta, 5e5, "transformers 5 rope_parameters");
  assert.deepEqual([...SUPPORTED_MODEL_TYPES], [
    "llama",
    "mistral",
    "qwen2",
    "mixtral",
    "qwen2_moe",
    "qwen3_moe",
    "olmoe",
  ]);
});

Deno.test("parseModelConfig refuses what it cannot compute exactly", () => {
  const bad = (extra: Record<string, unknown>, message: RegExp) =>
    assert.throws(() => parseModelConfig({ ...SMALL, model_type: "llama", ...extra }), (err: Error) => {
      assert.ok(err instanceof ConfigError, err.message);
      assert.match(err.message, message);
      return true;
    });
  bad({ rope_scaling: { type: "linear", factor: 2 } }, /rope_scaling: RoPE scaling is not supported yet/);
  bad(
    { rope_parameters: { rope_type: "yarn", factor: 4 } },
    /rope_parameters: RoPE scaling is not supported yet/,
  );
  bad({ hidden_act: "gelu" }, /hidden_act: only "silu" \(SwiGLU\) is supported \(received "gelu"\)/);
  bad({ head_dim: 7 }, /head_dim: must be even for rotary embeddings \(received 7\)/);
  bad(
    { num_attention_heads: 5 },
    /head_dim: hidden_size 32 is not a multiple of num_attention_heads 5; set head_dim/,
  );
  bad({ vocab_size: 0 }, /vocab_size: Too small: expected number to be >0/);
  assert.throws(
    () => parseModelConfig({ ...SMALL, model_type: "olmoe", clip_qkv: 8 }),
    /clip_qkv: clipping q\/k\/v is not supported yet \(received 8\)/,
  );
  assert.throws(
    () => parseModelConfig({ ...SMALL, model_type: "mixtral", num_local_experts: 2, num_experts_per_tok: 3 }),
    /num_experts_per_tok: must be at most the 2 experts \(received 3\)/,
  );
  assert.throws(
    () => parseModelConfig("llama"),
    /config.json has no model_type: expected one of llama, mistral/,
  );
  assert.throws(() => parseModelConfig({ model_type: "phi3" }), /unsupported model_type "phi3"/);
});

testOnDevices(
  "a Mistral checkpoint computes what the same weights compute as Llama, within its sliding window",
  async (device) => {
    const { dir, golden } = fixture("llama-gqa-tied-f32");
    const copy = await copyFixture(dir);
    try {
      const config = JSON.parse(await Deno.readTextFile(`${copy}/config.json`));
      await Deno.writeTextFile(
        `${copy}/config.json`,
        JSON.stringify({
          ...config,
          model_type: "mistral",
          architectures: ["MistralForCausalLM"],
          sliding_window: 8,
        }),
      );
      using llama = await loadModel(dir, { device });
      using mistral = await loadModel(copy, { device });
      assert.equal(mistral.config.slidingWindow, 8);
      const [a, b] = [llama.forward(golden.inputIds).logits, mistral.forward(golden.inputIds).logits];
      assert.deepEqual(await b.toArray(), await a.toArray());
      a.dispose();
      b.dispose();
      assert.throws(
        () => mistral.forward(new Int32Array(9)),
        /9 tokens exceed the sliding window of 8; sliding-window attention is not supported yet/,
      );
    } finally {
      await Deno.remove(copy, { recursive: true });
    }
  },
);
