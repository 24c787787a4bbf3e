/**
 * LoRAM recovery: factors trained on a pruned model scattered back to the original shapes. A
 * hand-built plan checks every projection (pruned rows/columns zero, kept ones equal to the pruned
 * factors), the merge (`W + scaling·B_R·A_R`), and that the masked original with the recovered
 * adapter computes exactly what the pruned model with its adapter computes.
 */
import assert from "node:assert/strict";
import { applyPlan, maskWithPlan } from "../../src/compressors/prune/apply_plan.ts";
import { createPruningPlan, planDimsOf } from "../../src/compressors/prune/pruning_plan.ts";
import { createDevice } from "../../src/device/create_device.ts";
import { loadLoraAdapter, saveLoraAdapter } from "../../src/lora/adapter_io.ts";
import { applyLora, type LoraModel } from "../../src/lora/lora_model.ts";
import { recoverAdapterFolder, recoverFactors, recoverLora } from "../../src/loram/recover.ts";
import { loadModel } from "../../src/models/load.ts";
import { assertClose } from "../_helpers.ts";

const FIXTURE = "test/fixtures/models/llama-gqa-tied-f32"; // L 2, C 32, F 64, H 4, Hkv 2, D 8
const device = await createDevice({ backend: "cpu" });
const IDS = Int32Array.of(3, 17, 5, 40, 11, 2, 29, 64);
const R = 4;

async function setup() {
  const original = await loadModel(FIXTURE, { device });
  const mlpKeep = Array.from({ length: 64 }, (_, c) => c).filter((c) => c % 3 !== 1); // 43 of 64
  const plan = createPruningPlan({
    method: "manual",
    ratio: 0.5,
    dims: planDimsOf(original.config),
    layers: [{ index: 1, mlpKeep, kvHeadKeep: [1] }], // KV head 1: q heads 2, 3
  });
  const small = await applyPlan(original, plan);
  // Random A and B (init false), so every factor is non-zero and every position can be told apart.
  const lora = applyLora(small, { r: R, loraAlpha: 8, targetModules: "all-linear", initLoraWeights: false }, {
    seed: 3,
  });
  return { original, plan, small, lora, mlpKeep };
}

async function factorsOf(lora: LoraModel, module: string) {
  const { a, b } = lora.adapter(module)!;
  return { A: await a.toArray() as Float32Array, B: await b.toArray() as Float32Array };
}

Deno.test("recoverLora: pruned rows/columns are zero, kept ones equal the pruned factors, on every projection", async () => {
  const { original, plan, small, lora, mlpKeep } = await setup();
  using _o = original;
  using _s = small;
  using _l = lora;
  using rec = await recoverLora(plan, lora, original);
  assert.deepEqual(rec.modules, lora.modules);
  const qRows = Array.from({ length: 16 }, (_, i) => 16 + i); // q heads 2, 3 (D 8)
  const kvRows = Array.from({ length: 8 }, (_, i) => 8 + i); // KV head 1
  const cases: [string, "A" | "B", number[], number][] = [
    ["self_attn.q_proj", "B", qRows, 32],
    ["self_attn.k_proj", "B", kvRows, 16],
    ["self_attn.v_proj", "B", kvRows, 16],
    ["self_attn.o_proj", "A", qRows, 32],
    ["mlp.gate_proj", "B", mlpKeep, 64],
    ["mlp.up_proj", "B", mlpKeep, 64],
    ["mlp.down_proj", "A", mlpKeep, 64],
  ];
  for (const [proj, factor, keep, full] of cases) {
    const module = `model.layers.1.${proj}`;
    const p = await factorsOf(lora, module);
    const r = await factorsOf(rec, module);
    const other = factor === "A" ? "B" : "A";
    assert.deepEqual(r[other], p[other], `${module}: lora_${other} is unchanged`);
    const kept = new Set(keep);
    for (let k = 0; k < R; k++) {
      for (let i = 0; i < full; i++) {
        const got = factor === "A" ? r.A[k * full + i] : r.B[i * R + k];
        const j = keep.indexOf(i);
        const want = !kept.has(i) ? 0 : factor === "A" ? p.A[k * keep.length + j] : p.B[j * R + k];
        assert.equal(
          got,
          want,
          `${module} lora_${factor} at ${factor === "A" ? `[${k}, ${i}]` : `[${i}, ${k}]`}`,
        );
      }
    }
    if (!kept.has(0)) assert.equal(factor === "A" ? r.A[0] : r.B[0], 0);
  }
  // Layer 0 is not planned: copied as is.
  for (const proj of ["self_attn.q_proj", "mlp.down_proj"]) {
    assert.deepEqual(
      await factorsOf(rec, `model.layers.0.${proj}`),
      await factorsOf(lora, `model.layers.0.${proj}`),
    );
  }
});

