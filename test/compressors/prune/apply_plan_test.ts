/**
 * `applyPlan`: the physically pruned model computes what the unpruned model computes with the
 * pruned rows/columns/heads zeroed (an oracle built here, independently of `maskWithPlan`); it runs
 * through the KV cache, saves and loads, trains, and refuses what it cannot prune.
 */
import assert from "node:assert/strict";
import { Tape } from "../../../src/autograd/tape.ts";
import { TrainContext } from "../../../src/autograd/train_context.ts";
import { applyPlan, maskWithPlan } from "../../../src/compressors/prune/apply_plan.ts";
import {
  createPruningPlan,
  planDimsOf,
  type PruningPlan,
} from "../../../src/compressors/prune/pruning_plan.ts";
import { randomPlan } from "../../../src/compressors/prune/structured.ts";
import type { Device } from "../../../src/device/device.ts";
import { applyLora } from "../../../src/lora/lora_model.ts";
import { CausalLM } from "../../../src/models/causal_lm.ts";
import { loadModel } from "../../../src/models/load.ts";
import { writeRandomCheckpoint } from "../../../src/models/random.ts";
import { saveModel } from "../../../src/models/save.ts";
import { Tensor } from "../../../src/tensor/tensor.ts";
import { assertClose, testOnDevices } from "../../_helpers.ts";

const IDS = Int32Array.of(3, 17, 5, 40, 11, 2, 29);

/** Random small dense models: GQA untied, GQA with every bias and tied embeddings, Qwen2 MHA. */
const CONFIGS: Record<string, Record<string, unknown>> = {
  "llama-gqa": {
    model_type: "llama",
    vocab_size: 48,
    hidden_size: 16,
    intermediate_size: 22,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 2,
  },
  "llama-bias-tied": {
    model_type: "llama",
    vocab_size: 48,
    hidden_size: 16,
    intermediate_size: 13,
    num_hidden_layers: 4,
    num_attention_heads: 6,
    num_key_value_heads: 3,
    head_dim: 2,
    attention_bias: true,
    mlp_bias: true,
    tie_word_embeddings: true,
  },
  "qwen2-mha": {
    model_type: "qwen2",
    vocab_size: 48,
    hidden_size: 16,
    intermediate_size: 20,
    num_hidden_layers: 4,
    num_attention_heads: 4,
    num_key_value_heads: 4,
  },
};

async function randomModel(device: Device, name: string): Promise<CausalLM> {
  const dir = await Deno.makeTempDir();
  // std 0.3 (not HF's 0.02) so that every layer moves the logits visibly.
  await writeRandomCheckpoint(dir, CONFIGS[name], { seed: 11, std: 0.3 });
  const model = await loadModel(dir, { device });
  await Deno.remove(dir, { recursive: true });
  return model;
}

/**
 * The masked oracle: a copy of `model` with the pruned structures zeroed, from index arithmetic
 * written out here (query head `q` belongs to KV head `⌊q / g⌋`; row `r` of a projection to head `⌊r / D⌋`).
 */
async function maskedOracle(model: CausalLM, plan: PruningPlan): Promise<CausalLM> {
  const { heads: H, kvHeads: Hkv, headDim: D } = model.config;
  const g = H / Hkv;
  const params = new Map<string, Tensor>();
  for (const [name, t] of model.parameters()) {
    const data = Float32Array.from(await t.toArray() as Float32Array);
    const m = /^model\.layers\.(\d+)\.(self_attn|mlp)\.(\w+)\.(weight|bias)$/.exec(name);
    const layer = m && plan.layers.find((l) => l.index === Number(m[1]));
    if (layer) {
      const cols = t.shape.length === 2 ? t.shape[1] : 1;
      const kvKept = (r: number) => layer.kvHeadKeep.includes(Math.floor(r / D));
      const qKept = (r: number) => layer.kvHeadKeep.includes(Math.floor(Math.floor(r / D) / g));
      const chKept = (c: number) => layer.mlpKeep.includes(c);
      const proj = m![3];
      const byRow: Record<string, (r: number) => boolean> = {
        q_proj: qKept,
        k_proj: kvKept,
        v_proj: kvKept,
        gate_proj: chKept,
        up_proj: chKept,
      };
      const byCol: Record<string, (c: number) => boolean> = { o_proj: qKept, down_proj: chKept };
      for (let i = 0; i < data.length; i++) {
        const row = Math.floor(i / cols);
        if (byRow[proj] && !byRow[proj](row)) data[i] = 0;
        if (m![4] === "weight" && byCol[proj] && !byCol[proj](i % cols)) data[i] = 0;
      }
    }
    params.set(name, Tensor.fromArray(model.device, data, t.shape, { category: "weights" }));
  }
  return CausalLM.fromParameters(model.config, params, model.hfConfig);
}

