import assert from "node:assert/strict";
import { FormatError } from "../../src/errors.ts";
import { writeSafetensors } from "../../src/io/safetensors.ts";
import { loraConfig } from "../../src/lora/lora_config.ts";
import { ADAPTER_CONFIG_NAME, loadAdapter, peftKey, saveAdapter } from "../../src/lora/peft_io.ts";
import { SafetensorsFile } from "../../src/io/safetensors.ts";
import { randn } from "../_helpers.ts";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ferry_peft_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("saveAdapter writes PEFT's files and loadAdapter reads them back", () =>
  withDir(async (dir) => {
    const config = loraConfig({
      r: 4,
      loraAlpha: 16,
      loraDropout: 0.05,
      targetModules: ["q_proj", "down_proj"],
      rankPattern: { down_proj: 2 },
      baseModelNameOrPath: "Qwen/Qwen1.5-MoE-A2.7B",
    });
    const q = "model.layers.0.self_attn.q_proj";
    const down = "model.layers.1.mlp.experts.3.down_proj";
    const tensors = new Map([
      [q, { A: randn(4 * 8, 1), B: randn(6 * 4, 2) }], // A [4, 8], B [6, 4]
      [down, { A: randn(2 * 16, 3), B: randn(8 * 2, 4) }], // r = 2 from rank_pattern
    ]);
    await saveAdapter(dir, config, tensors);
    // The config: PEFT JSON (sorted, indent 2, inference_mode true).
    const text = await Deno.readTextFile(`${dir}/${ADAPTER_CONFIG_NAME}`);
    const json = JSON.parse(text);
    assert.equal(text, JSON.stringify(json, null, 2));
    assert.deepEqual(Object.keys(json), Object.keys(json).sort());
    assert.equal(json.inference_mode, true);
    assert.deepEqual(json.rank_pattern, { down_proj: 2 });
    assert.equal(json.base_model_name_or_path, "Qwen/Qwen1.5-MoE-A2.7B");
    // The weights: PEFT keys, no adapter name, format "pt".
    using st = await SafetensorsFile.open(`${dir}/adapter_model.safetensors`);
    assert.deepEqual(
      [...st.names].sort(),
      [
        `base_model.model.${q}.lora_A.weight`,
        `base_model.model.${q}.lora_B.weight`,
        `base_model.model.${down}.lora_A.weight`,
        `base_model.model.${down}.lora_B.weight`,
      ].sort(),
    );
    assert.equal(st.metadata.format, "pt");
    assert.deepEqual(st.info(peftKey(q, "A")).shape, [4, 8]);
    assert.deepEqual(st.info(peftKey(q, "B")).shape, [6, 4]);
    const loaded = await loadAdapter(dir);
    assert.equal(loaded.config.scaling(down), 8);
    assert.equal(loaded.config.inferenceMode, true);
    assert.deepEqual([...loaded.tensors.keys()].sort(), [down, q].sort());
    const lq = loaded.tensors.get(q)!;
    assert.deepEqual([lq.r, lq.inFeatures, lq.outFeatures], [4, 8, 6]);
    assert.deepEqual(lq.A, tensors.get(q)!.A);
    assert.deepEqual(loaded.tensors.get(down)!.B, tensors.get(down)!.B);
    assert.equal(loaded.extra.size, 0);
    await assert.rejects(
      () => saveAdapter(dir, config, { [q]: { A: new Float32Array(5), B: new Float32Array(4) } }),
      TypeError,
    );
  }));

/** adapter_config.json exactly as PEFT 0.17 `save_pretrained` writes it (json.dumps(indent=2, sort_keys=True)). */
const PEFT_CONFIG = `{
  "alpha_pattern": {},
  "auto_mapping": null,
  "base_model_name_or_path": "meta-llama/Llama-2-7b-hf",
  "bias": "none",
  "corda_config": null,
  "eva_config": null,
  "exclude_modules": null,
  "fan_in_fan_out": false,
  "inference_mode": true,
  "init_lora_weights": true,
  "layer_replication": null,
  "layers_pattern": null,
  "layers_to_transform": null,
  "loftq_config": {},
  "lora_alpha": 16,
  "lora_bias": false,
  "lora_dropout": 0.05,
  "megatron_config": null,
  "megatron_core": "megatron.core",
  "modules_to_save": null,
  "peft_type": "LORA",
  "qalora_group_size": 16,
  "r": 2,
  "rank_pattern": {},
  "revision": null,
  "target_modules": [
    "v_proj",
    "q_proj"
  ],
  "target_parameters": null,
  "task_type": "CAUSAL_LM",
  "trainable_token_indices": null,
  "use_dora": false,
  "use_qalora": false,
  "use_rslora": false
}`;