Deno.test("recoverLora: merged = original + scaling·B_R·A_R, and the masked original equals the pruned model", async () => {
  const { original, plan, small, lora } = await setup();
  using _s = small;
  using _l = lora;
  // The pruned model with its adapter vs the masked original with the recovered adapter: same logits.
  const prunedLogits = await small.forward(IDS).logits.toArray();
  using masked = await maskWithPlan(original, plan);
  using onMasked = await recoverLora(plan, lora, masked);
  assertClose(await masked.forward(IDS).logits.toArray(), prunedLogits, {
    rtol: 1e-4,
    atol: 1e-5,
    what: "logits",
  });
  onMasked.dispose();
  // Merge into the original: W + scaling·B_R·A_R, computed here on the host.
  const rec = await recoverLora(plan, lora, original);
  const expected = new Map<string, Float32Array>();
  for (const module of rec.modules) {
    const { A, B } = await factorsOf(rec, module);
    const W = Float32Array.from(
      await original.parameters().get(`${module}.weight`)!.toArray() as Float32Array,
    );
    const [out, inF] = original.parameters().get(`${module}.weight`)!.shape;
    const s = rec.config.scaling(module);
    for (let i = 0; i < out; i++) {
      for (let j = 0; j < inF; j++) {
        let d = 0;
        for (let k = 0; k < R; k++) d += B[i * R + k] * A[k * inF + j];
        W[i * inF + j] += s * d;
      }
    }
    expected.set(module, W);
  }
  using merged = await rec.mergeAndUnload();
  for (const [module, W] of expected) {
    assertClose(await merged.parameters().get(`${module}.weight`)!.toArray(), W, {
      rtol: 1e-5,
      atol: 1e-6,
      what: module,
    });
  }
});

Deno.test("recoverFactors: normA fills the pruned A columns with N(0, (1/r)²) noise, zeroA with zeros", async () => {
  const { original, plan, small, lora, mlpKeep } = await setup();
  using _o = original;
  using _s = small;
  using _l = lora;
  const module = "model.layers.1.mlp.down_proj";
  const p = await factorsOf(lora, module);
  const factors = new Map([[module, p]]);
  const norm = recoverFactors(plan, factors, () => R, { type: "normA", seed: 5 }).get(module)!;
  const zero = recoverFactors(plan, factors, () => R).get(module)!;
  const pruned = Array.from({ length: 64 }, (_, c) => c).filter((c) => !mlpKeep.includes(c));
  let ss = 0;
  for (let k = 0; k < R; k++) {
    for (const c of pruned) {
      assert.equal(zero.A[k * 64 + c], 0);
      ss += norm.A[k * 64 + c] ** 2;
    }
    for (const c of mlpKeep) assert.equal(norm.A[k * 64 + c], zero.A[k * 64 + c]);
  }
  const std = Math.sqrt(ss / (R * pruned.length)); // 84 draws of N(0, 1/16)
  assert.ok(std > 0.15 && std < 0.4, `std ${std}, expected about 1/r = 0.25`);
  assert.deepEqual(norm.B, p.B);
  // Masked plans: the identity.
  assert.deepEqual(recoverFactors(null, factors, () => R).get(module), p);
});

Deno.test("recoverLora: an adapter whose shapes do not fit the plan, or a plan for another model, is refused", async () => {
  const { original, plan, small, lora } = await setup();
  using _o = original;
  using _s = small;
  using _l = lora;
  const module = "model.layers.1.mlp.gate_proj";
  const p = await factorsOf(lora, module);
  const wrong = new Map([[module, { A: p.A, B: p.B.subarray(0, p.B.length - R) }]]);
  assert.throws(
    () => recoverFactors(plan, wrong, () => R),
    /model\.layers\.1\.mlp\.gate_proj: the plan keeps 43 of its 64 output rows, so lora_B must be \[43, 4\]: received \[42, 4\]/,
  );
  const other = createPruningPlan({ ...plan, dims: { ...plan.dims, intermediate: 65 } });
  await assert.rejects(
    () => recoverLora(other, lora, original),
    /the plan is for another model: intermediate 65 \(model: 64\)/,
  );
  // The unrecovered pruned adapter does not attach to the original model.
  const dir = await Deno.makeTempDir();
  try {
    await saveLoraAdapter(dir, lora);
    await assert.rejects(() => loadLoraAdapter(dir, original), /was it trained on a model of another size/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("recoverAdapterFolder: a PEFT folder for the pruned model becomes one for the original", async () => {
  const { original, plan, small, lora } = await setup();
  using _s = small;
  using _l = lora;
  const dir = await Deno.makeTempDir();
  try {
    await saveLoraAdapter(`${dir}/pruned`, lora);
    await recoverAdapterFolder(plan, `${dir}/pruned`, `${dir}/adapter`, { baseModel: FIXTURE });
    const cfg = JSON.parse(await Deno.readTextFile(`${dir}/adapter/adapter_config.json`));
    assert.equal(cfg.base_model_name_or_path, FIXTURE);
    using loaded = await loadLoraAdapter(`${dir}/adapter`, original);
    using direct = await recoverLora(plan, lora, await loadModel(FIXTURE, { device }));
    for (const module of direct.modules) {
      assert.deepEqual(await factorsOf(loaded, module), await factorsOf(direct, module), module);
    }
    direct.model.dispose();
  } finally {
    original.dispose();
    await Deno.remove(dir, { recursive: true });
  }
});
