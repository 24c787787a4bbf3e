/**
 * calibrateThresholds against a brute-force computation (MoE inputs captured at the router's input,
 * routing from collectRouter, |W_up h| in float64 with W_up the exact or HQQ-dequantized weight, a
 * full sort, the k-th smallest), the thresholds file round trip, and achieved sparsity.
 */
import assert from "node:assert/strict";
import type { Device } from "../../src/device/device.ts";
import { calibrateThresholds, measureSparsity, quantileRank } from "../../src/floe/calibrate.ts";
import { floeCompress } from "../../src/floe/compress.ts";
import { FloeExperts } from "../../src/floe/floe_experts.ts";
import { FloeThresholds } from "../../src/floe/thresholds.ts";
import type { CausalLM } from "../../src/models/causal_lm.ts";
import { loadModel } from "../../src/models/load.ts";
import { asDenseExperts, SwiGLUExperts } from "../../src/nn/experts.ts";
import { asDenseLinear } from "../../src/nn/linear_like.ts";
import { QuantizedLinear } from "../../src/nn/quantized_linear.ts";
import type { SparseMoE } from "../../src/nn/sparse_moe.ts";
import { dequantize } from "../../src/ops/dequantize.ts";
import { assertClose, testOnDevices } from "../_helpers.ts";

const DIR = "test/fixtures/models/mixtral-top2-f32";
const SEQS = [
  Int32Array.of(3, 17, 42, 5, 8, 11, 2, 60, 33),
  Int32Array.of(9, 1, 4, 77, 50, 21, 6),
  Int32Array.of(14, 15, 92, 65),
];

/** Per layer, per expert: the `[F, C]` up weight the model's experts use, as host f32. */
async function upWeights(model: CausalLM): Promise<Map<number, Float32Array[]>> {
  const out = new Map<number, Float32Array[]>();
  for (const l of model.moeLayers) {
    const ex = (model.layers[l].mlp as SparseMoE).experts;
    if (ex instanceof SwiGLUExperts) {
      const [E, F, C] = ex.upProj.shape;
      const all = await ex.upProj.toArray() as Float32Array;
      out.set(l, Array.from({ length: E }, (_, e) => all.slice(e * F * C, (e + 1) * F * C)));
    } else {
      const ups = (ex as FloeExperts).up;
      out.set(
        l,
        await Promise.all(
          ups.map(async (u) => await dequantize((u as QuantizedLinear).weight).toArray() as Float32Array),
        ),
      );
    }
  }
  return out;
}

/** The brute force: every (token, channel) |up·h| of routed tokens, sorted, k-th smallest, averaged over rounds. */
async function bruteForce(
  model: CausalLM,
  seqs: Int32Array[],
  s: number,
  rounds: number,
): Promise<Float32Array> {
  const { layers: L, numExperts: E, hidden: C } = model.config;
  const ups = await upWeights(model);
  const sum = new Float64Array(L * E);
  const count = new Float64Array(L * E);
  const per = Math.ceil(seqs.length / rounds);
  for (let r = 0; r < rounds; r++) {
    const pools = new Map<string, number[]>();
    for (const ids of seqs.slice(r * per, (r + 1) * per)) {
      const inputs = new Map<number, Float32Array>();
      for (const l of model.moeLayers) {
        const router = asDenseLinear((model.layers[l].mlp as SparseMoE).router, "test");
        router.inputHook = (x) => void x.toArray().then((a) => inputs.set(l, a as Float32Array));
      }
      const out = model.forward(ids, { collectRouter: true });
      await out.logits.toArray();
      for (const l of model.moeLayers) {
        asDenseLinear((model.layers[l].mlp as SparseMoE).router, "test").inputHook = undefined;
      }
      for (const [j, l] of model.moeLayers.entries()) {
        const sel = await out.selected![j].toArray() as Int32Array;
        const K = out.selected![j].shape[1];
        const h = inputs.get(l)!;
        for (let e = 0; e < E; e++) {
          const w = ups.get(l)![e];
          const F = w.length / C;
          const pool = pools.get(`${l}:${e}`) ?? [];
          for (let t = 0; t < ids.length; t++) {
            if (!sel.subarray(t * K, t * K + K).includes(e)) continue;
            for (let f = 0; f < F; f++) {
              let d = 0;
              for (let c = 0; c < C; c++) d += w[f * C + c] * h[t * C + c];
              pool.push(Math.abs(d));
            }
          }
          pools.set(`${l}:${e}`, pool);
        }
      }
    }
    for (const [key, pool] of pools) {
      if (pool.length === 0) continue;
      const [l, e] = key.split(":").map(Number);
      pool.sort((a, b) => a - b);
      const k = Math.floor(pool.length * s + 1e-9);
      sum[l * E + e] += k === 0 ? 0 : pool[k - 1];
      count[l * E + e]++;
    }
  }
  return Float32Array.from(sum, (v, i) => (count[i] ? v / count[i] : 0));
}

