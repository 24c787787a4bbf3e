import assert from "node:assert/strict";
import { ConfigError } from "../../src/errors.ts";
import {
  fromPeftJson,
  loraConfig,
  patternKey,
  PEFT_UNSUPPORTED_DEFAULTS,
  toPeftJson,
} from "../../src/lora/lora_config.ts";

Deno.test("LoraConfig defaults are PEFT's", () => {
  const c = loraConfig();
  assert.equal(c.r, 8);
  assert.equal(c.loraAlpha, 8);
  assert.equal(c.loraDropout, 0);
  assert.equal(c.targetModules, null);
  assert.equal(c.bias, "none");
  assert.equal(c.useRslora, false);
  assert.equal(c.initLoraWeights, true);
  assert.deepEqual([c.rankPattern, c.alphaPattern], [{}, {}]);
  assert.equal(c.layersToTransform, null);
  assert.equal(c.fanInFanOut, false);
  assert.equal(c.peftType, "LORA");
  assert.equal(c.scaling("model.layers.0.self_attn.q_proj"), 1);
  assert.ok(Object.isFrozen(c));
});

Deno.test("scaling honours rank/alpha patterns (PEFT get_pattern_key) and rslora", () => {
  const c = loraConfig({
    r: 16,
    loraAlpha: 32,
    rankPattern: { "self_attn.v_proj": 4, "experts.*.down_proj": 8 },
    alphaPattern: { "layers.1.self_attn.v_proj": 2 },
  });
  assert.equal(c.scaling("model.layers.0.self_attn.q_proj"), 2);
  assert.equal(c.scaling("model.layers.0.self_attn.v_proj"), 8); // 32 / 4
  assert.equal(c.scaling("model.layers.1.self_attn.v_proj"), 0.5); // 2 / 4
  assert.equal(c.rank("model.layers.3.mlp.experts.7.down_proj"), 8); // the key is a regex
  assert.equal(c.rank("model.layers.0.self_attn.xv_proj"), 16); // the key must start after a dot
  assert.equal(c.rank("model.layers.0.self_attn.v_proj_extra"), 16); // anchored at the end
  const rs = loraConfig({ r: 16, loraAlpha: 8, useRslora: true });
  assert.equal(rs.scaling("x.q_proj"), 2); // 8 / sqrt(16)
  // First matching key in insertion order wins; no match returns the name itself.
  assert.equal(patternKey(["v_proj", "self_attn.v_proj"], "a.self_attn.v_proj"), "v_proj");
  assert.equal(patternKey(["k_proj"], "a.v_proj"), "a.v_proj");
  assert.equal(patternKey(["v_proj"], "v_proj"), "v_proj");
});

Deno.test("LoraConfig rejects typos, bad values and PEFT's cross-field violations", () => {
  assert.throws(() => loraConfig({ loraAlhpa: 16 } as never), /did you mean "loraAlpha"/);
  assert.throws(() => loraConfig({ r: 0 }), ConfigError);
  assert.throws(() => loraConfig({ bias: "some" as never }), /"none"\|"all"\|"lora_only"/);
  assert.throws(() => loraConfig({ targetModules: ".*q_proj", layersToTransform: [0] }), /regex/);
  assert.throws(
    () => loraConfig({ targetModules: ["q_proj"], layersPattern: "layers" }),
    /requires layersToTransform/,
  );
  assert.throws(() => loraConfig({ targetModules: "(unclosed" }), /not a valid regex/);
  // "all-linear" is not a regex, so layer options are allowed with it.
  loraConfig({ targetModules: "all-linear", layersToTransform: 0 });
});

Deno.test("toPeftJson writes every PEFT field in snake_case, sorted, and round-trips", () => {
  const c = loraConfig({
    r: 8,
    loraAlpha: 16,
    loraDropout: 0.05,
    targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "down_proj", "up_proj", "lm_head"],
    baseModelNameOrPath: "meta-llama/Llama-2-13b-hf",
    rankPattern: { lm_head: 4 },
  });
  const json = toPeftJson(c);
  const keys = Object.keys(json);
  assert.deepEqual(keys, [...keys].sort());
  for (const k of Object.keys(PEFT_UNSUPPORTED_DEFAULTS)) assert.ok(k in json, k);
  for (
    const k of [
      "r",
      "lora_alpha",
      "lora_dropout",
      "target_modules",
      "bias",
      "use_rslora",
      "init_lora_weights",
      "rank_pattern",
      "alpha_pattern",
      "layers_to_transform",
      "layers_pattern",
      "fan_in_fan_out",
      "modules_to_save",
      "task_type",
      "peft_type",
      "base_model_name_or_path",
      "revision",
      "inference_mode",
      "exclude_modules",
    ]
  ) assert.ok(k in json, k);
  assert.ok(!keys.some((k) => /[A-Z]/.test(k)));
  assert.equal(json.task_type, "CAUSAL_LM");
  const back = fromPeftJson(JSON.parse(JSON.stringify(json)));
  const { rank: _r, alpha: _a, scaling: _s, ...data } = back;
  const { rank: _r2, alpha: _a2, scaling: _s2, ...orig } = c;
  assert.deepEqual(data, orig);
});

Deno.test("fromPeftJson refuses features Ferry lacks and ignores unknown keys", () => {
  assert.throws(() => fromPeftJson({ r: 8, use_dora: true }), /does not support use_dora=true/);
  assert.throws(() => fromPeftJson({ peft_type: "IA3" }), /peft_type must be "LORA"/);
  assert.throws(() => fromPeftJson({ r: "8" }), ConfigError);
  const c = fromPeftJson({ r: 4, peft_version: "0.17.1", some_future_field: 1, loftq_config: null });
  assert.equal(c.r, 4);
});
