/**
 * `ferry random-model` as a subprocess: the folder loads back with `loadModel` with the asked
 * shapes and config, a small `--max-shard-bytes` gives an index that names every tensor once,
 * dtypes are stored as asked, and bad input is one line on stderr, status 1, nothing written.
 * @module
 */
import assert from "node:assert/strict";
import { createDevice } from "../src/device/create_device.ts";
import { INDEX_NAME, ShardedCheckpoint } from "../src/io/sharded.ts";
import { loadModel } from "../src/models/load.ts";
import { checkpointTensors } from "../src/models/weights.ts";
import { ferry } from "./_cli.ts";

const root = await Deno.makeTempDir({ prefix: "ferry-cli-random-" });

/** Flags of a tiny Mixtral with odd sizes. */
const MIXTRAL = [
  "--family",
  "mixtral",
  "--hidden",
  "12",
  "--intermediate",
  "7",
  "--layers",
  "3",
  "--experts",
  "5",
  "--top-k",
  "2",
  "--heads",
  "3",
  "--kv-heads",
  "1",
  "--vocab",
  "37",
];

Deno.test("ferry random-model mixtral: loads back with the asked shapes, sharded by --max-shard-bytes", async () => {
  const out = `${root}/mixtral`;
  const r = await ferry(
    "random-model",
    ...MIXTRAL,
    "--dtype",
    "bf16",
    "--seed",
    "3",
    "--max-shard-bytes",
    "400",
    "--out",
    out,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /wrote .*: mixtral bf16/);
  const index = JSON.parse(await Deno.readTextFile(`${out}/${INDEX_NAME}`));
  const device = await createDevice({ backend: "cpu" });
  using model = await loadModel(out, { device });
  const c = model.config;
  assert.deepEqual(
    [c.hidden, c.intermediate, c.layers, c.numExperts, c.topK, c.heads, c.kvHeads, c.vocabSize],
    [12, 7, 3, 5, 2, 3, 1, 37],
  );
  const expected = checkpointTensors(c);
  assert.deepEqual(Object.keys(index.weight_map).sort(), expected.map((t) => t.hfName).sort());
  using ckpt = await ShardedCheckpoint.open(out);
  let total = 0;
  for (const t of expected) {
    const info = ckpt.info(t.hfName);
    assert.equal(info.dtype, "BF16");
    assert.deepEqual(info.shape, t.shape);
    total += info.byteLength;
  }
  assert.equal(index.metadata.total_size, total);
  // every shard but those holding one oversized tensor stays within the limit
  const files = ckpt.shardFiles;
  assert.ok(files.length > 3, `expected several shards, got ${files.length}`);
  for (const f of files) {
    const names = Object.entries(index.weight_map).filter(([, v]) => v === f).map(([k]) => k);
    const bytes = names.reduce((s, n) => s + ckpt.info(n).byteLength, 0);
    assert.ok(names.length === 1 || bytes <= 400, `${f}: ${names.length} tensors, ${bytes} bytes`);
  }
  const w1 = await ckpt.readF32("model.layers.2.block_sparse_moe.experts.4.w1.weight");
  assert.ok(w1.some((v) => v !== 0) && w1.every(Number.isFinite));
  const norm = await ckpt.readF32("model.norm.weight");
  assert.ok(norm.every((v) => v === 1));
  device.destroy();
});

Deno.test("ferry random-model llama f32: one model.safetensors, seeded (same seed, same bytes)", async () => {
  const flags = [
    "--family",
    "llama",
    "--hidden",
    "8",
    "--intermediate",
    "5",
    "--layers",
    "2",
    "--heads",
    "2",
  ];
  const a = await ferry(
    "random-model",
    ...flags,
    "--vocab",
    "11",
    "--dtype",
    "f32",
    "--seed",
    "7",
    "--out",
    `${root}/a`,
  );
  const b = await ferry(
    "random-model",
    ...flags,
    "--vocab",
    "11",
    "--dtype",
    "f32",
    "--seed",
    "7",
    "--out",
    `${root}/b`,
  );
  const c = await ferry(
    "random-model",
    ...flags,
    "--vocab",
    "11",
    "--dtype",
    "f16",
    "--seed",
    "8",
    "--out",
    `${root}/c`,
  );
  for (const r of [a, b, c]) assert.equal(r.code, 0, r.stderr);
  const bytesA = await Deno.readFile(`${root}/a/model.safetensors`);
  assert.deepEqual(bytesA, await Deno.readFile(`${root}/b/model.safetensors`));
  const config = JSON.parse(await Deno.readTextFile(`${root}/c/config.json`));
  assert.equal(config.torch_dtype, "float16");
  assert.equal(config.num_key_value_heads, 2);
  const device = await createDevice({ backend: "cpu" });
  using model = await loadModel(`${root}/c`, { device });
  assert.equal(model.config.numExperts ?? 0, 0);
  device.destroy();
});

Deno.test("ferry random-model refuses bad input with one line, writing nothing", async () => {
  const cases: [string[], RegExp][] = [
    [[...MIXTRAL, "--top-k", "6"], /--top-k 6 must be at most --experts 5/],
    [["--family", "gpt2", "--hidden", "8"], /--family must be one of llama, mixtral/],
    [
      [...MIXTRAL.slice(0, 2), "--hidden", "10", ...MIXTRAL.slice(4)],
      /--hidden 10 must be a multiple of --heads 3/,
    ],
    [[...MIXTRAL, "--kv-heads", "2"], /--heads 3 must be a multiple of --kv-heads 2/],
    [[
      "--family",
      "llama",
      "--hidden",
      "8",
      "--intermediate",
      "5",
      "--layers",
      "1",
      "--heads",
      "2",
      "--vocab",
      "9",
      "--experts",
      "4",
    ], /--experts is for --family mixtral/],
    [[...MIXTRAL, "--dtype", "f8"], /--dtype must be one of f16, bf16, f32/],
    [[...MIXTRAL.filter((_, i) => i < 12 || i > 13)], /--heads N is required/],
  ];
  for (const [i, [flags, message]] of cases.entries()) {
    const out = `${root}/bad${i}`;
    const r = await ferry("random-model", ...flags, "--out", out);
    assert.equal(r.code, 1, `case ${i}: ${r.stdout}`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split("\n").length, 1);
    await assert.rejects(Deno.stat(out), Deno.errors.NotFound);
  }
  await Deno.mkdir(`${root}/full`);
  await Deno.writeTextFile(`${root}/full/keep.txt`, "x");
  const r = await ferry("random-model", ...MIXTRAL, "--out", `${root}/full`);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /is not empty; pass a new or empty folder/);
  assert.deepEqual([...Deno.readDirSync(`${root}/full`)].map((e) => e.name), ["keep.txt"]);
});

Deno.test("ferry random-model cleanup", async () => {
  await Deno.remove(root, { recursive: true });
});
