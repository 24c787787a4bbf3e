import assert from "node:assert/strict";
import { FormatError } from "../../src/errors.ts";
import { SafetensorsFile, type TensorInput, writeSafetensors } from "../../src/io/safetensors.ts";
import {
  INDEX_NAME,
  ShardedCheckpoint,
  shardFileName,
  SINGLE_NAME,
  writeShardedCheckpoint,
} from "../../src/io/sharded.ts";
import { writeFileAtomic } from "../../src/io/atomic.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ferry_shard_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function listDir(dir: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(dir)) names.push(e.name);
  return names.sort();
}

/** `n` float32 values all equal to `v`: `4n` bytes. */
const f32 = (n: number, v: number): TensorInput => ({
  dtype: "F32",
  shape: [n],
  data: new Float32Array(n).fill(v),
});

Deno.test("writeShardedCheckpoint() splits like huggingface_hub and writes the HF index", async () => {
  await withTempDir(async (dir) => {
    // maxShardBytes 40, in input order: a+b = 32 fit; c would make 64, so it starts a new shard;
    // big (80 > 40) gets a shard of its own at once; d joins c (32 + 8 = 40).
    const tensors = { a: f32(4, 1), b: f32(4, 2), c: f32(8, 3), big: f32(20, 4), d: f32(2, 5) };
    const result = await writeShardedCheckpoint(dir, tensors, { maxShardBytes: 40 });
    const files = [1, 2, 3].map((i) => shardFileName(i, 3));
    assert.deepEqual(files, [
      "model-00001-of-00003.safetensors",
      "model-00002-of-00003.safetensors",
      "model-00003-of-00003.safetensors",
    ]);
    assert.deepEqual(result, { files, totalSize: 152 });
    assert.deepEqual(await listDir(dir), [...files, INDEX_NAME]); // '-' sorts before '.'
    const index = await Deno.readTextFile(`${dir}/${INDEX_NAME}`);
    const weightMap = { a: files[0], b: files[0], big: files[1], c: files[2], d: files[2] };
    // Exactly Python's json.dumps(index, indent=2, sort_keys=True) + "\n".
    assert.equal(
      index,
      JSON.stringify({ metadata: { total_size: 152 }, weight_map: weightMap }, null, 2) + "\n",
    );
    assert.ok(
      index.startsWith(
        '{\n  "metadata": {\n    "total_size": 152\n  },\n  "weight_map": {\n    "a": "model-00001',
      ),
    );
    // Shards are ordinary safetensors files with HF's {"format": "pt"} metadata.
    using shard = await SafetensorsFile.open(`${dir}/${files[2]}`);
    assert.deepEqual(shard.names, ["c", "d"]);
    assert.deepEqual(shard.metadata, { format: "pt" });
  });
});

Deno.test("ShardedCheckpoint reads the union of shards lazily by name", async () => {
  await withTempDir(async (dir) => {
    const tensors = { "model.embed": f32(4, 1), "model.norm": f32(4, 2), "lm_head": f32(8, 3) };
    await writeShardedCheckpoint(dir, tensors, {
      maxShardBytes: 32,
      indexMetadata: { total_parameters: 16 },
    });
    using ckpt = await ShardedCheckpoint.open(dir);
    assert.deepEqual(ckpt.names, ["lm_head", "model.embed", "model.norm"]);
    assert.deepEqual(ckpt.indexMetadata, { total_parameters: 16, total_size: 64 });
    assert.equal(ckpt.shardOf("lm_head"), "model-00002-of-00002.safetensors");
    assert.deepEqual(ckpt.shardFiles.sort(), [
      "model-00001-of-00002.safetensors",
      "model-00002-of-00002.safetensors",
    ]);
    assert.deepEqual(ckpt.info("model.norm"), {
      dtype: "F32",
      shape: [4],
      byteLength: 16,
      dataOffsets: [16, 32],
    });
    for (const [name, t] of Object.entries(tensors)) {
      assert.deepEqual(await ckpt.readF32(name), t.data);
      assert.equal((await ckpt.read(name)).data.length, t.data.byteLength);
    }
    assert.equal(ckpt.has("nope"), false);
    assert.throws(
      () => ckpt.info("nope"),
      (e: Error) => e instanceof RangeError && /holds 3 tensors/.test(e.message),
    );
  });
});

Deno.test("writeShardedCheckpoint() writes one model.safetensors when everything fits, and cleans stale files", async () => {
  await withTempDir(async (dir) => {
    await writeShardedCheckpoint(dir, { a: f32(4, 1), b: f32(4, 2), c: f32(4, 3) }, { maxShardBytes: 16 });
    assert.deepEqual(await listDir(dir), [...[1, 2, 3].map((i) => shardFileName(i, 3)), INDEX_NAME]);
    await Deno.writeTextFile(`${dir}/config.json`, "{}"); // unrelated files stay
    // Re-save as two shards: the three old shards go.
    await writeShardedCheckpoint(dir, { a: f32(4, 1), b: f32(4, 2), c: f32(4, 3) }, { maxShardBytes: 32 });
    assert.deepEqual(await listDir(dir), [
      "config.json",
      shardFileName(1, 2),
      shardFileName(2, 2),
      INDEX_NAME,
    ]);
    // Re-save as one file: shards and index go.
    const result = await writeShardedCheckpoint(dir, { a: f32(4, 7) }, {
      metadata: { format: "pt", by: "ferry" },
    });
    assert.deepEqual(result, { files: [SINGLE_NAME], totalSize: 16 });
    assert.deepEqual(await listDir(dir), ["config.json", SINGLE_NAME]);
    using ckpt = await ShardedCheckpoint.open(dir);
    assert.deepEqual(ckpt.names, ["a"]);
    assert.deepEqual(ckpt.indexMetadata, {});
    assert.deepEqual(ckpt.shard("a").metadata, { by: "ferry", format: "pt" });
    assert.deepEqual([...await ckpt.readF32("a")], [7, 7, 7, 7]);
  });
});

