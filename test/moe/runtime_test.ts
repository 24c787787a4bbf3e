/**
 * The offload runtime against the resident model: greedy decoding gives the same tokens under every
 * policy, the last logits match `CausalLM.forward`, bytes counted equal the transfers each policy
 * chose (checked against the routing of the dense model), the ledger's peak stays within the
 * budget at the minimum budget, and bad input fails with one clear error.
 * @module
 */
import assert from "node:assert/strict";
import { createDevice } from "../../src/device/create_device.ts";
import { OutOfBudgetError } from "../../src/errors.ts";
import { generate } from "../../src/models/generate.ts";
import { loadModel } from "../../src/models/load.ts";
import { HostExperts } from "../../src/moe/host_experts.ts";
import { CachedPolicy } from "../../src/moe/policies/cached.ts";
import { FloePolicy } from "../../src/moe/policies/floe.ts";
import type { OffloadPolicy } from "../../src/moe/policy.ts";
import { OffloadRuntime, openOffloadRuntime } from "../../src/moe/runtime.ts";
import { assertClose } from "../_helpers.ts";

const MIXTRAL = "test/fixtures/models/mixtral-top2-f32";
const OLMOE = "test/fixtures/models/olmoe-f32";
const PROMPT = [3, 17, 42, 8, 61];
const MiB = 2 ** 20;

/** Greedy tokens of the resident model, and the routing of every MoE layer over prompt + tokens. */
async function reference(dir: string, n: number) {
  const device = await createDevice({ backend: "cpu" });
  using model = await loadModel(dir, { device });
  const { tokens } = await generate(model, PROMPT, { maxNewTokens: n });
  const all = Int32Array.from([...PROMPT, ...tokens]);
  const out = model.forward(all, { collectRouter: true });
  out.logits.dispose();
  const selected: Int32Array[] = [];
  for (const t of out.selected!) {
    selected.push(await t.toArray() as Int32Array);
    t.dispose();
  }
  for (const t of out.routerLogits!) t.dispose();
  device.destroy();
  return { tokens, selected, K: model.config.topK, layers: model.moeLayers.length };
}

const policies = (): [string, () => OffloadPolicy | "resident" | "ondemand" | "cached"][] => [
  ["resident", () => "resident"],
  ["ondemand", () => "ondemand"],
  ["cached lru", () => "cached"],
  ["cached lru, 2 slots", () => new CachedPolicy({ maxSlots: 2 })],
  ["cached lfu, 3 slots, prefetch", () => new CachedPolicy({ eviction: "lfu", maxSlots: 3, prefetch: true })],
];

for (const dir of [MIXTRAL, OLMOE]) {
  Deno.test(`OffloadRuntime: every policy decodes the resident model's greedy tokens (${dir})`, async () => {
    const N = 6;
    const ref = await reference(dir, N);
    for (const [name, make] of policies()) {
      const device = await createDevice({ backend: "cpu" });
      using rt = await openOffloadRuntime(dir, { device, budgetBytes: 64 * MiB, policy: make(), maxSeq: 16 });
      const { tokens, report } = await rt.generate(PROMPT, { maxNewTokens: N });
      assert.deepEqual(tokens, ref.tokens, name);
      assert.equal(
        report.syncsPerToken,
        ref.layers + 1,
        `${name}: one readback per MoE layer plus the logits`,
      );
      assert.ok(report.peakDeviceBytes <= report.budgetBytes, name);
      device.destroy();
    }
  });
}

Deno.test("OffloadRuntime.forward gives CausalLM.forward's last logits (prefill and a decode step)", async () => {
  const device = await createDevice({ backend: "cpu" });
  using model = await loadModel(MIXTRAL, { device });
  using cache = model.createCache(16);
  using l1 = model.forward(Int32Array.from(PROMPT), { cache }).logits; // [T, V]
  using l2 = model.forward(Int32Array.of(9), { cache }).logits; // [1, V]
  const full = await l1.toArray() as Float32Array;
  const V = model.config.vocabSize;
  using rt = await openOffloadRuntime(MIXTRAL, {
    device,
    budgetBytes: 64 * MiB,
    policy: "ondemand",
    maxSeq: 16,
  });
  assertClose(await rt.forward(Int32Array.from(PROMPT)), full.subarray((PROMPT.length - 1) * V), {
    atol: 1e-5,
    rtol: 1e-5,
  });
  assertClose(await rt.forward(Int32Array.of(9)), await l2.toArray() as Float32Array, {
    atol: 1e-5,
    rtol: 1e-5,
  });
  device.destroy();
});

Deno.test("ondemand moves exactly the distinct routed experts of every (token, layer)", async () => {
  const N = 5;
  const ref = await reference(MIXTRAL, N);
  const device = await createDevice({ backend: "cpu" });
  using rt = await openOffloadRuntime(MIXTRAL, {
    device,
    budgetBytes: 64 * MiB,
    policy: "ondemand",
    maxSeq: 16,
  });
  const { report } = await rt.generate(PROMPT, { maxNewTokens: N });
  const P = PROMPT.length;
  const distinct = (sel: Int32Array, from: number, to: number) =>
    new Set(sel.subarray(from * ref.K, to * ref.K)).size;
  let prefill = 0;
  let decode = 0;
  for (const sel of ref.selected) {
    prefill += distinct(sel, 0, P);
    for (let t = P; t < P + N - 1; t++) decode += distinct(sel, t, t + 1);
  }
  const eb = rt.store.expertBytes();
  assert.equal(report.prefillBytes, prefill * eb);
  assert.equal(report.bytesPerToken, (decode * eb) / (N - 1));
  assert.equal(report.expertHitRate, 0);
  assert.equal(rt.transfers.stats.count.demand, prefill + decode);
  device.destroy();
});

