/** Predictor metrics on hand-built cases, and the FloE predictor study against a host computation. */
import assert from "node:assert/strict";
import { floeCompress } from "../../src/floe/compress.ts";
import { evaluatePredictors } from "../../src/floe/predictor_study.ts";
import { loadModel } from "../../src/models/load.ts";
import { asDenseLinear } from "../../src/nn/linear_like.ts";
import type { SparseMoE } from "../../src/nn/sparse_moe.ts";
import { channelMetrics, expertMetrics } from "../../src/predictors/metrics.ts";
import { traceMoe } from "../../src/predictors/trace.ts";
import type { ExpertPredictor } from "../../src/predictors/expert_predictor.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { testOnDevices } from "../_helpers.ts";

Deno.test("expertMetrics: top-1, unordered top-k and reloads on hand-built cases", () => {
  // T = 3, k = 2: exact; same set swapped; one of two right
  const pred = Int32Array.of(4, 1, 2, 7, 0, 3);
  const truth = Int32Array.of(4, 1, 7, 2, 0, 5);
  const m = expertMetrics(pred, truth, 2);
  assert.deepEqual([m.tokens, m.top1, m.topk], [3, 2 / 3, 5 / 6]);
  assert.ok(Math.abs(m.reloadsPerToken - 1 / 3) < 1e-12, `reloads ${m.reloadsPerToken}`);
  assert.deepEqual(expertMetrics(Int32Array.of(1, 2), Int32Array.of(3, 4), 2), {
    tokens: 1,
    top1: 0,
    topk: 0,
    reloadsPerToken: 2,
  });
  assert.deepEqual(expertMetrics(Int32Array.of(5), Int32Array.of(5), 1), {
    tokens: 1,
    top1: 1,
    topk: 1,
    reloadsPerToken: 0,
  });
  assert.throws(
    () => expertMetrics(Int32Array.of(1, 2, 3), Int32Array.of(1, 2, 3), 2),
    /must both be \[T, 2\]/,
  );
});

Deno.test("channelMetrics: recall, precision and count ratio pooled over masks", () => {
  assert.deepEqual(channelMetrics([[0, 1, 2, 3]], [[0, 1, 2, 3]]), {
    recall: 1,
    precision: 1,
    countRatio: 1,
  });
  // 2 + 1 hits; 4 + 2 predicted; 3 + 3 true
  assert.deepEqual(channelMetrics([[0, 1, 8, 9], [5, 6]], [[0, 1, 2], [4, 5, 7]]), {
    recall: 0.5,
    precision: 0.5,
    countRatio: 1,
  });
  assert.deepEqual(channelMetrics([[3]], [[3, 4, 5, 6]]), { recall: 0.25, precision: 1, countRatio: 0.25 });
  assert.throws(() => channelMetrics([[1]], []), /1 predicted masks for 0 true ones/);
});

testOnDevices(
  "the predictor study's router reuse equals next-router top-k computed on the host",
  async (dev) => {
    using model = await floeCompress(
      await loadModel("test/fixtures/models/mixtral-top2-f32", { device: dev }),
      {
        upBits: 16,
        sparsity: 0.5,
        mode: "topk",
        denseLayers: [0],
      },
    );
    const ids = Int32Array.from({ length: 40 }, (_, i) => (i * 13 + 5) % 96);
    const [row] = await evaluatePredictors(model, [ids]);
    const trace = await traceMoe(model, ids);
    const w = await asDenseLinear((model.layers[1].mlp as SparseMoE).router, "test").weight
      .toArray() as Float32Array; // [E, C]
    const [E, C, K] = [4, 32, 2];
    let top1 = 0;
    let hits = 0;
    for (let t = 0; t < ids.length; t++) {
      const h = trace.get(0)!.x.subarray(t * C, (t + 1) * C);
      const s = Array.from({ length: E }, (_, e) => h.reduce((a, v, c) => a + v * w[e * C + c], 0));
      const pred = [0, 1, 2, 3].sort((a, b) => s[b] - s[a] || a - b).slice(0, K);
      const truth = Array.from(trace.get(1)!.selected.subarray(t * K, (t + 1) * K));
      if (pred[0] === truth[0]) top1++;
      hits += pred.filter((e) => truth.includes(e)).length;
    }
    assert.equal(row.layer, 1);
    assert.equal(row.predictor, "router-reuse");
    assert.ok(Math.abs(row.expert_top1 - top1 / 40) < 1e-12 && Math.abs(row.expert_topk - hits / 80) < 1e-12);
    assert.ok(Math.abs(row.reloads_per_token - (K - hits / 40)) < 1e-12);
    assert.ok(
      row.channel_recall > 0 && row.channel_recall <= 1 && Math.abs(row.channel_count_ratio - 1) < 1e-12,
      "top-k: equal counts",
    );

    // An oracle predictor that returns the true choice scores recall 1 on experts.
    const oracle: ExpertPredictor = {
      kind: "oracle",
      predict: (_target, h) => {
        const T = h.shape[0];
        const sel = trace.get(1)!.selected;
        return Tensor.fromArray(
          dev,
          Float32Array.from({ length: T * E }, (_, i) => {
            const [t, e] = [Math.floor(i / E), i % E];
            const k = Array.from(sel.subarray(t * K, (t + 1) * K)).indexOf(e);
            return k < 0 ? 0 : K - k;
          }),
          [T, E],
        ) as Tensor<"f32">;
      },
    };
    const [o] = await evaluatePredictors(model, [ids], { expertPredictor: () => oracle });
    assert.deepEqual([o.predictor, o.expert_top1, o.expert_topk, o.reloads_per_token], ["oracle", 1, 1, 0]);
  },
);
