/**
 * applyLora on the model fixtures: targets under each family's HF names, PEFT initialisation,
 * patterns, ownership and errors. (Merging: merge_test.ts; PEFT folders: adapter_io_test.ts.)
 */
import assert from "node:assert/strict";
import { createDevice } from "../../src/device/create_device.ts";
import { ConfigError, OutOfBudgetError } from "../../src/errors.ts";
import { loraSites } from "../../src/lora/hf_names.ts";
import { loraConfig } from "../../src/lora/lora_config.ts";
import { applyLora, LoraModel } from "../../src/lora/lora_model.ts";
import { loadFixture, logitsOf, promptOf } from "./_lora_fixtures.ts";
import { asDenseLinear } from "../../src/nn/linear_like.ts";

const dense = (l: Parameters<typeof asDenseLinear>[0]) => asDenseLinear(l, "read a test weight");

const device = await createDevice({ backend: "cpu" });
const LLAMA = "llama-gqa-tied-f32";

Deno.test("applyLora() defaults to q_proj and v_proj under HF names", async () => {
  using model = await loadFixture(LLAMA, device);
  using lora = applyLora(model, {});
  assert.deepEqual(lora.modules, [
    "model.layers.0.self_attn.q_proj",
    "model.layers.0.self_attn.v_proj",
    "model.layers.1.self_attn.q_proj",
    "model.layers.1.self_attn.v_proj",
  ]);
  assert.equal(
    dense(model.layers[0].attention.qProj).adapter,
    lora.adapter("model.layers.0.self_attn.q_proj"),
  );
  assert.equal(dense(model.layers[0].attention.kProj).adapter, undefined);
  assert.deepEqual(lora.config.targetModules, ["q_proj", "v_proj"]); // as PEFT records the default
});

Deno.test("applyLora() all-linear on Mixtral adapts the router and every expert's w1/w2/w3, not lm_head", async () => {
  using model = await loadFixture("mixtral-top2-f32", device);
  using lora = applyLora(model, { targetModules: "all-linear" });
  const layer0 = lora.modules.filter((m) => m.startsWith("model.layers.0."));
  assert.deepEqual(layer0.slice(0, 6), [
    "model.layers.0.self_attn.q_proj",
    "model.layers.0.self_attn.k_proj",
    "model.layers.0.self_attn.v_proj",
    "model.layers.0.self_attn.o_proj",
    "model.layers.0.block_sparse_moe.gate",
    "model.layers.0.block_sparse_moe.experts.0.w1",
  ]);
  assert.equal(layer0.length, 4 + 1 + 4 * 3);
  assert.ok(layer0.includes("model.layers.0.block_sparse_moe.experts.3.w2"));
  assert.ok(!lora.modules.includes("lm_head"));
  // As PEFT, the config now lists the leaf names found.
  assert.deepEqual([...lora.config.targetModules as string[]].sort(), [
    "gate",
    "k_proj",
    "o_proj",
    "q_proj",
    "v_proj",
    "w1",
    "w2",
    "w3",
  ]);
  // Expert adapters live in SwiGLUExperts.adapters under Ferry's projection names.
  const moe = model.layers[0].mlp as unknown as { experts: { adapters: Map<string, unknown> } };
  assert.equal(
    moe.experts.adapters.get("gate_proj.3"),
    lora.adapter("model.layers.0.block_sparse_moe.experts.3.w1"),
  );
  assert.equal(
    moe.experts.adapters.get("down_proj.3"),
    lora.adapter("model.layers.0.block_sparse_moe.experts.3.w2"),
  );
  const a = lora.adapter("model.layers.0.block_sparse_moe.experts.3.w2")!.a;
  assert.deepEqual(a.shape, [8, model.config.moeIntermediate]); // [r, in = F]
});

