/**
 * PEFT folders on a model: Ferry's save → load round trip, a folder written as PEFT writes it
 * (test/fixtures/make_peft_golden.py) against torch's logits, and the load-time checks.
 */
import assert from "node:assert/strict";
import { createDevice } from "../../src/device/create_device.ts";
import { FormatError } from "../../src/errors.ts";
import { SafetensorsFile, writeSafetensors } from "../../src/io/safetensors.ts";
import { loadLoraAdapter, saveLoraAdapter } from "../../src/lora/adapter_io.ts";
import { applyLora } from "../../src/lora/lora_model.ts";
import { loadModel } from "../../src/models/load.ts";
import { testOnDevices } from "../_helpers.ts";
import { assertLogitsClose } from "../models/_fixtures.ts";
import { loadFixture, logitsOf, promptOf } from "./_lora_fixtures.ts";
import { asDenseLinear } from "../../src/nn/linear_like.ts";

const dense = (l: Parameters<typeof asDenseLinear>[0]) => asDenseLinear(l, "read a test weight");

const GOLDEN_DIR = new URL("../fixtures/peft/llama-gqa-lora/", import.meta.url).pathname;
const cpu = await createDevice({ backend: "cpu" });

async function readGolden(): Promise<{ ids: Int32Array; logits: Float32Array }> {
  using st = await SafetensorsFile.open(`${GOLDEN_DIR}golden.safetensors`);
  const ids = (await st.read("input_ids")).data;
  return {
    ids: new Int32Array(ids.buffer, ids.byteOffset, ids.byteLength / 4),
    logits: await st.readF32("logits"),
  };
}

/** A copy of the golden adapter folder in a temp dir. */
async function copyGolden(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "ferry-peft-" });
  for (const f of ["adapter_config.json", "adapter_model.safetensors"]) {
    await Deno.copyFile(`${GOLDEN_DIR}${f}`, `${dir}/${f}`);
  }
  return dir;
}

