/**
 * The on-disk cache of HQQ experts: a second run reads what the first quantized (the same codes),
 * a wider request quantizes only what the file lacks, a file made from another checkpoint is
 * replaced, and the floe and cached policies decode the same tokens with and without it.
 * @module
 */
import assert from "node:assert/strict";
import { createDevice } from "../../src/device/create_device.ts";
import { HostExperts } from "../../src/moe/host_experts.ts";
import { CachedPolicy } from "../../src/moe/policies/cached.ts";
import { FloePolicy } from "../../src/moe/policies/floe.ts";
import { checkpointFingerprint, quantizeExperts } from "../../src/moe/quant_cache.ts";
import { openOffloadRuntime } from "../../src/moe/runtime.ts";

const MIXTRAL = "test/fixtures/models/mixtral-top2-f32";
const device = await createDevice({ backend: "cpu" });

async function copyModel(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "ferry-quant-cache-model-" });
  for await (const e of Deno.readDir(MIXTRAL)) {
    if (e.isFile) await Deno.copyFile(`${MIXTRAL}/${e.name}`, `${dir}/${e.name}`);
  }
  return dir;
}

Deno.test("quantizeExperts: a wider request quantizes only what the cache lacks", async () => {
  const cacheDir = await Deno.makeTempDir({ prefix: "ferry-quant-cache-" });
  const store = await HostExperts.fromCheckpoint(MIXTRAL);
  const E = store.numExperts * store.layers.length;
  const up = await quantizeExperts(device, store, { bits: 4, groupSize: 16, projs: ["up"] }, {
    cacheDir,
    progress: "off",
  });
  assert.equal(up.quantized, E);
  const all = await quantizeExperts(
    device,
    store,
    { bits: 4, groupSize: 16, projs: ["gate", "up", "down"] },
    {
      cacheDir,
      progress: "off",
    },
  );
  assert.equal(all.quantized, 2 * E); // gate and down only
  assert.equal(all.packed.size, 3 * E);
  assert.deepEqual(all.packed.get("0.2.up")!.meta, up.packed.get("0.2.up")!.meta);
  const none = await quantizeExperts(
    device,
    store,
    { bits: 4, groupSize: 16, projs: ["down"], layers: [1] },
    {
      cacheDir,
      progress: "off",
    },
  );
  assert.equal(none.quantized, 0);
  assert.deepEqual(
    [...none.packed.keys()],
    Array.from({ length: store.numExperts }, (_, e) => `1.${e}.down`),
  );
  // Other settings live in another file.
  const two = await quantizeExperts(device, store, { bits: 2, groupSize: 16, projs: ["up"] }, {
    cacheDir,
    progress: "off",
  });
  assert.equal(two.quantized, E);
  await Deno.remove(cacheDir, { recursive: true });
});

Deno.test("quantizeExperts: a cache made from another checkpoint is replaced", async () => {
  const cacheDir = await Deno.makeTempDir({ prefix: "ferry-quant-cache-" });
  const dir = await copyModel();
  const before = await checkpointFingerprint(dir);
  const spec = { bits: 2, groupSize: 16, projs: ["up"] } as const;
  await quantizeExperts(device, await HostExperts.fromCheckpoint(dir), spec, { cacheDir, progress: "off" });
  // Rewrite the weights: flip bytes at the start of the data of the (only or first) shard.
  const shard =
    [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => n.endsWith(".safetensors")).sort()[0];
  const bytes = await Deno.readFile(`${dir}/${shard}`);
  const n = new DataView(bytes.buffer).getUint32(0, true);
  for (let i = 8 + n; i < 8 + n + 64; i++) bytes[i] ^= 0x55;
  await Deno.writeFile(`${dir}/${shard}`, bytes);
  assert.notEqual(await checkpointFingerprint(dir), before);
  const again = await quantizeExperts(device, await HostExperts.fromCheckpoint(dir), spec, {
    cacheDir,
    progress: "off",
  });
  assert.ok(again.quantized > 0);
  await Deno.remove(cacheDir, { recursive: true });
  await Deno.remove(dir, { recursive: true });
});

Deno.test("floe and cached policies decode the same tokens with the quantization cache, cold and warm", async () => {
  const cacheDir = await Deno.makeTempDir({ prefix: "ferry-quant-cache-" });
  const makers = [
    (quantCache?: string) => new FloePolicy({ sparsity: 0.5, upBits: 2, groupSize: 16, quantCache }),
    (quantCache?: string) => new CachedPolicy({ bits: 4, groupSize: 16, maxSlots: 3, quantCache }),
  ];
  for (const make of makers) {
    const tokens: number[][] = [];
    for (const cache of [undefined, cacheDir, cacheDir]) {
      using rt = await openOffloadRuntime(MIXTRAL, {
        device,
        budgetBytes: 2 ** 26,
        policy: make(cache),
        maxSeq: 16,
      });
      tokens.push((await rt.generate([3, 17, 42, 8], { maxNewTokens: 5 })).tokens);
    }
    assert.deepEqual(tokens[1], tokens[0]);
    assert.deepEqual(tokens[2], tokens[0]);
  }
  await Deno.remove(cacheDir, { recursive: true });
});

Deno.test("HostExperts metadataOnly: sizes for planning, no values, and pack says why it cannot", async () => {
  const full = await HostExperts.fromCheckpoint(MIXTRAL);
  const meta = await HostExperts.fromCheckpoint(MIXTRAL, { metadataOnly: true });
  assert.equal(meta.hostBytes, 0);
  assert.equal(meta.expertBytes(), full.expertBytes());
  assert.deepEqual(meta.layers, full.layers);
  assert.throws(
    () => meta.pack(meta.layers[0], 0, "up", new Float32Array(meta.matrixValues())),
    /opened with metadataOnly \(sizes only\); open it without that option to read experts/,
  );
});
