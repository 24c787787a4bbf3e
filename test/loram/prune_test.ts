import assert from "node:assert/strict";
import { createDevice } from "../../src/device/create_device.ts";
import { loramPrune } from "../../src/loram/prune.ts";
import { loadModel } from "../../src/models/load.ts";

const FIXTURE = "test/fixtures/models/llama-gqa-tied-f32"; // L 2, C 32, F 64, H 4, Hkv 2, D 8
const device = await createDevice({ backend: "cpu" });
const CALIB = [Int32Array.of(3, 17, 5, 40, 11, 2, 29), Int32Array.of(9, 1, 77, 12, 50, 6)];

async function weight(model: { parameters(): Map<string, { toArray(): Promise<unknown> }> }, name: string) {
  return await model.parameters().get(name)!.toArray() as Float32Array;
}

Deno.test("loramPrune: masked variants zero weights of the range only, on a copy", async () => {
  using model = await loadModel(FIXTURE, { device });
  const before = await weight(model, "model.layers.1.mlp.up_proj.weight");
  for (const [method, criterion] of [["unst", "magnitude"], ["unst", "wanda"], ["semi", "wanda"]] as const) {
    const r = await loramPrune(model, { method, ratio: 0.5, layers: [1, 2], criterion, calibration: CALIB });
    using small = r.model;
    assert.equal(r.plan, null);
    assert.equal(r.sparsity, 0.5);
    assert.equal(r.criterion, method === "semi" ? "2:4" : criterion);
    const up = await weight(small, "model.layers.1.mlp.up_proj.weight"); // [64, 32]
    assert.equal(up.filter((v) => v === 0).length, 32 * 32);
    if (method === "semi") {
      for (let g = 0; g < up.length; g += 4) {
        assert.equal(up.subarray(g, g + 4).filter((v) => v === 0).length, 2);
      }
    }
    up.forEach((v, i) => assert.ok(v === 0 || v === before[i]));
    assert.deepEqual(
      await weight(small, "model.layers.0.mlp.up_proj.weight"),
      await weight(model, "model.layers.0.mlp.up_proj.weight"),
    );
  }
  assert.deepEqual(await weight(model, "model.layers.1.mlp.up_proj.weight"), before); // the original is untouched
});

Deno.test("loramPrune: structured variants give a smaller model; bad input is refused", async () => {
  using model = await loadModel(FIXTURE, { device });
  for (const method of ["rand", "stru"] as const) {
    const r = await loramPrune(model, { method, ratio: 0.5, layers: [0, 2], calibration: CALIB });
    using small = r.model;
    assert.equal(r.plan!.layers.length, 2);
    assert.equal(small.config.layerSizes![1].intermediate, 32);
    assert.equal(r.sparsity, 0.5); // half the channels and half the KV heads of every projection
  }
  await assert.rejects(
    () => loramPrune(model, { method: "stru", ratio: 0.5, layers: [0, 2] }),
    /pass calibration blocks/,
  );
  await assert.rejects(
    () => loramPrune(model, { method: "semi", ratio: 0.6, layers: [0, 2] }),
    /must be 0\.5/,
  );
  await assert.rejects(
    () => loramPrune(model, { method: "rand", ratio: 0.5, layers: [0, 3] }),
    /outside the model's 2 layers/,
  );
  await assert.rejects(() => loramPrune(model, { method: "unst", ratio: 1, layers: [0, 2] }), /\(0, 1\)/);
  using moe = await loadModel("test/fixtures/models/mixtral-top2-f32", { device });
  await assert.rejects(
    () => loramPrune(moe, { method: "rand", ratio: 0.5, layers: [0, 1] }),
    /only dense Llama-family/,
  );
});