const bf16 = (xs: number[]) =>
  new Uint16Array(new Uint32Array(new Float32Array(xs).buffer).map((u) => u >>> 16));

Deno.test("a hand-written PEFT adapter (bf16, optional .default.) loads", () =>
  withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/adapter_config.json`, PEFT_CONFIG);
    const p = "base_model.model.model.layers.0.self_attn";
    await writeSafetensors(`${dir}/adapter_model.safetensors`, {
      [`${p}.q_proj.lora_A.weight`]: { dtype: "BF16", shape: [2, 3], data: bf16([1, 2, 3, 4, 5, 6]) },
      [`${p}.q_proj.lora_B.weight`]: { dtype: "BF16", shape: [4, 2], data: bf16([0, 0, 0, 0, 0, 0, 0, 0.5]) },
      [`${p}.v_proj.lora_A.default.weight`]: {
        dtype: "F32",
        shape: [2, 3],
        data: new Float32Array(6).fill(1),
      },
      [`${p}.v_proj.lora_B.default.weight`]: { dtype: "F32", shape: [1, 2], data: new Float32Array([7, 8]) },
      ["base_model.model.lm_head.weight"]: { dtype: "F32", shape: [1, 1], data: new Float32Array([9]) },
    }, { format: "pt" });
    const { config, tensors, extra } = await loadAdapter(dir);
    assert.deepEqual(config.targetModules, ["v_proj", "q_proj"]);
    assert.equal(config.scaling("model.layers.0.self_attn.q_proj"), 8);
    assert.equal(config.loraDropout, 0.05);
    const q = tensors.get("model.layers.0.self_attn.q_proj")!;
    assert.deepEqual(Array.from(q.A), [1, 2, 3, 4, 5, 6]);
    assert.equal(q.B[7], 0.5);
    const v = tensors.get("model.layers.0.self_attn.v_proj")!;
    assert.deepEqual([v.r, v.inFeatures, v.outFeatures], [2, 3, 1]);
    assert.deepEqual([...extra.keys()], ["base_model.model.lm_head.weight"]);
  }));

Deno.test("loadAdapter reports malformed folders as FormatError", () =>
  withDir(async (dir) => {
    await assert.rejects(() => loadAdapter(dir), FormatError); // nothing there
    await Deno.writeTextFile(`${dir}/adapter_config.json`, "{ not json");
    await assert.rejects(() => loadAdapter(dir), /adapter_config.json is invalid/);
    await Deno.writeTextFile(
      `${dir}/adapter_config.json`,
      PEFT_CONFIG.replace('"use_dora": false', '"use_dora": true'),
    );
    await assert.rejects(() => loadAdapter(dir), /does not support use_dora=true/);
    await Deno.writeTextFile(`${dir}/adapter_config.json`, PEFT_CONFIG);
    await assert.rejects(() => loadAdapter(dir), /cannot open/); // no weights
    const key = "base_model.model.model.layers.0.self_attn.q_proj";
    const write = (t: Record<string, { shape: number[] }>) =>
      writeSafetensors(
        `${dir}/adapter_model.safetensors`,
        Object.fromEntries(
          Object.entries(t).map((
            [k, { shape }],
          ) => [k, { dtype: "F32" as const, shape, data: new Float32Array(shape[0] * shape[1]) }]),
        ),
      );
    await write({ [`${key}.lora_A.weight`]: { shape: [2, 3] } });
    await assert.rejects(() => loadAdapter(dir), /has lora_A but no lora_B/);
    await write({ [`${key}.lora_A.weight`]: { shape: [3, 3] }, [`${key}.lora_B.weight`]: { shape: [4, 3] } });
    await assert.rejects(() => loadAdapter(dir), /for r=2: received \[3,3\] and \[4,3\]/);
    await Deno.writeFile(`${dir}/adapter_model.safetensors`, new Uint8Array([1, 2, 3]));
    await assert.rejects(() => loadAdapter(dir), FormatError);
  }));