Deno.test("writeShardedCheckpoint() validates everything before writing anything", async () => {
  await withTempDir(async (dir) => {
    const bad = { a: f32(4, 1), b: { dtype: "F32", shape: [5], data: new Float32Array(4) } as TensorInput };
    await assert.rejects(writeShardedCheckpoint(`${dir}/out`, bad, { maxShardBytes: 16 }), TypeError);
    await assert.rejects(
      writeShardedCheckpoint(dir, {}, { maxShardBytes: 0 }),
      /maxShardBytes must be a positive integer/,
    );
    assert.deepEqual(await listDir(dir), []);
  });
});

Deno.test("ShardedCheckpoint.open() reads a hand-written HF index with a non-ASCII name", async () => {
  await withTempDir(async (dir) => {
    await writeSafetensors(`${dir}/model-00001-of-00002.safetensors`, { "w.\u00e9": f32(2, 1) }, {
      format: "pt",
    });
    await writeSafetensors(`${dir}/model-00002-of-00002.safetensors`, { v: f32(1, 2) }, { format: "pt" });
    // As transformers writes it: ensure_ascii escapes, indent 2.
    const index = '{\n  "metadata": {\n    "total_size": 12\n  },\n  "weight_map": {\n' +
      '    "v": "model-00002-of-00002.safetensors",\n    "w.\\u00e9": "model-00001-of-00002.safetensors"\n  }\n}\n';
    await Deno.writeTextFile(`${dir}/${INDEX_NAME}`, index);
    using ckpt = await ShardedCheckpoint.open(dir);
    assert.deepEqual(ckpt.indexMetadata, { total_size: 12 });
    assert.deepEqual([...await ckpt.readF32("w.\u00e9")], [1, 1]);
    // Our writer produces the same index text for the same split.
    await withTempDir(async (dir2) => {
      await writeShardedCheckpoint(dir2, { "w.\u00e9": f32(2, 1), v: f32(1, 2) }, { maxShardBytes: 8 });
      assert.equal(await Deno.readTextFile(`${dir2}/${INDEX_NAME}`), index);
    });
  });
});

const INDEX_ERRORS: [string, (dir: string) => Promise<void>, RegExp][] = [
  ["an empty folder", async () => {}, /found neither model\.safetensors nor model\.safetensors\.index\.json/],
  [
    "an index that is not JSON",
    (d) => writeFileAtomic(`${d}/${INDEX_NAME}`, "{nope"),
    /index .* not valid JSON/,
  ],
  [
    "an index without weight_map",
    (d) => writeFileAtomic(`${d}/${INDEX_NAME}`, '{"metadata":{}}'),
    /"weight_map" must be an object/,
  ],
  [
    "an index with non-object metadata",
    (d) => writeFileAtomic(`${d}/${INDEX_NAME}`, '{"metadata":3,"weight_map":{}}'),
    /"metadata" must be an object/,
  ],
  [
    "a shard path outside the folder",
    (d) => writeFileAtomic(`${d}/${INDEX_NAME}`, '{"weight_map":{"w":"../x.safetensors"}}'),
    /weight_map entry for "w" must be a shard file name in the same folder, received "\.\.\/x\.safetensors"/,
  ],
  [
    "a missing shard file",
    (d) => writeFileAtomic(`${d}/${INDEX_NAME}`, '{"weight_map":{"w":"model-00001-of-00001.safetensors"}}'),
    /shard model-00001-of-00001\.safetensors \(listed for tensor "w" in model\.safetensors\.index\.json\) does not exist/,
  ],
  [
    "a weight_map entry absent from its shard",
    async (d) => {
      await writeSafetensors(`${d}/s1.safetensors`, { a: f32(1, 1) });
      await writeSafetensors(`${d}/s2.safetensors`, { b: f32(1, 1) });
      await writeFileAtomic(
        `${d}/${INDEX_NAME}`,
        '{"weight_map":{"a":"s1.safetensors","b":"s1.safetensors"}}',
      );
    },
    /maps tensor "b" to s1\.safetensors, but that shard has no such tensor/,
  ],
  [
    "a malformed shard",
    async (d) => {
      await writeSafetensors(`${d}/s1.safetensors`, { a: f32(1, 1) });
      await Deno.writeFile(`${d}/s2.safetensors`, new Uint8Array(3));
      await writeFileAtomic(
        `${d}/${INDEX_NAME}`,
        '{"weight_map":{"a":"s1.safetensors","b":"s2.safetensors"}}',
      );
    },
    /Cannot read safetensors file .*s2\.safetensors: file is 3 bytes/,
  ],
];

for (const [what, setup, re] of INDEX_ERRORS) {
  Deno.test(`ShardedCheckpoint.open() rejects ${what} with a FormatError`, async () => {
    await withTempDir(async (dir) => {
      await setup(dir);
      // Shards opened before the failure are closed again (the resource sanitizer checks this).
      await assert.rejects(ShardedCheckpoint.open(dir), (e: Error) => {
        assert.ok(e instanceof FormatError, `expected FormatError, got ${e.name}: ${e.message}`);
        assert.match(e.message, re);
        return true;
      });
    });
  });
}
