/**
 * merge / unmerge / mergeAndUnload on dense and MoE fixtures, with non-zero B: merged outputs
 * match the attached adapters, unmerge restores the weights, safe merge refuses non-finite
 * results and changes nothing. On the CPU reference and on WebGPU.
 */
import assert from "node:assert/strict";
import { loraConfig } from "../../src/lora/lora_config.ts";
import { applyLora, LoraModel } from "../../src/lora/lora_model.ts";
import type { LoraFactors } from "../../src/lora/peft_io.ts";
import { testOnDevices } from "../_helpers.ts";
import { loadFixture, logitsOf, maxAbsDiff, promptOf, relativeMaxDiff, snapshot } from "./_lora_fixtures.ts";
import { asDenseLinear } from "../../src/nn/linear_like.ts";

const dense = (l: Parameters<typeof asDenseLinear>[0]) => asDenseLinear(l, "read a test weight");

const CASES = ["llama-gqa-tied-f32", "mixtral-top2-f32", "qwen2-moe-f32"];

for (const name of CASES) {
  testOnDevices(
    `LoraModel.merge() on ${name} matches the attached adapters; unmerge() restores`,
    async (device) => {
      using model = await loadFixture(name, device);
      const ids = promptOf(name);
      const base = await logitsOf(model, ids);
      const weights = await snapshot(model);
      // Small B keeps the routing away from ties: the attached and merged paths round differently.
      const lora = applyLora(model, {
        r: 4,
        loraAlpha: 2,
        targetModules: "all-linear",
        initLoraWeights: false,
      }, { seed: 11 });
      const attached = await logitsOf(model, ids);
      assert.ok(relativeMaxDiff(attached, base) > 1e-3, "the adapters change the logits");

      await lora.merge();
      assert.ok(lora.merged);
      assert.equal(dense(model.layers[0].attention.qProj).adapter, undefined, "detached while merged");
      const merged = await logitsOf(model, ids);
      assert.ok(
        relativeMaxDiff(merged, attached) <= 1e-5,
        `merged vs attached: ${relativeMaxDiff(merged, attached)}`,
      );
      const changed = await snapshot(model);
      assert.ok(
        maxAbsDiff(
          changed.get("model.layers.1.self_attn.o_proj.weight")!,
          weights.get("model.layers.1.self_attn.o_proj.weight")!,
        ) > 1e-3,
      );

      lora.unmerge();
      assert.ok(!lora.merged);
      assert.equal(
        dense(model.layers[0].attention.qProj).adapter,
        lora.adapter("model.layers.0.self_attn.q_proj"),
      );
      for (const [param, values] of await snapshot(model)) {
        assert.ok(maxAbsDiff(values, weights.get(param)!) <= 1e-6, `${param} restored`);
      }
      assert.ok(relativeMaxDiff(await logitsOf(model, ids), attached) <= 1e-5);

      const plain = await lora.mergeAndUnload();
      assert.equal(plain, model);
      assert.ok(relativeMaxDiff(await logitsOf(plain, ids), attached) <= 1e-5);
      assert.throws(() => lora.trainableParameters(), /disposed or unloaded/);
    },
  );
}

