/** HostExperts read from a loaded model equal those read from its checkpoint; matrices, channel-major rows, errors. */
import assert from "node:assert/strict";
import { createDevice } from "../../src/device/create_device.ts";
import { f16ToF32, f32ToF16 } from "../../src/io/dtype_convert.ts";
import { loadModel } from "../../src/models/load.ts";
import { EXPERT_PROJS, HostExperts } from "../../src/moe/host_experts.ts";
import { quantizeExperts } from "../../src/moe/quant_cache.ts";
import { testOnDevices } from "../_helpers.ts";

const DIR = "test/fixtures/models/mixtral-top2-f32"; // MoE layers [0, 1], E 4, C 32, F 48
const cpu = await createDevice({ backend: "cpu" });

testOnDevices("HostExperts.fromModel holds the checkpoint's experts, bit for bit at f32", async (device) => {
  using model = await loadModel(DIR, { device });
  const fromModel = await HostExperts.fromModel(model);
  const fromCkpt = await HostExperts.fromCheckpoint(DIR);
  assert.deepEqual(fromModel.layers, fromCkpt.layers);
  assert.equal(fromModel.hostBytes, fromCkpt.hostBytes);
  assert.equal(fromModel.dir, undefined);
  for (const l of fromCkpt.layers) {
    for (let e = 0; e < fromCkpt.numExperts; e++) {
      for (const p of [...EXPERT_PROJS, "downT"] as const) {
        assert.deepEqual(fromModel.matrix(l, e, p), fromCkpt.matrix(l, e, p), `layer ${l} expert ${e} ${p}`);
      }
    }
  }
});

Deno.test("HostExperts: downT is down transposed, packRows copies its rows, f16 hosts round to halves", async () => {
  const store = await HostExperts.fromCheckpoint(DIR);
  const { hidden: C, intermediate: F } = store;
  const down = store.matrix(1, 2, "down"); // [C, F]
  const downT = store.matrix(1, 2, "downT"); // [F, C]
  for (let c = 0; c < C; c++) for (let f = 0; f < F; f++) assert.equal(downT[f * C + c], down[c * F + f]);
  const channels = [47, 0, 5];
  const rows = store.staging(channels.length * C) as Float32Array; // [k, C]
  store.packRows(1, 2, "downT", channels, rows);
  channels.forEach((f, j) =>
    assert.deepEqual(rows.subarray(j * C, (j + 1) * C), downT.subarray(f * C, (f + 1) * C))
  );

  using model = await loadModel(DIR, { device: cpu });
  const half = await HostExperts.fromModel(model, { hostDType: "f16" });
  assert.equal(half.hostBytes, store.hostBytes / 2);
  const gate = store.matrix(0, 3, "gate");
  assert.deepEqual(half.matrix(0, 3, "gate"), f16ToF32(f32ToF16(gate)));
});

Deno.test("HostExperts.fromModel: no on-disk quantization cache without a checkpoint folder", async () => {
  using model = await loadModel(DIR, { device: cpu });
  const store = await HostExperts.fromModel(model);
  await assert.rejects(
    quantizeExperts(cpu, store, { bits: 4, groupSize: 16, projs: ["up"] }, { cacheDir: "runs/never" }),
    /read from a loaded model, not a checkpoint folder/,
  );
  // Without a cache folder it quantizes: the same codes as from the checkpoint.
  const spec = { bits: 4, groupSize: 16, projs: ["up"], layers: [1] } as const;
  const a = await quantizeExperts(cpu, store, spec, { progress: "off" });
  const b = await quantizeExperts(cpu, await HostExperts.fromCheckpoint(DIR), spec, { progress: "off" });
  assert.equal(a.quantized, 4);
  assert.deepEqual([...a.packed.keys()], [...b.packed.keys()]);
  for (const [k, v] of a.packed) assert.deepEqual(v, b.packed.get(k), k);
});

Deno.test("HostExperts.fromModel reads only the projections asked for", async () => {
  using model = await loadModel(DIR, { device: cpu });
  const all = await HostExperts.fromModel(model);
  const some = await HostExperts.fromModel(model, { projs: ["gate", "down"] });
  assert.equal(some.hostBytes, (all.hostBytes * 2) / 3);
  assert.deepEqual(some.matrix(1, 0, "downT"), all.matrix(1, 0, "downT"));
  assert.throws(
    () => some.matrix(1, 0, "up"),
    /Cannot read expert 0 of layer 1 \(up\).*only the projections it was read with/,
  );
});
