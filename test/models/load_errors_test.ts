/** `loadModel` on bad input: every failure is a clear error naming what is wrong, and nothing leaks. */
import assert from "node:assert/strict";
import { createDevice } from "../../src/device/create_device.ts";
import { ConfigError, FormatError, OutOfBudgetError } from "../../src/errors.ts";
import { SafetensorsFile, type TensorInput, writeSafetensors } from "../../src/io/safetensors.ts";
import { loadModel } from "../../src/models/load.ts";
import { copyFixture, fixture } from "./_fixtures.ts";

const device = await createDevice({ backend: "cpu" });
const TIED = fixture("llama-gqa-tied-f32").dir;

/** A copy of the tied Llama fixture whose single model.safetensors is rewritten by `edit`. */
async function edited(edit: (tensors: Map<string, TensorInput>) => void): Promise<string> {
  const dir = await copyFixture(TIED);
  const tensors = new Map<string, TensorInput>();
  {
    using st = await SafetensorsFile.open(`${dir}/model.safetensors`);
    for (const name of st.names) tensors.set(name, await st.read(name));
  }
  edit(tensors);
  await writeSafetensors(`${dir}/model.safetensors`, tensors, { format: "pt" });
  return dir;
}

/** A copy of the tied Llama fixture with config.json changed by `edit`, or replaced by a string. */
async function withConfig(edit: ((config: Record<string, unknown>) => void) | string): Promise<string> {
  const dir = await copyFixture(TIED);
  const config = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
  if (typeof edit !== "string") edit(config);
  await Deno.writeTextFile(`${dir}/config.json`, typeof edit === "string" ? edit : JSON.stringify(config));
  return dir;
}