Deno.test("cached: bytes counted equal the uploads the cache chose, split into prefill and decode", async () => {
  const device = await createDevice({ backend: "cpu" });
  using rt = await openOffloadRuntime(MIXTRAL, {
    device,
    budgetBytes: 64 * MiB,
    policy: new CachedPolicy({ maxSlots: 3 }),
    maxSeq: 16,
  });
  const { report } = await rt.generate(PROMPT, { maxNewTokens: 6 });
  const eb = rt.store.expertBytes();
  const moved = rt.transfers.stats;
  assert.equal(moved.bytes.demand, moved.count.demand * eb);
  assert.equal(report.bytesPerToken * 5 + report.prefillBytes, moved.bytes.demand);
  assert.ok(report.expertHitRate > 0 && report.expertHitRate < 1, `hit rate ${report.expertHitRate}`);
  device.destroy();
});

Deno.test("the ledger's peak never exceeds the budget, at each policy's minimum budget", async () => {
  for (const policy of ["ondemand", "cached", "resident"] as const) {
    const probe = await createDevice({ backend: "cpu" });
    const min =
      (await openOffloadRuntime(MIXTRAL, { device: probe, budgetBytes: 64 * MiB, policy, maxSeq: 12 }))
        .plan.minimumBytes;
    probe.destroy();
    const device = await createDevice({ backend: "cpu", budgetBytes: min }); // the ledger refuses any byte over
    using rt = await openOffloadRuntime(MIXTRAL, { device, budgetBytes: min, policy, maxSeq: 12 });
    const { report } = await rt.generate(PROMPT, { maxNewTokens: 7 });
    assert.ok(device.ledger.peak() <= min, `${policy}: peak ${device.ledger.peak()} > budget ${min}`);
    assert.equal(report.peakDeviceBytes, device.ledger.peak());
    device.destroy();
  }
});

Deno.test("a budget below the minimum is refused with the breakdown, and nothing stays allocated", async () => {
  const device = await createDevice({ backend: "cpu" });
  await assert.rejects(
    openOffloadRuntime(MIXTRAL, { device, budgetBytes: 100_000, policy: "ondemand", maxSeq: 16 }),
    (e: Error) =>
      e instanceof OutOfBudgetError && /below the minimum/.test(e.message) && /KV cache/.test(e.message) &&
      /ondemand slots/.test(e.message),
  );
  assert.equal(device.ledger.current(), 0);
  device.destroy();
});

Deno.test("bad input: a model without experts, an unknown policy, experts on the device", async () => {
  const device = await createDevice({ backend: "cpu" });
  await assert.rejects(
    openOffloadRuntime("test/fixtures/models/llama-gqa-tied-f32", {
      device,
      budgetBytes: 64 * MiB,
      policy: "ondemand",
    }),
    /has no MoE layers/,
  );
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    openOffloadRuntime(MIXTRAL, { device, budgetBytes: 64 * MiB, policy: "lru" as any }),
    /Unknown offload policy "lru": expected one of resident, ondemand, cached/,
  );
  using model = await loadModel(MIXTRAL, { device });
  const store = await HostExperts.fromCheckpoint(MIXTRAL);
  await assert.rejects(
    OffloadRuntime.create(model, store, { budgetBytes: 64 * MiB, policy: "ondemand" }),
    /experts are on the device \(SwiGLUExperts\); load the model with loadModel\(dir, \{ device, experts: "skip" \}\)/,
  );
  device.destroy();
});

Deno.test("a prompt prefilled in chunks decodes the tokens of a one-forward prefill, with a smaller reserve", async () => {
  const makers: [string, () => OffloadPolicy | "ondemand"][] = [
    ["ondemand", () => "ondemand"],
    ["floe", () => new FloePolicy({ sparsity: 0.5, upBits: 2, groupSize: 16 })],
  ];
  for (const [name, make] of makers) {
    const run = async (prefillChunk?: number) => {
      const device = await createDevice({ backend: "cpu" });
      const opts = { device, budgetBytes: 64 * MiB, policy: make(), maxSeq: 16, prefillChunk };
      using rt = await openOffloadRuntime(MIXTRAL, opts);
      const { tokens } = await rt.generate(PROMPT, { maxNewTokens: 5 });
      const reserve = rt.plan.activationBytes;
      device.destroy();
      return { tokens, reserve };
    };
    const whole = await run();
    const chunked = await run(2);
    assert.deepEqual(chunked.tokens, whole.tokens, name);
    assert.ok(chunked.reserve < whole.reserve, `${name}: reserve ${chunked.reserve} < ${whole.reserve}`);
  }
});
