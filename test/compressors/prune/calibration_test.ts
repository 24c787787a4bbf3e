/** `collectInputNorms`: per-input-feature ‖X_j‖₂ of every decoder Linear, checked against host references. */
import assert from "node:assert/strict";
import { collectInputNorms, decoderLinears } from "../../../src/compressors/prune/calibration.ts";
import { createDevice } from "../../../src/device/create_device.ts";
import type { Device } from "../../../src/device/device.ts";
import type { CausalLM } from "../../../src/models/causal_lm.ts";
import { loadModel } from "../../../src/models/load.ts";
import { writeRandomCheckpoint } from "../../../src/models/random.ts";
import { assertClose, testOnDevices } from "../../_helpers.ts";

const CONFIG = {
  model_type: "llama",
  vocab_size: 40,
  hidden_size: 12,
  intermediate_size: 18,
  num_hidden_layers: 2,
  num_attention_heads: 3,
  num_key_value_heads: 1,
  rms_norm_eps: 1e-5,
};
const SEQS = [Int32Array.of(1, 7, 3, 39, 12), Int32Array.of(5, 5, 0)];
const dir = await Deno.makeTempDir();
await writeRandomCheckpoint(dir, CONFIG, { seed: 4, std: 0.3 });
const cpu = await createDevice({ backend: "cpu" });

/** Host reference: each Linear's raw inputs copied out by a hook on the CPU backend, then Σ_t x² → √. */
async function referenceNorms(): Promise<Map<string, Float64Array>> {
  using model = await loadModel(dir, { device: cpu });
  const sums = new Map<string, Float64Array>();
  for (const { name, linear } of decoderLinears(model)) {
    const s = new Float64Array(linear.inFeatures);
    sums.set(name, s);
    linear.inputHook = (x) => {
      const data = x.host() as Float32Array; // [T, in]
      for (let i = 0; i < data.length; i++) s[i % s.length] += data[i] * data[i];
    };
  }
  for (const ids of SEQS) model.forward(ids).logits.dispose();
  for (const s of sums.values()) s.forEach((v, i) => s[i] = Math.sqrt(v));
  return sums;
}
const REFERENCE = await referenceNorms();

async function load(device: Device): Promise<CausalLM> {
  return await loadModel(dir, { device });
}

testOnDevices("collectInputNorms matches a host reference for every decoder Linear", async (device) => {
  using model = await load(device);
  const { norms, tokens } = await collectInputNorms(model, SEQS);
  assert.equal(tokens, 8);
  assert.deepEqual([...norms.keys()], [...REFERENCE.keys()]);
  assert.equal(norms.size, 14); // 2 layers × (q, k, v, o, gate, up, down)
  for (const [name, want] of REFERENCE) {
    // f32 sums of 8 squares on the device vs f64 on the host: a few ulps.
    assertClose(norms.get(name)!, want, { rtol: 1e-5, atol: 1e-6, what: name });
  }
  for (const { linear } of decoderLinears(model)) {
    assert.equal(linear.inputHook, undefined, "hooks are removed");
  }
});

testOnDevices(
  "collectInputNorms of layer 0's q_proj equals ‖RMSNorm(embed(ids))‖ per feature",
  async (device) => {
    using model = await load(device);
    const { norms } = await collectInputNorms(model, SEQS, {
      filter: (n) => n.endsWith("layers.0.self_attn.q_proj"),
    });
    assert.deepEqual([...norms.keys()], ["model.layers.0.self_attn.q_proj"]);
    const C = CONFIG.hidden_size;
    const E = await model.embedTokens.weight.toArray() as Float32Array; // [V, C]
    const g = await model.layers[0].inputNorm.weight.toArray() as Float32Array; // [C]
    const want = new Float64Array(C);
    for (const id of SEQS.flatMap((s) => [...s])) {
      const e = E.subarray(id * C, (id + 1) * C);
      const rms = Math.sqrt(e.reduce((a, v) => a + v * v, 0) / C + CONFIG.rms_norm_eps);
      e.forEach((v, j) => want[j] += (v / rms * g[j]) ** 2);
    }
    // RMSNorm in f32 then squares summed in f32: relative error well below 1e-5.
    assertClose(norms.get("model.layers.0.self_attn.q_proj")!, want.map(Math.sqrt), {
      rtol: 1e-5,
      atol: 1e-6,
    });
  },
);

testOnDevices("collectInputNorms refuses no tokens and a busy hook, and always unhooks", async (device) => {
  using model = await load(device);
  await assert.rejects(collectInputNorms(model, []), /no calibration tokens; pass at least one sequence/);
  await assert.rejects(
    collectInputNorms(model, [Int32Array.of(1, 99)]),
    /ids\[1\] = 99 is outside the vocabulary/,
  );
  for (const { linear } of decoderLinears(model)) assert.equal(linear.inputHook, undefined);
  const lin = decoderLinears(model)[3].linear;
  lin.inputHook = () => {};
  await assert.rejects(
    collectInputNorms(model, SEQS),
    /model\.layers\.0\.self_attn\.o_proj already has an inputHook/,
  );
  lin.inputHook = undefined;
});

addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