testOnDevices("LoraModel.merge() with safeMerge refuses NaN/Inf and modifies nothing", async (device) => {
  const name = "mixtral-top2-f32";
  using model = await loadFixture(name, device);
  const config = loraConfig({ r: 2, targetModules: ["q_proj", "w2"], initLoraWeights: false });
  const fresh = applyLora(model, config, { seed: 5 });
  const good = new Map<string, LoraFactors>();
  for (const m of fresh.modules) {
    const { a, b } = fresh.adapter(m)!;
    good.set(m, { A: await a.toArray() as Float32Array, B: await b.toArray() as Float32Array });
  }
  fresh.dispose();
  const weights = await snapshot(model);
  const q = "model.layers.1.self_attn.q_proj";
  const w2 = "model.layers.1.block_sparse_moe.experts.2.w2";
  /** An adapter with `damage` applied to a copy of the good factors. */
  const broken = (damage: (f: Map<string, LoraFactors>) => void) => {
    const f = new Map([...good].map(([m, { A, B }]) => [m, { A: A.slice(), B: B.slice() }]));
    damage(f);
    return new LoraModel(model, config, f);
  };
  const refuses = async (lora: LoraModel, message: RegExp) => {
    const attached = await logitsOf(model, promptOf(name)); // NaN where the broken adapter reaches
    await assert.rejects(lora.merge(), (e: Error) => e instanceof RangeError && message.test(e.message));
    assert.ok(!lora.merged);
    assert.deepEqual(await snapshot(model), weights, "no weight modified");
    assert.ok(dense(model.layers[1].attention.qProj).adapter !== undefined, "adapters still attached");
    assert.deepEqual(await logitsOf(model, promptOf(name)), attached);
  };

  using nan = broken((f) => f.get(q)!.A[0] = NaN);
  await refuses(
    nan,
    /^Cannot merge LoRA adapter into "model\.layers\.1\.self_attn\.q_proj": lora_A holds 1 NaN and 0 infinite values; the adapter seems broken\. Nothing was merged/,
  );
  nan.dispose();
  // Overflow: finite factors whose product is not (found by reading the merged weight back).
  using huge = broken((f) => {
    f.get(w2)!.A.fill(1e20);
    f.get(w2)!.B.fill(1e20);
  });
  await refuses(
    huge,
    /into "model\.layers\.1\.block_sparse_moe\.experts\.2\.w2": the merged weight would hold 0 NaN and \d+ infinite values \(of 1536\)/,
  );
  huge.dispose();

  using inf = broken((f) => f.get(w2)!.B[3] = Infinity);
  await refuses(inf, /experts\.2\.w2": lora_B holds 0 NaN and 1 infinite values/);
  // Unsafe: the damage goes in (this is what safe mode prevents), to expert 2 only.
  await inf.merge({ safeMerge: false });
  const stacked = model.layers[1].mlp.parameters().get("experts.down_proj")!;
  const [, C, F] = stacked.shape;
  const values = await stacked.toArray() as Float32Array;
  assert.ok(values.subarray(2 * C * F, 3 * C * F).some((v) => !Number.isFinite(v)), "expert 2 damaged");
  assert.ok(values.subarray(0, 2 * C * F).every(Number.isFinite), "other experts untouched");
});

testOnDevices("LoraModel.merge() twice and unmerge() when unmerged warn and do nothing", async (device) => {
  using model = await loadFixture("llama-gqa-tied-f32", device);
  using lora = applyLora(model, { initLoraWeights: false });
  const warnings: string[] = [];
  const warn = console.warn;
  console.warn = (msg: string) => warnings.push(msg);
  try {
    lora.unmerge();
    await lora.merge();
    const once = await snapshot(model);
    await lora.merge();
    assert.deepEqual(await snapshot(model), once);
  } finally {
    console.warn = warn;
  }
  assert.deepEqual(warnings, [
    "LoraModel.unmerge(): already unmerged. Nothing to do.",
    "LoraModel.merge(): already merged. Nothing to do.",
  ]);
});

testOnDevices("LoraModel.unload() restores the base model and frees the adapters", async (device) => {
  const name = "qwen2-moe-f32";
  using model = await loadFixture(name, device);
  const base = await logitsOf(model, promptOf(name));
  const lora = applyLora(model, {
    targetModules: ["down_proj", "shared_expert_gate"],
    initLoraWeights: false,
  });
  await lora.merge();
  const bytes = device.ledger.current("lora");
  const plain = lora.unload();
  assert.ok(device.ledger.current("lora") < bytes);
  assert.ok(relativeMaxDiff(await logitsOf(plain, promptOf(name)), base) <= 1e-5);
});