async function logitsOf(model: CausalLM, ids = IDS): Promise<Float32Array> {
  using logits = model.forward(ids).logits; // [T, V]
  return await logits.toArray() as Float32Array;
}

const maxAbs = (a: Float32Array) => a.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

for (const name of Object.keys(CONFIGS)) {
  testOnDevices(`applyPlan on ${name} gives the logits of the masked unpruned model`, async (device) => {
    using model = await randomModel(device, name);
    const L = model.config.layers;
    const plan = randomPlan(planDimsOf(model.config), { ratio: 0.5, layers: [1, L - 1], seed: 3 });
    using pruned = await applyPlan(model, plan);
    using oracle = await maskedOracle(model, plan);
    using masked = await maskWithPlan(model, plan);
    const full = await logitsOf(model);
    const want = await logitsOf(oracle);
    const got = await logitsOf(pruned);
    // The zeroed terms are exact zeros, so only the summation order differs (fewer terms, other
    // tiling): f32 rounding of sums of ≤ 32 products, far below 1e-5 of the logits' scale.
    const tol = { rtol: 1e-5, atol: 1e-5 * maxAbs(want) };
    assertClose(got, want, { ...tol, what: `${name} pruned vs masked` });
    assertClose(await logitsOf(masked), want, { ...tol, what: `${name} maskWithPlan vs oracle` });
    let diff = 0;
    for (let i = 0; i < full.length; i++) diff = Math.max(diff, Math.abs(full[i] - got[i]));
    assert.ok(diff > 1e-3 * maxAbs(full), `${name}: pruning did not change the logits (max diff ${diff})`);

    // Physically smaller, with exactly the analytic count (ALGORITHMS B.7, plus biases).
    const { hidden: C, headDim: D, heads: H, kvHeads: Hkv, intermediate: F } = model.config;
    const sizes = pruned.config.layerSizes!;
    assert.equal(sizes.length, L);
    const ab = model.config.attentionBias ? 1 : 0;
    const mb = model.config.mlpBias ? 1 : 0;
    const ob = model.config.oProjBias ? 1 : 0;
    const layerCount = (f: number, h: number, kv: number) =>
      C * h * D * 2 + C * kv * D * 2 + 3 * C * f + 2 * C + ab * (h + 2 * kv) * D + ob * C + mb * (2 * f + C);
    let want2 = model.numParameters().total - L * layerCount(F, H, Hkv);
    for (let i = 0; i < L; i++) want2 += layerCount(sizes[i].intermediate, sizes[i].heads, sizes[i].kvHeads);
    assert.equal(pruned.numParameters().total, want2);
    for (const l of plan.layers) {
      assert.deepEqual(sizes[l.index], {
        intermediate: F - Math.ceil(0.5 * F),
        heads: sizes[l.index].kvHeads * (H / Hkv),
        kvHeads: H === Hkv ? Math.floor(H * 0.5) : Hkv - Math.floor(0.5 * Hkv),
      });
    }
    assert.deepEqual(sizes[0], { intermediate: F, heads: H, kvHeads: Hkv }, "layer 0 is not in the range");
  });
}