const load = (dev: Device) => loadModel(DIR, { device: dev });

testOnDevices(
  "calibrateThresholds equals the brute force (exact up, dense model; 2-bit FloE model; rounds)",
  async (dev) => {
    using dense = await load(dev);
    for (const [s, rounds] of [[0.5, 1], [0.8, 3], [0.9, 2]] as const) {
      const t = await calibrateThresholds(dense, SEQS, { sparsity: s, rounds });
      assertClose(t.values, await bruteForce(dense, SEQS, s, rounds), {
        rtol: 1e-4,
        atol: 1e-6,
        what: `dense s ${s}`,
      });
      assert.ok(t.values.every((v) => v > 0));
    }
    using floe = await floeCompress(await load(dev), {
      upBits: 2,
      groupSize: 16,
      sparsity: 0.9,
      mode: "topk",
      denseLayers: [],
    });
    const t = await calibrateThresholds(floe, SEQS, { sparsity: 0.7, rounds: 1 });
    assert.deepEqual([t.settings.upBits, t.settings.groupSize, t.settings.tokens], [2, 16, 20]);
    for (const l of floe.moeLayers) {
      ((floe.layers[l].mlp as SparseMoE).experts as FloeExperts).configure({
        mode: "topk",
        sparsity: 0,
      });
    }
    assertClose(t.values, await bruteForce(floe, SEQS, 0.7, 1), { rtol: 1e-4, atol: 1e-6, what: "2-bit up" });
    assert.equal(((floe.layers[1].mlp as SparseMoE).experts as FloeExperts).selection.mode, "topk");
  },
);

Deno.test("quantileRank is ⌊n·s⌋ without binary noise; an expert with no token gets 0", async () => {
  assert.deepEqual([
    quantileRank(10, 0.7),
    quantileRank(480, 0.9),
    quantileRank(48, 0.5),
    quantileRank(7, 0.3),
  ], [7, 432, 24, 2]);
  const { createDevice } = await import("../../src/device/create_device.ts");
  using model = await loadModel(DIR, { device: await createDevice({ backend: "cpu" }) });
  const t = await calibrateThresholds(model, [Int32Array.of(5)], { sparsity: 0.5 }); // one token: 2 of 4 experts per layer
  for (let l = 0; l < 2; l++) assert.equal(Array.from(t.at(l)).filter((v) => v === 0).length, 2);
  await assert.rejects(
    calibrateThresholds(model, [Int32Array.of(5)], { sparsity: 1 }),
    /sparsity must be in \[0, 1\): received 1/,
  );
  await assert.rejects(
    calibrateThresholds(model, [Int32Array.of(5)], { sparsity: 0.5, rounds: 2 }),
    /received 1 sequences for 2 rounds/,
  );
});

