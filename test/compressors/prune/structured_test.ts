/** Structured plan builders: top-k by score, seeded random, L2-of-weights and activation-aware importance. */
import assert from "node:assert/strict";
import { collectInputNorms } from "../../../src/compressors/prune/calibration.ts";
import { planDimsOf } from "../../../src/compressors/prune/pruning_plan.ts";
import {
  activationPlan,
  l2Plan,
  loramLayerRange,
  planFromScores,
  randomPlan,
} from "../../../src/compressors/prune/structured.ts";
import type { Device } from "../../../src/device/device.ts";
import type { CausalLM } from "../../../src/models/causal_lm.ts";
import { loadModel } from "../../../src/models/load.ts";
import { writeRandomCheckpoint } from "../../../src/models/random.ts";
import { testOnDevices } from "../../_helpers.ts";

const DIMS = { layers: 8, hidden: 16, intermediate: 10, heads: 4, kvHeads: 2, headDim: 4 };

Deno.test("planFromScores keeps the highest scores, ascending, ties to the lower index", () => {
  const mlp = [5, 1, 9, 1, 7, 3, 3, 8, 0, 2];
  const plan = planFromScores(DIMS, "custom", () => ({ mlp, kvHeads: [0.5, 0.7] }), {
    ratio: 0.5,
    layers: [2, 4],
  });
  assert.deepEqual(plan.layers.map((l) => l.index), [2, 3]);
  assert.deepEqual(plan.layers[0].mlpKeep, [0, 2, 4, 5, 7]); // 9, 8, 7, 5, then 3 at 5 before 3 at 6
  assert.deepEqual(plan.layers[0].kvHeadKeep, [1]);
  assert.equal(plan.method, "custom");
  const attnOnly = planFromScores(DIMS, "custom", () => ({ mlp, kvHeads: [1, 0] }), {
    ratio: 0.5,
    layers: [0, 1],
    mlp: false,
  });
  assert.deepEqual(attnOnly.layers[0], {
    index: 0,
    mlpKeep: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    kvHeadKeep: [0],
  });
  assert.throws(
    () =>
      planFromScores(DIMS, "custom", () => ({ mlp: [1], kvHeads: [1, 0] }), { ratio: 0.5, layers: [0, 1] }),
    /layer 0 mlp scores need 10 entries: received 1/,
  );
});

Deno.test("randomPlan is seeded, covers LoRAM's default range [4, L−2) and refuses empty ranges", () => {
  assert.deepEqual(loramLayerRange(80), [4, 78]);
  const a = randomPlan(DIMS, { ratio: 0.5, seed: 1 });
  assert.deepEqual(a.layers.map((l) => l.index), [4, 5]);
  assert.deepEqual(randomPlan(DIMS, { ratio: 0.5, seed: 1 }), a);
  const keeps = new Set(
    [1, 2, 3, 4, 5].map((seed) => JSON.stringify(randomPlan(DIMS, { ratio: 0.5, seed }).layers)),
  );
  assert.ok(keeps.size > 1, "different seeds give different plans");
  assert.equal(a.layers[0].mlpKeep.length, 5);
  assert.throws(() => randomPlan({ ...DIMS, layers: 6 }, { ratio: 0.5 }), /layer range \[4, 4\) is empty/);
  assert.throws(
    () => randomPlan(DIMS, { ratio: 0.5, layers: [2, 9] }),
    /pass layers: \[start, end\] with 0 ≤ start < end ≤ 8/,
  );
  assert.throws(() => randomPlan(DIMS, { ratio: 0.5, layer: [1, 2] } as never), /did you mean "layers"/);
});

async function randomModel(device: Device): Promise<CausalLM> {
  const dir = await Deno.makeTempDir();
  await writeRandomCheckpoint(dir, {
    model_type: "llama",
    vocab_size: 40,
    hidden_size: 16,
    intermediate_size: 10,
    num_hidden_layers: 3,
    num_attention_heads: 4,
    num_key_value_heads: 2,
  }, { seed: 2, std: 0.2 });
  const model = await loadModel(dir, { device });
  await Deno.remove(dir, { recursive: true });
  return model;
}

