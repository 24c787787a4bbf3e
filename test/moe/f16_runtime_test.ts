/**
 * The offload runtime with 16-bit weights on the device (`dtype: "f16"`): every policy decodes the
 * greedy tokens of the resident model loaded at f16 (the same rounded weights), moves half the
 * bytes of the f32 run, needs a smaller minimum budget, and its ledger peak stays within the
 * budget at that minimum.
 * @module
 */
import assert from "node:assert/strict";
import { createDevice } from "../../src/device/create_device.ts";
import { generate } from "../../src/models/generate.ts";
import { loadModel } from "../../src/models/load.ts";
import { HostExperts } from "../../src/moe/host_experts.ts";
import { CachedPolicy } from "../../src/moe/policies/cached.ts";
import { FloePolicy } from "../../src/moe/policies/floe.ts";
import type { OffloadPolicy } from "../../src/moe/policy.ts";
import { openOffloadRuntime } from "../../src/moe/runtime.ts";
import { testOnDevices, webGpuTest } from "../_helpers.ts";

const MIXTRAL = "test/fixtures/models/mixtral-top2-f32";
const PROMPT = [3, 17, 42, 8, 61];
const MiB = 2 ** 20;

const policies = (): [string, () => OffloadPolicy | "resident" | "ondemand"][] => [
  ["resident", () => "resident"],
  ["ondemand", () => "ondemand"],
  ["cached lru, 2 slots", () => new CachedPolicy({ maxSlots: 2 })],
  ["floe exact, s = 0", () => new FloePolicy({ sparsity: 0, upBits: 16, channels: "exact" })],
];

testOnDevices("f16 offload: every policy decodes the f16 resident model's greedy tokens", async (device) => {
  let expected: number[];
  {
    using model = await loadModel(MIXTRAL, { device, dtype: "f16" });
    expected = (await generate(model, PROMPT, { maxNewTokens: 6 })).tokens;
  }
  for (const [name, make] of policies()) {
    using rt = await openOffloadRuntime(MIXTRAL, {
      device,
      budgetBytes: 64 * MiB,
      policy: make(),
      maxSeq: 16,
      dtype: "f16",
    });
    const { tokens } = await rt.generate(PROMPT, { maxNewTokens: 6 });
    assert.deepEqual(tokens, expected, name);
  }
});

Deno.test("f16 offload moves half the bytes of f32 and needs a smaller minimum budget", async () => {
  const run = async (dtype: "f32" | "f16", policy: () => OffloadPolicy | "ondemand") => {
    const device = await createDevice({ backend: "cpu" });
    using rt = await openOffloadRuntime(MIXTRAL, {
      device,
      budgetBytes: 64 * MiB,
      policy: policy(),
      maxSeq: 16,
      dtype,
    });
    const { report } = await rt.generate(PROMPT, { maxNewTokens: 4 });
    const out = { bytes: report.bytesPerToken, min: rt.plan.minimumBytes };
    device.destroy();
    return out;
  };
  for (
    const make of [
      () => "ondemand" as const,
      () => new FloePolicy({ sparsity: 0.5, upBits: 2, groupSize: 16 }),
    ]
  ) {
    const a = await run("f32", make);
    const b = await run("f16", make);
    assert.equal(b.bytes, a.bytes / 2);
    assert.ok(b.min < a.min, `minimum f16 ${b.min} < f32 ${a.min}`);
  }
  const store = await HostExperts.fromCheckpoint(MIXTRAL, { deviceDType: "f16" });
  assert.equal(store.expertBytes(), 3 * store.hidden * store.intermediate * 2);
  const staging = store.staging(store.matrixValues());
  assert.ok(staging instanceof Uint16Array);
});

type Maker = [string, () => OffloadPolicy | "ondemand" | "resident"];
const FLOE: Maker = ["floe", () => new FloePolicy({ sparsity: 0.5, upBits: 2, groupSize: 16 })];

/** Runs `make`'s policy on a device whose ledger refuses any byte over the planned minimum. */
async function peakWithinMinimum(backend: "cpu" | "webgpu", dtype: "f16" | "f32", [name, make]: Maker) {
  const opts = { budgetBytes: 64 * MiB, maxSeq: 12, dtype } as const;
  const probe = await createDevice({ backend });
  const min =
    (await openOffloadRuntime(MIXTRAL, { device: probe, ...opts, policy: make() })).plan.minimumBytes;
  probe.destroy();
  const device = await createDevice({ backend, budgetBytes: min });
  using rt = await openOffloadRuntime(MIXTRAL, { device, ...opts, budgetBytes: min, policy: make() });
  await rt.generate(PROMPT, { maxNewTokens: 5 });
  assert.ok(device.ledger.peak() <= min, `${name} ${dtype}: peak ${device.ledger.peak()} > budget ${min}`);
  device.destroy();
}

Deno.test("f16 offload: the ledger's peak stays within each policy's minimum budget", async () => {
  for (const m of [["ondemand", () => "ondemand"], ["resident", () => "resident"], FLOE] as Maker[]) {
    await peakWithinMinimum("cpu", "f16", m);
  }
});

webGpuTest(
  "offload on WebGPU: the ledger's peak, upload staging included, stays within each policy's minimum",
  async () => {
    const makers: Maker[] = [
      ["ondemand", () => "ondemand"],
      ["resident", () => "resident"],
      ["cached 4-bit", () => new CachedPolicy({ bits: 4, groupSize: 16, maxSlots: 3 })],
      FLOE,
    ];
    for (const dtype of ["f16", "f32"] as const) {
      for (const m of makers) await peakWithinMinimum("webgpu", dtype, m);
    }
  },
);