testOnDevices(
  "thresholds round trip through safetensors; threshold mode reaches about the target sparsity",
  async (dev) => {
    using model = await load(dev);
    const cal = [Int32Array.from({ length: 64 }, (_, i) => (i * 37 + 11) % 96)];
    const t = await calibrateThresholds(model, cal, { sparsity: 0.8 });
    const dir = await Deno.makeTempDir();
    try {
      await t.save(`${dir}/t.safetensors`);
      const back = await FloeThresholds.load(`${dir}/t.safetensors`, model);
      assert.deepEqual([back.values, back.settings, back.fingerprint], [t.values, t.settings, t.fingerprint]);
      using other = await loadModel("test/fixtures/models/olmoe-f32", { device: dev }); // also [2 layers, 4 experts]
      await assert.rejects(FloeThresholds.load(`${dir}/t.safetensors`, other), /calibrated on another model/);
      await new FloeThresholds(new Float32Array(12), 3, 4, t.settings, t.fingerprint).save(
        `${dir}/x.safetensors`,
      );
      await assert.rejects(
        FloeThresholds.load(`${dir}/x.safetensors`, model),
        /thresholds are \[3, 4\] but the model has 2 layers of 4 experts/,
      );
      const floe = await floeCompress(model, {
        upBits: 16,
        sparsity: 0.8,
        mode: "threshold",
        thresholds: back,
        denseLayers: [],
      });
      const rows = await measureSparsity(floe, cal);
      assert.equal(rows.length, 8);
      const kept = rows.reduce((a, r) => a + r.kept_fraction * r.tokens, 0) /
        rows.reduce((a, r) => a + r.tokens, 0);
      assert.ok(Math.abs(kept - 0.2) < 0.01, `calibration set: kept ${kept}, target 0.2`);
      assert.ok(rows.every((r) => r.target_kept === 1 - 0.8 && r.tokens > 0));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

testOnDevices(
  "calibrateChannelThresholds equals a brute force; channel thresholds run in FloE layers",
  async (dev) => {
    const { calibrateChannelThresholds } = await import("../../src/floe/calibrate_channel.ts");
    using dense = await load(dev);
    const s = 0.7;
    const t = await calibrateChannelThresholds(dense, SEQS, { sparsity: s, rounds: 1 });
    const [E, C] = [4, 32];
    for (const l of dense.moeLayers) {
      const ex = asDenseExperts((dense.layers[l].mlp as SparseMoE).experts, "test");
      const F = ex.intermediate;
      const up = await ex.upProj.toArray() as Float32Array;
      const gate = await ex.gateProj.toArray() as Float32Array;
      const h: Float32Array[] = [];
      const sel: Int32Array[] = [];
      for (const ids of SEQS) {
        const router = asDenseLinear((dense.layers[l].mlp as SparseMoE).router, "test");
        let x: Promise<unknown> = Promise.resolve();
        router.inputHook = (v) => void (x = v.toArray());
        const out = dense.forward(ids, { collectRouter: true });
        await out.logits.toArray();
        router.inputHook = undefined;
        h.push(await x as Float32Array);
        sel.push(await out.selected![dense.moeLayers.indexOf(l)].toArray() as Int32Array);
      }
      for (let e = 0; e < E; e++) {
        const vs: number[][] = [];
        const g2 = new Float64Array(F);
        h.forEach((hx, q) => {
          for (let tok = 0; tok < hx.length / C; tok++) {
            if (!sel[q].subarray(tok * 2, tok * 2 + 2).includes(e)) continue;
            const row: number[] = [];
            for (let f = 0; f < F; f++) {
              let u = 0;
              let g = 0;
              for (let c = 0; c < C; c++) {
                u += up[(e * F + f) * C + c] * hx[tok * C + c];
                g += gate[(e * F + f) * C + c] * hx[tok * C + c];
              }
              row.push(u);
              g2[f] += (g / (1 + Math.exp(-g))) ** 2;
            }
            vs.push(row);
          }
        });
        const N = vs.length;
        if (N === 0) {
          assert.ok(t.at(l, e).every((v) => v === 0));
          continue;
        }
        for (let f = 0; f < F; f++) g2[f] /= N;
        const imp = vs.flatMap((row) => row.map((u, f) => u * u * g2[f])).sort((a, b) => a - b);
        const T = imp[Math.floor(N * F * s + 1e-9) - 1];
        assertClose(t.at(l, e), Array.from(g2, (g) => Math.sqrt(T / g)), {
          rtol: 2e-4,
          atol: 1e-6,
          what: `layer ${l} expert ${e}`,
        });
      }
    }
    // Channel thresholds equal to the scalar ones compute the scalar threshold model.
    const scalar = await calibrateThresholds(dense, SEQS, { sparsity: s });
    using floe = await floeCompress(await load(dev), {
      upBits: 16,
      sparsity: s,
      mode: "threshold",
      thresholds: scalar,
      denseLayers: [],
    });
    const want = await floe.forward(SEQS[0]).logits.toArray() as Float32Array;
    for (const l of floe.moeLayers) {
      const ex = (floe.layers[l].mlp as SparseMoE).experts as FloeExperts;
      const F = ex.intermediate;
      ex.configure({
        mode: "threshold",
        sparsity: s,
        channelThresholds: Array.from(scalar.at(l), (v) => new Float32Array(F).fill(v)),
      });
    }
    assertClose(await floe.forward(SEQS[0]).logits.toArray(), want, { rtol: 1e-5, atol: 1e-5 });
    for (const l of floe.moeLayers) {
      ((floe.layers[l].mlp as SparseMoE).experts as FloeExperts).configure({
        mode: "threshold",
        sparsity: s,
        channelThresholds: t.layer(l),
      });
    }
    const rows = await measureSparsity(floe, SEQS);
    const kept = rows.reduce((a, r) => a + (r.tokens ? r.kept_fraction * r.tokens : 0), 0) /
      rows.reduce((a, r) => a + r.tokens, 0);
    assert.ok(Math.abs(kept - (1 - s)) < 0.05, `channel-wise kept ${kept}, target ${1 - s}`);
    assert.throws(() =>
      ((floe.layers[1].mlp as SparseMoE).experts as FloeExperts).configure({
        mode: "threshold",
        sparsity: s,
        channelThresholds: [new Float32Array(3)],
      }), /channel thresholds must be 4 arrays/);
  },
);
