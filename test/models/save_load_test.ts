/** `saveModel` → `loadModel` round trips: identical logits, byte-identical tensors, HF layout. */
import assert from "node:assert/strict";
import { ShardedCheckpoint } from "../../src/io/sharded.ts";
import { loadModel } from "../../src/models/load.ts";
import { saveModel } from "../../src/models/save.ts";
import { testOnDevices } from "../_helpers.ts";
import { fixture, FIXTURES } from "./_fixtures.ts";

const SAVE_DTYPE = { float32: "f32", bfloat16: "bf16", float16: "f16" } as const;

async function readJson(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await Deno.readTextFile(path));
}

/** Asserts both checkpoints hold the same names with the same dtype, shape and bytes. */
async function assertSameTensors(aDir: string, bDir: string): Promise<void> {
  using a = await ShardedCheckpoint.open(aDir);
  using b = await ShardedCheckpoint.open(bDir);
  assert.deepEqual(b.names, a.names);
  for (const name of a.names) {
    const [x, y] = [await a.read(name), await b.read(name)];
    assert.equal(y.dtype, x.dtype, name);
    assert.deepEqual(y.shape, x.shape, name);
    assert.ok(y.data.every((v, i) => v === x.data[i]), `${name}: bytes differ`);
  }
}

for (const { name, dir, golden } of FIXTURES) {
  testOnDevices(
    `saveModel(${name}) in the stored dtype writes byte-identical tensors and the same logits`,
    async (device) => {
      const hf = await readJson(`${dir}/config.json`);
      const dtype = SAVE_DTYPE[hf.torch_dtype as keyof typeof SAVE_DTYPE];
      assert.ok(dtype, `unexpected torch_dtype ${hf.torch_dtype}`);
      const out = await Deno.makeTempDir({ prefix: "ferry-save-" });
      try {
        using model = await loadModel(dir, { device });
        await saveModel(model, out, { dtype });
        await assertSameTensors(dir, out);
        assert.deepEqual(await readJson(`${out}/config.json`), hf, "config.json round-trips");
        using again = await loadModel(out, { device });
        const [a, b] = [model.forward(golden.inputIds).logits, again.forward(golden.inputIds).logits];
        assert.deepEqual(await b.toArray(), await a.toArray());
        a.dispose();
        b.dispose();
      } finally {
        await Deno.remove(out, { recursive: true });
      }
    },
  );
}

testOnDevices("saveModel as f32 in shards loads back with identical logits", async (device) => {
  const { dir, golden } = fixture("qwen2-moe-f32");
  const out = await Deno.makeTempDir({ prefix: "ferry-save-" });
  try {
    using model = await loadModel(dir, { device });
    await saveModel(model, out, { maxShardBytes: 40_000 });
    const index = await readJson(`${out}/model.safetensors.index.json`);
    const files = new Set(Object.values(index.weight_map as Record<string, string>));
    assert.ok(files.size >= 3, `expected several shards, got ${[...files]}`);
    assert.ok(
      "model.layers.1.mlp.experts.3.down_proj.weight" in (index.weight_map as object),
      "experts are unstacked",
    );
    await assertSameTensors(dir, out);
    using again = await loadModel(out, { device });
    const [a, b] = [model.forward(golden.inputIds).logits, again.forward(golden.inputIds).logits];
    assert.deepEqual(await b.toArray(), await a.toArray());
    a.dispose();
    b.dispose();
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

testOnDevices("saveModel widens bf16 to f32 exactly and keeps Mixtral's HF names", async (device) => {
  const out = await Deno.makeTempDir({ prefix: "ferry-save-" });
  try {
    using llama = await loadModel(fixture("llama-bf16-sharded").dir, { device });
    await saveModel(llama, out, { dtype: "f32" });
    assert.equal((await readJson(`${out}/config.json`)).torch_dtype, "float32");
    using st = await ShardedCheckpoint.open(out);
    assert.equal(st.info("lm_head.weight").dtype, "F32");
    using again = await loadModel(out, { device });
    const ids = fixture("llama-bf16-sharded").golden.inputIds;
    const [a, b] = [llama.forward(ids).logits, again.forward(ids).logits];
    assert.deepEqual(await b.toArray(), await a.toArray());
    a.dispose();
    b.dispose();

    using mixtral = await loadModel(fixture("mixtral-top2-f32").dir, { device });
    await saveModel(mixtral, out);
    using m = await ShardedCheckpoint.open(out);
    assert.ok(m.has("model.layers.1.block_sparse_moe.experts.2.w3.weight"));
    assert.ok(m.has("model.layers.0.block_sparse_moe.gate.weight"));
    assert.ok(m.has("lm_head.weight"));
    assert.deepEqual(m.names.filter((n) => n.includes(".mlp.")), []);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

testOnDevices("saveModel leaves out the tied head and rejects unknown options", async (device) => {
  const out = await Deno.makeTempDir({ prefix: "ferry-save-" });
  try {
    using model = await loadModel(fixture("llama-gqa-tied-f32").dir, { device });
    await assert.rejects(
      () => saveModel(model, out, { dtype: "f64" as "f32" }),
      /Invalid saveModel config:\n {2}dtype: Invalid option: expected one of "f32"\|"bf16"\|"f16" \(received "f64"\)/,
    );
    await saveModel(model, out);
    using st = await ShardedCheckpoint.open(out);
    assert.ok(!st.has("lm_head.weight"));
    assert.ok(st.has("model.embed_tokens.weight"));
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
