/**
 * The offload runtime on each backend (CPU reference, and WebGPU where an adapter exists): every
 * policy decodes the resident model's greedy tokens, and the floe policy with exact channels gives
 * `floeCompress`'s logits on the same device. On WebGPU this checks the ordering rule of the
 * transfer path (slots written right after a sync, computed after).
 * @module
 */
import assert from "node:assert/strict";
import { floeCompress } from "../../src/floe/compress.ts";
import { generate } from "../../src/models/generate.ts";
import { loadModel } from "../../src/models/load.ts";
import { CachedPolicy } from "../../src/moe/policies/cached.ts";
import { FloePolicy } from "../../src/moe/policies/floe.ts";
import type { OffloadPolicy } from "../../src/moe/policy.ts";
import { openOffloadRuntime } from "../../src/moe/runtime.ts";
import { assertClose, DEVICES, testOnDevices, webGpuTest } from "../_helpers.ts";

const MIXTRAL = "test/fixtures/models/mixtral-top2-f32";
const PROMPT = [3, 17, 42, 8, 61];
const MiB = 2 ** 20;

testOnDevices("offload policies decode the resident model's greedy tokens", async (device) => {
  let expected: number[];
  {
    using model = await loadModel(MIXTRAL, { device });
    expected = (await generate(model, PROMPT, { maxNewTokens: 6 })).tokens;
  }
  const policies: (() => OffloadPolicy | "resident" | "ondemand")[] = [
    () => "resident",
    () => "ondemand",
    () => new CachedPolicy({ maxSlots: 2 }),
    () => new CachedPolicy({ eviction: "lfu", maxSlots: 3, prefetch: true }),
    () => new FloePolicy({ sparsity: 0, upBits: 16, channels: "exact" }),
  ];
  for (const make of policies) {
    const policy = make();
    using rt = await openOffloadRuntime(MIXTRAL, { device, budgetBytes: 64 * MiB, policy, maxSeq: 16 });
    const { tokens } = await rt.generate(PROMPT, { maxNewTokens: 6 });
    assert.deepEqual(tokens, expected, typeof policy === "string" ? policy : policy.name);
  }
});

testOnDevices("floe policy (exact channels) gives floeCompress's logits on the device", async (device) => {
  const ids = [...PROMPT, 33];
  const settings = { sparsity: 0.5, upBits: 2 as const, groupSize: 16 };
  using model = await floeCompress(await loadModel(MIXTRAL, { device }), { ...settings, mode: "topk" });
  using logits = model.forward(Int32Array.from(ids)).logits; // [T, V]
  const all = await logits.toArray() as Float32Array;
  const V = model.config.vocabSize;
  const policy = new FloePolicy({ ...settings, channels: "exact", prefill: "sparse" });
  using rt = await openOffloadRuntime(MIXTRAL, { device, budgetBytes: 64 * MiB, policy, maxSeq: 16 });
  const row = (t: number) => all.subarray(t * V, (t + 1) * V);
  assertClose(await rt.forward(Int32Array.from(PROMPT)), row(PROMPT.length - 1), { atol: 1e-4, rtol: 1e-4 });
  assertClose(await rt.forward(Int32Array.of(33)), row(PROMPT.length), { atol: 1e-4, rtol: 1e-4 });
});

webGpuTest("cached HQQ 4-bit experts on WebGPU give the CPU reference's logits", async () => {
  const run = async (d: (typeof DEVICES)[number]) => {
    const policy = new CachedPolicy({ bits: 4, groupSize: 16, maxSlots: 3 });
    using rt = await openOffloadRuntime(MIXTRAL, { device: d, budgetBytes: 64 * MiB, policy, maxSeq: 16 });
    return [await rt.forward(Int32Array.from(PROMPT)), await rt.forward(Int32Array.of(9))];
  };
  const reference = await run(DEVICES[0]);
  const got = await run(DEVICES[1]);
  for (const [i, r] of reference.entries()) assertClose(got[i], r, { atol: 1e-4, rtol: 1e-4 });
});