testOnDevices(
  "a pruned model decodes through its per-layer KV cache, saves, loads and trains",
  async (device) => {
    using model = await randomModel(device, "llama-gqa");
    const plan = randomPlan(planDimsOf(model.config), { ratio: 0.5, layers: [1, 3], seed: 1 });
    using pruned = await applyPlan(model, plan);
    const full = await logitsOf(pruned); // [T, V]
    using cache = pruned.createCache(IDS.length);
    assert.deepEqual(cache.kvHeadsPerLayer, [2, 1, 1, 2]);
    const steps: Float32Array[] = [];
    using pre = pruned.forward(IDS.subarray(0, 4), { cache }).logits; // prefill [4, V]
    steps.push(await pre.toArray() as Float32Array);
    for (let t = 4; t < IDS.length; t++) {
      using step = pruned.forward(IDS.subarray(t, t + 1), { cache }).logits; // decode [1, V]
      steps.push(await step.toArray() as Float32Array);
    }
    const cached = new Float32Array(full.length);
    let off = 0;
    for (const s of steps) cached.set(s, off), off += s.length;
    // Cached decoding reorders nothing but the attention's key blocks: f32 noise only.
    assertClose(cached, full, { rtol: 1e-5, atol: 1e-5 * maxAbs(full), what: "cached vs full" });
    using unprunedCache = model.createCache(4);
    assert.throws(
      () => pruned.forward(IDS.subarray(0, 1), { cache: unprunedCache }),
      /the cache does not fit/,
    );

    const dir = await Deno.makeTempDir();
    try {
      await saveModel(pruned, dir);
      const saved = JSON.parse(await Deno.readTextFile(`${dir}/config.json`));
      assert.deepEqual(saved.ferry_pruning, {
        intermediate_sizes: [22, 11, 11, 22],
        num_key_value_heads: [2, 1, 1, 2],
      });
      assert.equal(saved.intermediate_size, 22, "the original fields stay");
      using again = await loadModel(dir, { device });
      assert.deepEqual(again.config.layerSizes, pruned.config.layerSizes);
      assertClose(await logitsOf(again), full, { rtol: 0, atol: 0, what: "reloaded" });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }

    // Training: gradients reach the pruned layer's smaller weights, and LoRA fits their shapes.
    const down = pruned.layers[1].mlp.parameters().get("down_proj.weight")!;
    using tape = new Tape();
    const ctx = new TrainContext(tape, new Set([down]));
    const { loss } = await pruned.lossTrain(ctx, IDS);
    tape.backward(loss);
    assert.deepEqual(ctx.grad(down)!.shape, [16, 11]);
    const lora = applyLora(pruned, { r: 2, loraAlpha: 4, targetModules: ["down_proj", "k_proj"] });
    const params = lora.trainableParameters();
    assert.deepEqual(params.get("model.layers.1.mlp.down_proj.lora_A.weight")!.shape, [2, 11]);
    assert.deepEqual(params.get("model.layers.2.self_attn.k_proj.lora_B.weight")!.shape, [4, 2]);
    assert.deepEqual(params.get("model.layers.0.self_attn.k_proj.lora_B.weight")!.shape, [8, 2]);
    lora.dispose();
  },
);

testOnDevices("applyPlan refuses MoE models, foreign plans, adapters and pruned layers", async (device) => {
  using moe = await loadModel(
    new URL("../../fixtures/models/mixtral-top2-f32", import.meta.url).pathname,
    { device },
  );
  const dims4 = { layers: 4, hidden: 16, intermediate: 22, heads: 4, kvHeads: 2, headDim: 4 };
  const plan = createPruningPlan({
    method: "manual",
    ratio: 0.5,
    dims: dims4,
    layers: [{ index: 1, mlpKeep: [0, 5, 21], kvHeadKeep: [1] }],
  });
  await assert.rejects(
    applyPlan(moe, plan),
    /only dense Llama-family models.*MoE expert channels are not pruned/,
  );
  using model = await randomModel(device, "llama-gqa");
  const other = createPruningPlan({ ...plan, dims: { ...dims4, layers: 6 } });
  await assert.rejects(applyPlan(model, other), /the plan is for a different model: layers 6 \(model: 4\)/);
  const wide = createPruningPlan({ ...plan, dims: { ...dims4, intermediate: 24 } });
  await assert.rejects(applyPlan(model, wide), /intermediate 24 \(model: 22\)/);
  using pruned = await applyPlan(model, plan);
  await assert.rejects(applyPlan(pruned, plan), /layer 1 is already pruned \(3 channels, 1 KV heads\)/);
  const lora = applyLora(model, { r: 2, targetModules: ["q_proj"] });
  await assert.rejects(applyPlan(model, plan), /self_attn\.q_proj carries a LoRA adapter; merge/);
  lora.dispose();
});