/** Multiplies rows (axis 0) or columns (axis 1) of a weight in place on the device. */
async function scaleWeight(model: CausalLM, name: string, axis: 0 | 1, index: readonly number[], by: number) {
  const t = model.parameters().get(name)!;
  const data = await t.toArray() as Float32Array;
  const [rows, cols] = t.shape;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) if (index.includes(axis === 0 ? r : c)) data[r * cols + c] *= by;
  }
  model.device.upload(t.storage, data);
}

testOnDevices("l2Plan keeps the channels and KV head whose weights are largest", async (device) => {
  using model = await randomModel(device);
  const p = "model.layers.1";
  await scaleWeight(model, `${p}.mlp.up_proj.weight`, 0, [1, 6, 8], 20); // channels 1, 6, 8 dominate
  await scaleWeight(model, `${p}.mlp.down_proj.weight`, 1, [3, 9], 20); // and 3, 9
  await scaleWeight(model, `${p}.self_attn.v_proj.weight`, 0, [4, 5, 6, 7], 20); // KV head 1
  const plan = await l2Plan(model, { ratio: 0.5, layers: [1, 2] });
  assert.equal(plan.method, "l2");
  assert.deepEqual(plan.layers, [{ index: 1, mlpKeep: [1, 3, 6, 8, 9], kvHeadKeep: [1] }]);
  // Query-group weights count too: o_proj columns of query heads 0, 1 (KV head 0) win instead.
  await scaleWeight(model, `${p}.self_attn.o_proj.weight`, 1, [0, 1, 2, 3, 4, 5, 6, 7], 100);
  assert.deepEqual((await l2Plan(model, { ratio: 0.5, layers: [1, 2] })).layers[0].kvHeadKeep, [0]);
});

testOnDevices("activationPlan scores by ‖W_down[:,c]‖·‖a_c‖ and ‖W_o[:,j]‖·‖x_j‖", async (device) => {
  using model = await randomModel(device);
  const { norms } = await collectInputNorms(model, [Int32Array.of(1, 2, 3, 4, 5, 6)]);
  const plan = await activationPlan(model, norms, { ratio: 0.5, layers: [0, 3] });
  assert.equal(plan.layers.length, 3);
  // Expected from the same formula computed here on the host.
  const dims = planDimsOf(model.config);
  for (const l of plan.layers) {
    const down = await model.parameters().get(`model.layers.${l.index}.mlp.down_proj.weight`)!
      .toArray() as Float32Array;
    const a = norms.get(`model.layers.${l.index}.mlp.down_proj`)!;
    const score = (c: number) => {
      let s = 0;
      for (let r = 0; r < dims.hidden; r++) s += down[r * dims.intermediate + c] ** 2;
      return Math.sqrt(s) * a[c];
    };
    const kept = l.mlpKeep.map(score);
    const pruned = [...Array(dims.intermediate).keys()].filter((c) => !l.mlpKeep.includes(c)).map(score);
    assert.ok(Math.min(...kept) >= Math.max(...pruned), `layer ${l.index}: a pruned channel scores higher`);
  }
  // Silencing channel 2's activation (its a_c = 0) prunes it even though its weights are large.
  const silenced = new Map(norms);
  const a0 = Float32Array.from(norms.get("model.layers.0.mlp.down_proj")!);
  a0[2] = 0;
  silenced.set("model.layers.0.mlp.down_proj", a0);
  await scaleWeight(model, "model.layers.0.mlp.down_proj.weight", 1, [2], 50);
  const p2 = await activationPlan(model, silenced, { ratio: 0.5, layers: [0, 1] });
  assert.ok(!p2.layers[0].mlpKeep.includes(2));
  assert.ok((await l2Plan(model, { ratio: 0.5, layers: [0, 1] })).layers[0].mlpKeep.includes(2));
  await assert.rejects(
    activationPlan(model, new Map(), { ratio: 0.5, layers: [0, 1] }),
    /input norms of model\.layers\.0\.mlp\.down_proj \(10 values\) are missing; collect them with collectInputNorms/,
  );
});