testOnDevices(
  "saveLoraAdapter() then loadLoraAdapter() on a fresh model gives identical logits",
  async (device) => {
    const name = "mixtral-top2-f32";
    const dir = await Deno.makeTempDir({ prefix: "ferry-lora-" });
    try {
      using model = await loadFixture(name, device);
      using lora = applyLora(model, {
        r: 4,
        loraAlpha: 4,
        targetModules: "all-linear",
        rankPattern: { w2: 2 },
        initLoraWeights: false,
      }, { seed: 2 });
      const expected = await logitsOf(model, promptOf(name));
      await saveLoraAdapter(dir, lora, { baseModelNameOrPath: "tiny/mixtral" });

      const json = JSON.parse(await Deno.readTextFile(`${dir}/adapter_config.json`));
      assert.equal(json.base_model_name_or_path, "tiny/mixtral");
      assert.deepEqual([json.r, json.lora_alpha, json.rank_pattern, json.peft_type, json.task_type], [
        4,
        4,
        { w2: 2 },
        "LORA",
        "CAUSAL_LM",
      ]);
      assert.deepEqual(json.target_modules.toSorted(), [
        "gate",
        "k_proj",
        "o_proj",
        "q_proj",
        "v_proj",
        "w1",
        "w2",
        "w3",
      ]);
      using st = await SafetensorsFile.open(`${dir}/adapter_model.safetensors`);
      assert.equal(st.names.length, 2 * lora.modules.length);
      const key = "base_model.model.model.layers.1.block_sparse_moe.experts.3.w2.lora_A.weight";
      assert.deepEqual([st.info(key).dtype, [...st.info(key).shape]], ["F32", [
        2,
        model.config.moeIntermediate,
      ]]);

      using copy = await loadFixture(name, device);
      using loaded = await loadLoraAdapter(dir, copy);
      assert.deepEqual(loaded.modules, lora.modules);
      assert.deepEqual(await logitsOf(copy, promptOf(name)), expected);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

testOnDevices(
  "loadLoraAdapter() reads a folder written as PEFT writes it and matches torch's logits",
  async (device) => {
    const { ids, logits } = await readGolden();
    using model = await loadFixture("llama-gqa-tied-f32", device);
    assert.deepEqual(ids, promptOf("llama-gqa-tied-f32"));
    const base = await logitsOf(model, ids);
    using lora = await loadLoraAdapter(GOLDEN_DIR, model);
    assert.deepEqual(
      lora.modules,
      [0, 1].flatMap((i) => [
        `model.layers.${i}.self_attn.q_proj`,
        `model.layers.${i}.self_attn.v_proj`,
        `model.layers.${i}.mlp.down_proj`,
      ]),
    );
    assert.equal(lora.config.baseModelNameOrPath, "test/fixtures/models/llama-gqa-tied-f32");
    assert.equal(lora.adapter("model.layers.0.self_attn.v_proj")!.scaling, 8 / 2); // rank_pattern v_proj: 2
    assert.equal(lora.adapter("model.layers.1.mlp.down_proj")!.scaling, 2 / 4); // alpha_pattern
    assert.equal(lora.adapter("model.layers.0.mlp.down_proj")!.scaling, 8 / 4);
    assert.ok(Math.max(...base.map((v, i) => Math.abs(v - logits[i]))) > 0.05, "the adapter matters");
    assertLogitsClose(await logitsOf(model, ids), logits, "attached");
    await lora.merge();
    assertLogitsClose(await logitsOf(model, ids), logits, "merged");
  },
);

Deno.test("loadLoraAdapter() names the key and the expected shape when the model does not fit", async () => {
  const fails = async (modelName: string, pattern: RegExp) => {
    using model = await loadFixture(modelName, cpu);
    await assert.rejects(
      loadLoraAdapter(GOLDEN_DIR, model),
      (e: Error) => e instanceof FormatError && pattern.test(e.message),
    );
    assert.equal(dense(model.layers[0].attention.qProj).adapter, undefined, "nothing attached");
  };
  // Another architecture: Mixtral has no mlp.down_proj.
  await fails(
    "mixtral-top2-f32",
    /"base_model\.model\.model\.layers\.0\.mlp\.down_proj\.lora_A\.weight" names no Linear module of this mixtral model \(closest: model\.layers\.0\.self_attn\./,
  );
  // Another size: Qwen2's intermediate size is 96.
  await fails(
    "qwen2-f16",
    /"base_model\.model\.model\.layers\.0\.mlp\.down_proj\.lora_A\.weight" must have shape \[4, 96\] \(r, in_features of model\.layers\.0\.mlp\.down_proj\): received \[4, 64\]/,
  );
});

Deno.test("loadLoraAdapter() rejects extra tensors and configs that disagree with the file", async () => {
  using model = await loadFixture("llama-gqa-tied-f32", cpu);
  const dir = await copyGolden();
  try {
    const configPath = `${dir}/adapter_config.json`;
    const json = JSON.parse(await Deno.readTextFile(configPath));
    await Deno.writeTextFile(
      configPath,
      JSON.stringify({ ...json, target_modules: ["q_proj", "down_proj"] }),
    );
    await assert.rejects(
      loadLoraAdapter(dir, model),
      /select other modules than the file holds; not targeted: model\.layers\.0\.self_attn\.v_proj/,
    );
    await Deno.writeTextFile(configPath, JSON.stringify(json));

    using st = await SafetensorsFile.open(`${GOLDEN_DIR}adapter_model.safetensors`);
    const tensors = new Map();
    for (const n of st.names) {
      tensors.set(n, { dtype: "F32", shape: [...st.info(n).shape], data: await st.readF32(n) });
    }
    const extra = "base_model.model.lm_head.modules_to_save.default.weight";
    tensors.set(extra, { dtype: "F32", shape: [2], data: new Float32Array(2) });
    await writeSafetensors(`${dir}/adapter_model.safetensors`, tensors, { format: "pt" });
    await assert.rejects(
      loadLoraAdapter(dir, model),
      (e: Error) =>
        e instanceof FormatError &&
        e.message.includes(`modules_to_save or trainable tokens are not supported): ${extra}`),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(dense(model.layers[0].attention.qProj).adapter, undefined);
});

Deno.test("saveLoraAdapter() records the folder the base model was loaded from as base_model_name_or_path", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry-lora-" });
  try {
    const modelDir = "test/fixtures/models/llama-gqa-tied-f32";
    using model = await loadModel(modelDir, { device: cpu });
    using lora = applyLora(model, { r: 2, targetModules: ["q_proj"] });
    await saveLoraAdapter(dir, lora);
    const json = JSON.parse(await Deno.readTextFile(`${dir}/adapter_config.json`));
    assert.equal(json.base_model_name_or_path, modelDir);
    await saveLoraAdapter(dir, lora, { baseModelNameOrPath: "org/name" }); // an explicit name wins
    assert.equal(
      JSON.parse(await Deno.readTextFile(`${dir}/adapter_config.json`)).base_model_name_or_path,
      "org/name",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