Deno.test("applyLora() on Qwen2-MoE names experts and shared expert as transformers does", async () => {
  using model = await loadFixture("qwen2-moe-f32", device);
  using lora = applyLora(model, { targetModules: ["gate_proj"] });
  assert.deepEqual(lora.modules, [
    "model.layers.0.mlp.gate_proj", // mlp_only_layers: [0]
    ...[0, 1, 2, 3].map((j) => `model.layers.1.mlp.experts.${j}.gate_proj`),
    "model.layers.1.mlp.shared_expert.gate_proj",
  ]);
  const names = loraSites(model).map((s) => s.name);
  assert.ok(
    names.includes("model.layers.1.mlp.gate") && names.includes("model.layers.1.mlp.shared_expert_gate"),
  );
});

Deno.test("applyLora() initialises as PEFT: A uniform(±1/√in), B zeros, outputs unchanged", async () => {
  using model = await loadFixture(LLAMA, device);
  const before = await logitsOf(model, promptOf(LLAMA));
  using lora = applyLora(model, { r: 4, targetModules: ["q_proj", "down_proj"] }, { seed: 3 });
  for (const [name, t] of lora.trainableParameters()) {
    const v = await t.toArray() as Float32Array;
    if (name.endsWith("lora_B.weight")) assert.ok(v.every((x) => x === 0), name);
    else {
      const bound = 1 / Math.sqrt(t.shape[1]);
      assert.ok(v.every((x) => Math.abs(x) <= bound), name);
      assert.ok(Math.max(...v.map(Math.abs)) > 0.8 * bound, `${name} fills its range`);
    }
  }
  assert.deepEqual(await logitsOf(model, promptOf(LLAMA)), before);
});

Deno.test("applyLora() gaussian init has std 1/r; false makes B random too; seeds reproduce", async () => {
  using model = await loadFixture(LLAMA, device);
  const r = 4;
  const gauss = applyLora(model, { r, targetModules: "all-linear", initLoraWeights: "gaussian" });
  const values = [...gauss.trainableParameters()].filter(([n]) => n.endsWith("lora_A.weight"));
  const all = (await Promise.all(values.map(([, t]) => t.toArray()))).flatMap((v) => [...v as Float32Array]);
  const std = Math.sqrt(all.reduce((s, x) => s + x * x, 0) / all.length);
  assert.ok(Math.abs(std - 1 / r) < 0.05 / r, `std ${std}`);
  gauss.dispose();

  const first = applyLora(model, { r, initLoraWeights: false }, { seed: 7 });
  const b = await first.adapter("model.layers.1.self_attn.v_proj")!.b.toArray() as Float32Array;
  assert.ok(b.some((x) => x !== 0) && b.every((x) => Math.abs(x) <= 1 / Math.sqrt(r)));
  first.dispose();
  const again = applyLora(model, { r, initLoraWeights: false }, { seed: 7 });
  assert.deepEqual(await again.adapter("model.layers.1.self_attn.v_proj")!.b.toArray(), b);
  again.dispose();
  using other = applyLora(model, { r, initLoraWeights: false }, { seed: 8 });
  assert.notDeepEqual(await other.adapter("model.layers.1.self_attn.v_proj")!.b.toArray(), b);
});

Deno.test("applyLora() applies rankPattern, alphaPattern, rsLoRA and layersToTransform", async () => {
  using model = await loadFixture(LLAMA, device);
  using lora = applyLora(model, {
    r: 8,
    loraAlpha: 16,
    targetModules: ["q_proj", "v_proj"],
    rankPattern: { v_proj: 2 },
    alphaPattern: { "model.layers.1.self_attn.q_proj": 4 },
    layersToTransform: [1],
    loraDropout: 0.1,
  });
  assert.deepEqual(lora.modules, ["model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"]);
  const q = lora.adapter("model.layers.1.self_attn.q_proj")!;
  const v = lora.adapter("model.layers.1.self_attn.v_proj")!;
  assert.deepEqual([q.a.shape, q.b.shape, v.a.shape, v.b.shape], [[8, 32], [32, 8], [2, 32], [16, 2]]);
  assert.deepEqual([q.scaling, v.scaling, q.dropout], [4 / 8, 16 / 2, 0.1]);
  assert.equal(lora.numTrainableParameters(), 8 * 64 + 2 * 48);
  const all = model.numParameters().total + 608;
  assert.equal(
    lora.summary(),
    `trainable params: 608 || all params: ${all.toLocaleString("en-US")} || trainable%: ${
      (100 * 608 / all).toFixed(4)
    }\n  model.layers.1.self_attn.q_proj\n  model.layers.1.self_attn.v_proj`,
  );
  lora.dispose();
  using rs = applyLora(model, { r: 4, loraAlpha: 8, useRslora: true });
  assert.equal(rs.adapter("model.layers.0.self_attn.q_proj")!.scaling, 8 / 2);
});

