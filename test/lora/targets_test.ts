import assert from "node:assert/strict";
import { ConfigError } from "../../src/errors.ts";
import { loraConfig } from "../../src/lora/lora_config.ts";
import { layerIndex, linearModules, resolveTargets } from "../../src/lora/targets.ts";

const ATTN = ["q_proj", "k_proj", "v_proj", "o_proj"];
/** A 3-layer dense model's Linear module names plus lm_head. */
const DENSE = [
  ...[0, 1, 2].flatMap((i) => [
    ...ATTN.map((p) => `model.layers.${i}.self_attn.${p}`),
    ...["gate_proj", "up_proj", "down_proj"].map((p) => `model.layers.${i}.mlp.${p}`),
  ]),
  "lm_head",
];

Deno.test("list targets: exact or dot-suffix match, in input order", () => {
  const got = resolveTargets(loraConfig({ targetModules: ["v_proj", "q_proj"] }), DENSE);
  assert.deepEqual(
    got,
    [0, 1, 2].flatMap((i) => [`model.layers.${i}.self_attn.q_proj`, `model.layers.${i}.self_attn.v_proj`]),
  );
  assert.deepEqual(resolveTargets(loraConfig({ targetModules: ["lm_head"] }), DENSE), ["lm_head"]);
  assert.deepEqual(resolveTargets(loraConfig({ targetModules: ["layers.1.mlp.up_proj"] }), DENSE), [
    "model.layers.1.mlp.up_proj",
  ]);
  // Suffix means a whole segment: "proj" does not match "q_proj".
  assert.throws(() => resolveTargets(loraConfig({ targetModules: ["proj"] }), DENSE), ConfigError);
  // null target_modules: PEFT's Llama/Qwen2/Mixtral default.
  assert.equal(resolveTargets(loraConfig(), DENSE).length, 6);
});

Deno.test("regex targets use re.fullmatch", () => {
  const re = String.raw`model\.layers\.[02]\.self_attn\.(q|k)_proj`;
  assert.deepEqual(resolveTargets(loraConfig({ targetModules: re }), DENSE), [
    "model.layers.0.self_attn.q_proj",
    "model.layers.0.self_attn.k_proj",
    "model.layers.2.self_attn.q_proj",
    "model.layers.2.self_attn.k_proj",
  ]);
  assert.equal(resolveTargets(loraConfig({ targetModules: ".*(?P<p>down)_proj" }), DENSE).length, 3);
  // A partial match is not enough.
  assert.throws(
    () => resolveTargets(loraConfig({ targetModules: "q_proj" }), DENSE),
    /regex "q_proj" matches no module/,
  );
});

Deno.test("all-linear takes every Linear leaf but lm_head, including MoE routers", () => {
  const moe = [...DENSE, "model.layers.0.mlp.gate", "model.layers.0.mlp.experts.0.gate_proj"];
  const got = resolveTargets(loraConfig({ targetModules: "ALL-LINEAR" }), moe);
  assert.ok(!got.includes("lm_head"));
  assert.equal(got.length, moe.length - 1);
});

Deno.test("layersToTransform filters by PEFT's layer index, exact names bypass it", () => {
  const c = loraConfig({
    targetModules: ["q_proj", "model.layers.0.mlp.up_proj"],
    layersToTransform: [1, 2],
    layersPattern: "layers",
  });
  assert.deepEqual(resolveTargets(c, DENSE), [
    "model.layers.0.mlp.up_proj",
    "model.layers.1.self_attn.q_proj",
    "model.layers.2.self_attn.q_proj",
  ]);
  assert.deepEqual(resolveTargets(loraConfig({ targetModules: ["q_proj"], layersToTransform: 2 }), DENSE), [
    "model.layers.2.self_attn.q_proj",
  ]);
  assert.throws(
    () => resolveTargets(loraConfig({ targetModules: ["q_proj"], layersToTransform: 9 }), DENSE),
    /leaves no module/,
  );
  // Without a pattern PEFT's greedy regex finds the last ".name.N." — the expert index.
  assert.equal(layerIndex("model.layers.3.mlp.experts.5.gate_proj", null), 5);
  assert.equal(layerIndex("model.layers.3.mlp.experts.5.gate_proj", "layers"), 3);
  assert.equal(layerIndex("model.layers.3.mlp.experts.5.gate_proj", ["h", "layers"]), 3);
  assert.equal(layerIndex("lm_head", null), undefined);
});

