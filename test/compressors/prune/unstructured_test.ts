/** `pruneLinears`: in-place magnitude / Wanda / 2:4 pruning of a model's decoder Linears. */
import assert from "node:assert/strict";
import { collectInputNorms, decoderLinears } from "../../../src/compressors/prune/calibration.ts";
import { wandaMask } from "../../../src/compressors/prune/masks.ts";
import { pruneLinears } from "../../../src/compressors/prune/unstructured.ts";
import type { Device } from "../../../src/device/device.ts";
import type { CausalLM } from "../../../src/models/causal_lm.ts";
import { loadModel } from "../../../src/models/load.ts";
import { writeRandomCheckpoint } from "../../../src/models/random.ts";
import { testOnDevices } from "../../_helpers.ts";
import { asDenseLinear } from "../../../src/nn/linear_like.ts";

const dense = (l: Parameters<typeof asDenseLinear>[0]) => asDenseLinear(l, "read a test weight");

async function randomModel(device: Device, hidden = 16): Promise<CausalLM> {
  const dir = await Deno.makeTempDir();
  await writeRandomCheckpoint(dir, {
    model_type: "llama",
    vocab_size: 40,
    hidden_size: hidden,
    intermediate_size: 12,
    num_hidden_layers: 2,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    head_dim: 8,
  }, { seed: 8, std: 0.2 });
  const model = await loadModel(dir, { device });
  await Deno.remove(dir, { recursive: true });
  return model;
}

const IDS = Int32Array.of(4, 9, 1, 33, 20);
const zeros = (w: Float32Array) => w.reduce((n, v) => n + (v === 0 ? 1 : 0), 0);

testOnDevices("pruneLinears zeroes exactly the masked weights in place", async (device) => {
  using model = await randomModel(device);
  const before = new Map<string, Float32Array>();
  for (const { name, linear } of decoderLinears(model)) {
    before.set(name, await linear.weight.toArray() as Float32Array);
  }
  const { norms } = await collectInputNorms(model, [IDS]);
  const r = await pruneLinears(model, { method: "wanda", sparsity: 0.5, norms });
  assert.equal(r.modules.length, 14);
  assert.equal(r.sparsity, 0.5);
  for (const { name, linear } of decoderLinears(model)) {
    const w = await linear.weight.toArray() as Float32Array; // [out, in]
    const want = wandaMask(before.get(name)!, [linear.outFeatures, linear.inFeatures], norms.get(name)!, 0.5);
    assert.deepEqual([...w].map((v) => v === 0 ? 0 : 1), [...want.mask], name);
    assert.deepEqual(
      w.filter((v) => v !== 0),
      before.get(name)!.filter((_, i) => want.mask[i]),
      `${name}: kept values`,
    );
  }
  using logits = model.forward(IDS).logits;
  assert.ok((await logits.toArray()).every(Number.isFinite));
});

testOnDevices(
  "pruneLinears: magnitude sparsity per module, 2:4 pattern, and refusals before any write",
  async (device) => {
    using model = await randomModel(device);
    const mag = await pruneLinears(model, {
      method: "magnitude",
      sparsity: 0.3,
      filter: (n) => n.includes("layers.1."),
    });
    assert.deepEqual(mag.modules.map((m) => m.name.split(".").pop()), [
      "q_proj",
      "k_proj",
      "v_proj",
      "o_proj",
      "gate_proj",
      "up_proj",
      "down_proj",
    ]);
    for (const m of mag.modules) {
      const n = m.shape[0] * m.shape[1];
      assert.equal(m.sparsity, Math.floor(0.3 * n) / n, m.name);
    }
    assert.equal(
      zeros(await dense(model.layers[0].attention.qProj).weight.toArray() as Float32Array),
      0,
      "layer 0 untouched",
    );
    await pruneLinears(model, { method: "2:4" });
    for (const { name, linear } of decoderLinears(model)) {
      const w = await linear.weight.toArray() as Float32Array;
      for (let g = 0; g < w.length; g += 4) assert.ok(zeros(w.subarray(g, g + 4)) >= 2, `${name} group ${g}`);
    }
    await assert.rejects(
      pruneLinears(model, { method: "wanda", sparsity: 0.5 }),
      /no input norms for model\.layers\.0\.self_attn\.q_proj/,
    );

    using odd = await randomModel(device, 18); // q/k/v/gate/up have 18 inputs
    const q = await dense(odd.layers[0].attention.qProj).weight.toArray() as Float32Array;
    await assert.rejects(
      pruneLinears(odd, { method: "2:4" }),
      /Cannot prune with 2:4: model\.layers\.0\.self_attn\.q_proj: the 18 input columns are not divisible by 4; leave it out with filter/,
    );
    assert.deepEqual(await dense(odd.layers[0].attention.qProj).weight.toArray(), q, "nothing was written");
  },
);