Deno.test("LoraModel owns its adapters: ledger category lora, dispose detaches and frees", async () => {
  using model = await loadFixture("olmoe-f32", device);
  const base = device.ledger.current("lora");
  const lora = applyLora(model, { r: 2, targetModules: ["q_proj", "down_proj"] });
  const params = lora.trainableParameters();
  const bytes = [...params.values()].reduce((n, t) => n + t.byteLength, 0);
  assert.equal(device.ledger.current("lora") - base, bytes);
  assert.ok(params.has("model.layers.1.mlp.experts.2.down_proj.lora_B.weight"));
  assert.deepEqual(params.get("model.layers.1.mlp.experts.2.down_proj.lora_B.weight")!.shape, [32, 2]);
  lora.dispose();
  lora.dispose();
  assert.equal(device.ledger.current("lora"), base);
  assert.equal(dense(model.layers[1].attention.qProj).adapter, undefined);
  assert.equal(
    (model.layers[1].mlp as unknown as { experts: { adapters: Map<string, unknown> } }).experts.adapters.size,
    0,
  );
  assert.throws(() => lora.trainableParameters(), /disposed/);
});

Deno.test("applyLora() rejects what Ferry does not support, with what to do", async () => {
  using model = await loadFixture(LLAMA, device);
  const fails = (options: Parameters<typeof applyLora>[1], pattern: RegExp) =>
    assert.throws(
      () => applyLora(model, options),
      (e: Error) => e instanceof ConfigError && pattern.test(e.message),
    );
  fails({ bias: "all" }, /bias "all" is not supported: Ferry supports bias "none" only/);
  fails(
    { initLoraWeights: "pissa" },
    /initLoraWeights "pissa" is not supported: expected one of true, false/,
  );
  fails({ fanInFanOut: true }, /fanInFanOut .* set it false/);
  fails({ modulesToSave: ["lm_head"] }, /modulesToSave .* not supported/);
  fails({ targetModules: ["q_proj", "lm_head"] }, /lm_head is tied to embed_tokens/);
  fails({ targetModules: ["q_porj"] }, /Did you mean "q_proj"/);
  using lora = applyLora(model, { targetModules: ["q_proj"] });
  assert.throws(() => applyLora(model, { targetModules: ["q_proj"] }), /already carries an adapter/);
  assert.throws(
    () =>
      new LoraModel(
        model,
        loraConfig({ r: 2 }),
        new Map([["model.layers.0.self_attn.k_proj", { A: new Float32Array(3), B: new Float32Array(32) }]]),
      ),
    /expected A \[2, 32\] and B \[16, 2\] \(64 and 32 values\): received 3 and 32/,
  );
  assert.equal(lora.modules.length, 2);
});

Deno.test("applyLora() over the memory budget frees what it allocated and attaches nothing", async () => {
  const small = await createDevice({ backend: "cpu", budgetBytes: 200_000 });
  using model = await loadFixture(LLAMA, small);
  assert.throws(() => applyLora(model, { r: 64, targetModules: "all-linear" }), OutOfBudgetError);
  assert.equal(small.ledger.current("lora"), 0);
  assert.ok(model.layers.every((l) => dense(l.attention.qProj).adapter === undefined));
  using lora = applyLora(model, { r: 2 }); // the modules are free again
  assert.equal(lora.modules.length, 4);
});
