/**
 * The floe policy: with exact channels it gives the logits of `ferry floe logits` (part 1's
 * `FloeExperts`, run as a subprocess) for the same settings, at prefill and at a decode step; at
 * s = 0 with exact up its greedy tokens are the resident model's; its bytes are the rows it chose
 * (prefetch + reload), one readback per MoE layer, and the ledger stays within the budget.
 * @module
 */
import assert from "node:assert/strict";
import { createDevice } from "../../src/device/create_device.ts";
import { SafetensorsFile } from "../../src/io/safetensors.ts";
import { generate } from "../../src/models/generate.ts";
import { loadModel } from "../../src/models/load.ts";
import { FloePolicy } from "../../src/moe/policies/floe.ts";
import { openOffloadRuntime } from "../../src/moe/runtime.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { ferry } from "../_cli.ts";
import { assertClose } from "../_helpers.ts";

const MIXTRAL = "test/fixtures/models/mixtral-top2-f32";
const PROMPT = [3, 17, 42, 8, 61, 5, 90];
const MiB = 2 ** 20;

Deno.test("floe policy (exact channels) gives ferry floe logits' rows at prefill and decode", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry-floe-policy-" });
  const next = 33;
  const ids = [...PROMPT, next];
  const out = `${dir}/logits.safetensors`;
  const settings = ["--sparsity", "0.5", "--up-bits", "2", "--group-size", "16", "--mode", "topk"];
  const r = await ferry(
    "floe",
    "logits",
    "--model",
    MIXTRAL,
    "--ids",
    ids.join(","),
    ...settings,
    "--out",
    out,
  );
  assert.equal(r.code, 0, r.stderr);
  using f = await SafetensorsFile.open(out);
  const logits = await f.readF32("logits"); // [T, V]
  const V = logits.length / ids.length;
  const device = await createDevice({ backend: "cpu" });
  const policy = new FloePolicy({
    sparsity: 0.5,
    upBits: 2,
    groupSize: 16,
    channels: "exact",
    prefill: "sparse",
  });
  using rt = await openOffloadRuntime(MIXTRAL, { device, budgetBytes: 64 * MiB, policy, maxSeq: 16 });
  const row = (t: number) => logits.subarray(t * V, (t + 1) * V);
  assertClose(await rt.forward(Int32Array.from(PROMPT)), row(PROMPT.length - 1), { atol: 1e-4, rtol: 1e-4 });
  assertClose(await rt.forward(Int32Array.of(next)), row(PROMPT.length), { atol: 1e-4, rtol: 1e-4 });
  device.destroy();
  await Deno.remove(dir, { recursive: true });
});

Deno.test("floe policy at s = 0 with exact up decodes the resident model's greedy tokens", async () => {
  const device = await createDevice({ backend: "cpu" });
  const N = 6;
  let expected: number[];
  {
    using model = await loadModel(MIXTRAL, { device });
    expected = (await generate(model, PROMPT, { maxNewTokens: N })).tokens;
  }
  for (const channels of ["predicted", "exact"] as const) {
    const policy = new FloePolicy({ sparsity: 0, upBits: 16, channels });
    using rt = await openOffloadRuntime(MIXTRAL, { device, budgetBytes: 64 * MiB, policy, maxSeq: 16 });
    const { tokens, report } = await rt.generate(PROMPT, { maxNewTokens: N });
    assert.deepEqual(tokens, expected, channels);
    assert.equal(report.syncsPerToken, 3, "one readback per MoE layer plus the logits");
  }
  device.destroy();
});

Deno.test("floe policy: bytes are the rows it chose; hits + misses cover the routed experts; budget held", async () => {
  const probe = await createDevice({ backend: "cpu" });
  const options = { sparsity: 0.75, upBits: 4 as const, groupSize: 16 };
  const min = (await openOffloadRuntime(MIXTRAL, {
    device: probe,
    budgetBytes: 64 * MiB,
    policy: new FloePolicy(options),
    maxSeq: 16,
  })).plan.minimumBytes;
  probe.destroy();
  const device = await createDevice({ backend: "cpu", budgetBytes: min });
  using rt = await openOffloadRuntime(MIXTRAL, {
    device,
    budgetBytes: min,
    policy: new FloePolicy(options),
    maxSeq: 16,
  });
  const N = 8;
  const { report } = await rt.generate(PROMPT, { maxNewTokens: N });
  const C = rt.store.hidden;
  const k = Math.floor(0.25 * rt.store.intermediate);
  const moved = rt.transfers.stats;
  // every decode transfer is the gate + down rows of k channels (a prefetch or a miss's reload)
  assert.equal(moved.bytes.prefetch, moved.count.prefetch * 2 * k * C * 4);
  assert.equal(moved.bytes.reload, moved.count.reload * 2 * k * C * 4);
  // layer 1 is the only sparse layer: 2 experts per token, each prefetched (a hit) or reloaded (a miss)
  const steps = N - 1;
  const hits = report.hitRateByLayer[1] * 2 * steps;
  assert.ok(
    Math.abs(hits + moved.count.reload - 2 * steps) < 1e-9,
    `hits ${hits}, reloads ${moved.count.reload}`,
  );
  assert.equal(report.reloadsPerToken, moved.count.reload / steps);
  assert.equal(report.bytesPerToken, (moved.bytes.prefetch + moved.bytes.reload) / steps);
  assert.equal(report.hitRateByLayer[0], 1); // layer 0 dense and resident
  assert.ok(device.ledger.peak() <= min);
  device.destroy();
});

Deno.test("floe policy prefetches what its expert predictor says (a constant predictor's hits)", async () => {
  const device = await createDevice({ backend: "cpu" });
  const N = 7;
  const P = PROMPT.length;
  // the routing of layer 1 at every decode step, from the resident model (s = 0, exact up: same routing)
  let routed: Int32Array;
  {
    using model = await loadModel(MIXTRAL, { device });
    const { tokens } = await generate(model, PROMPT, { maxNewTokens: N });
    const out = model.forward(Int32Array.from([...PROMPT, ...tokens]), { collectRouter: true });
    out.logits.dispose();
    routed = await out.selected![1].toArray() as Int32Array; // [T, K]
    for (const t of [...out.selected!, ...out.routerLogits!]) t.dispose();
  }
  const favourite = [3, 2]; // the constant prediction for layer 1
  const predictor = {
    kind: "constant",
    predict: (_target: number, h: Tensor) =>
      Tensor.fromArray(device, new Float32Array(h.shape[0] * 4).map((_, j) => [0, 0, 1, 2][j % 4]), [
        h.shape[0],
        4,
      ], {
        dtype: "f32",
      }),
  };
  const policy = new FloePolicy({ sparsity: 0, upBits: 16, predictor });
  using rt = await openOffloadRuntime(MIXTRAL, { device, budgetBytes: 64 * MiB, policy, maxSeq: 16 });
  const { report } = await rt.generate(PROMPT, { maxNewTokens: N });
  let hits = 0;
  for (let t = P; t < P + N - 1; t++) {
    hits += [routed[2 * t], routed[2 * t + 1]].filter((e) => favourite.includes(e)).length;
  }
  assert.equal(report.hitRateByLayer[1], hits / (2 * (N - 1)));
  assert.equal(report.policyInfo.predictor, "constant");
  device.destroy();
});