Deno.test("excludeModules and modulesToSave remove modules first", () => {
  const c = loraConfig({
    targetModules: ["q_proj", "v_proj"],
    excludeModules: ["layers.0.self_attn.q_proj"],
  });
  assert.equal(resolveTargets(c, DENSE).length, 5);
  const re = loraConfig({
    targetModules: ["q_proj"],
    excludeModules: String.raw`.*\.[01]\.self_attn\.q_proj`,
  });
  assert.deepEqual(resolveTargets(re, DENSE), ["model.layers.2.self_attn.q_proj"]);
  const save = loraConfig({ targetModules: ["q_proj", "lm_head"], modulesToSave: ["lm_head"] });
  assert.ok(!resolveTargets(save, DENSE).includes("lm_head"));
});

Deno.test("an unmatched target names close modules and the available leaves", () => {
  try {
    resolveTargets(loraConfig({ targetModules: ["q_proj", "v_prj"] }), DENSE);
    assert.fail("expected a ConfigError");
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /entry "v_prj" matches no module/);
    assert.match(err.message, /Did you mean "v_proj"/);
    assert.match(err.message, /model\.layers\.0\.self_attn\.v_proj/);
    assert.match(
      err.message,
      /Available leaf names: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head/,
    );
  }
  assert.throws(
    () => resolveTargets(loraConfig({ targetModules: ["w1"] }), DENSE),
    (e) => e instanceof ConfigError && !e.message.includes("Did you mean") && e.message.includes("Available"),
  );
});

Deno.test("linearModules expands stacked experts into PEFT per-expert names", () => {
  const params = new Map<string, { shape: number[] }>([
    ["model.embed_tokens.weight", { shape: [100, 8] }],
    ["model.layers.0.input_layernorm.weight", { shape: [8] }],
    ["model.layers.0.self_attn.q_proj.weight", { shape: [8, 8] }],
    ["model.layers.0.self_attn.q_proj.bias", { shape: [8] }],
    ["model.layers.0.mlp.gate.weight", { shape: [3, 8] }],
    ["model.layers.0.mlp.experts.gate_proj", { shape: [3, 16, 8] }],
    ["model.layers.0.mlp.experts.down_proj", { shape: [3, 8, 16] }],
    ["lm_head.weight", { shape: [100, 8] }],
  ]);
  const mods = linearModules(params);
  assert.deepEqual(mods.map((m) => m.name), [
    "model.layers.0.self_attn.q_proj",
    "model.layers.0.mlp.gate",
    "model.layers.0.mlp.experts.0.gate_proj",
    "model.layers.0.mlp.experts.1.gate_proj",
    "model.layers.0.mlp.experts.2.gate_proj",
    "model.layers.0.mlp.experts.0.down_proj",
    "model.layers.0.mlp.experts.1.down_proj",
    "model.layers.0.mlp.experts.2.down_proj",
    "lm_head",
  ]);
  const down1 = mods.find((m) => m.name === "model.layers.0.mlp.experts.1.down_proj")!;
  assert.deepEqual(down1, {
    name: "model.layers.0.mlp.experts.1.down_proj",
    outFeatures: 8,
    inFeatures: 16,
    expert: { parameter: "model.layers.0.mlp.experts.down_proj", index: 1 },
  });
  const names = mods.map((m) => m.name);
  const experts = resolveTargets(
    loraConfig({ targetModules: String.raw`.*\.experts\.[02]\.down_proj` }),
    names,
  );
  assert.deepEqual(experts, [
    "model.layers.0.mlp.experts.0.down_proj",
    "model.layers.0.mlp.experts.2.down_proj",
  ]);
  assert.equal(resolveTargets(loraConfig({ targetModules: ["gate_proj"] }), names).length, 3);
});