async function rejects(dir: string, error: new (...args: never[]) => Error, message: RegExp): Promise<void> {
  const before = device.ledger.current();
  try {
    await assert.rejects(() => loadModel(dir, { device }), (err: Error) => {
      assert.ok(err instanceof error, `expected ${error.name}, got ${err.name}: ${err.message}`);
      assert.match(err.message, message);
      return true;
    });
    assert.equal(device.ledger.current(), before, "a failed load returns every byte to the ledger");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("loadModel lists every missing tensor by name", async () => {
  const dir = await edited((t) => {
    t.delete("model.layers.1.self_attn.k_proj.weight");
    t.delete("model.norm.weight");
  });
  await rejects(
    dir,
    FormatError,
    /2 tensors are missing from the checkpoint: model\.layers\.1\.self_attn\.k_proj\.weight, model\.norm\.weight; check that config\.json matches the weights/,
  );
});

Deno.test("loadModel shortens a long list of missing tensors and points at a renamed checkpoint", async () => {
  let renamed = 0;
  const dir = await edited((t) => {
    for (const name of [...t.keys()].filter((n) => n.startsWith("model.layers."))) {
      t.set(name.replace("model.layers.", "blocks."), t.get(name)!); // another naming scheme
      t.delete(name);
      renamed++;
    }
  });
  assert.ok(renamed > 12, "the fixture has more layer tensors than the list shows");
  await rejects(
    dir,
    FormatError,
    new RegExp(
      `${renamed} tensors are missing from the checkpoint: (model\\.layers\\.[^,]+, ){12}… \\(${
        renamed - 12
      } more\\); check that config\\.json matches the weights; the checkpoint has ${renamed} tensors the ` +
        "model does not use \\(blocks\\.",
    ),
  );
});

Deno.test("loadModel names a tensor with the wrong shape, with expected and received shapes", async () => {
  const dir = await edited((t) => {
    const up = t.get("model.layers.0.mlp.up_proj.weight")!;
    t.set("model.layers.0.mlp.up_proj.weight", { ...up, shape: [up.shape[1], up.shape[0]] });
  });
  await rejects(
    dir,
    FormatError,
    /tensors do not match config\.json:\n {2}model\.layers\.0\.mlp\.up_proj\.weight: expected shape \[64,32\], received \[32,64\]/,
  );
});

Deno.test("loadModel refuses integer weights", async () => {
  const dir = await edited((t) => {
    const w = t.get("model.norm.weight")!;
    t.set("model.norm.weight", { dtype: "I32", shape: w.shape, data: w.data });
  });
  await rejects(dir, FormatError, /model\.norm\.weight: expected F32, F16 or BF16, received I32/);
});

Deno.test("loadModel surfaces a truncated shard as a FormatError naming the file", async () => {
  const dir = await copyFixture(fixture("llama-bf16-sharded").dir);
  const shard = `${dir}/model-00002-of-00002.safetensors`;
  const size = (await Deno.stat(shard)).size;
  await Deno.truncate(shard, Math.floor(size / 2));
  await rejects(
    dir,
    FormatError,
    /Cannot read safetensors file \S+\/model-00002-of-00002\.safetensors: tensor "[\w.]+" data_offsets \[\d+, \d+\] run past the end of the file/,
  );
});

Deno.test("loadModel refuses an unsupported model_type, listing the supported ones", async () => {
  await rejects(
    await withConfig((c) => {
      c.model_type = "gpt2";
    }),
    ConfigError,
    /unsupported model_type "gpt2": expected one of llama, mistral, qwen2, mixtral, qwen2_moe, qwen3_moe, olmoe/,
  );
  await rejects(
    await withConfig((c) => {
      delete c.model_type;
    }),
    ConfigError,
    /config.json has no model_type/,
  );
});

Deno.test("loadModel refuses RoPE scaling and a config that does not validate", async () => {
  await rejects(
    await withConfig((c) => {
      c.rope_scaling = { rope_type: "llama3", factor: 8 };
    }),
    ConfigError,
    /rope_scaling: RoPE scaling is not supported yet \(received \{"rope_type":"llama3","factor":8\}\)/,
  );
  await rejects(
    await withConfig((c) => {
      c.num_key_value_heads = 3;
    }),
    ConfigError,
    /num_key_value_heads: must divide num_attention_heads = 4 \(received 3\)/,
  );
  await rejects(
    await withConfig((c) => {
      c.hidden_size = "32";
    }),
    ConfigError,
    /Invalid llama config:\n {2}hidden_size: expected number \(received string "32"\)/,
  );
});

Deno.test("loadModel reports a missing or malformed config.json", async () => {
  const dir = await copyFixture(TIED);
  await Deno.remove(`${dir}/config.json`);
  await rejects(dir, FormatError, /config\.json is missing; pass a Hugging Face checkpoint folder/);
  await rejects(await withConfig("{ not json"), FormatError, /config\.json is not valid JSON/);
  await rejects(await withConfig("[1, 2]"), FormatError, /config\.json must hold a JSON object/);
});

Deno.test("loadModel reports a folder without weights", async () => {
  const dir = await copyFixture(TIED);
  await Deno.remove(`${dir}/model.safetensors`);
  await rejects(dir, FormatError, /found neither model\.safetensors nor model\.safetensors\.index\.json/);
});

Deno.test("loadModel warns about unexpected tensors and ignores rotary inv_freq", async () => {
  const extra = { dtype: "F32" as const, shape: [2], data: new Float32Array(2) };
  const dir = await edited((t) => {
    t.set("model.layers.0.self_attn.rotary_emb.inv_freq", extra);
    t.set("model.extra_head.weight", extra);
  });
  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (...args: unknown[]) => warnings.push(args.join(" "));
  try {
    using model = await loadModel(dir, { device });
    assert.equal(model.config.modelType, "llama");
  } finally {
    console.warn = warn;
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /ignoring 1 unexpected tensor: model\.extra_head\.weight$/);
});

Deno.test("loadModel stays within the device budget and cleans up when it does not fit", async () => {
  const small = await createDevice({ backend: "cpu", budgetBytes: 50_000 });
  await assert.rejects(() => loadModel(TIED, { device: small }), OutOfBudgetError);
  assert.equal(small.ledger.current(), 0);
  await assert.rejects(
    () => loadModel(TIED, { device, dtype: "bf16" as "f32" }),
    /Invalid loadModel config:\n {2}dtype: /,
  );
});
