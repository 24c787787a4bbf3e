/** Learned expert predictors: the linear one starts as router reuse; training lowers the SmoothL1 loss and beats chance. */
import assert from "node:assert/strict";
import { floeCompress } from "../../src/floe/compress.ts";
import { evaluatePredictors } from "../../src/floe/predictor_study.ts";
import { predictorExamples, trainExpertPredictor } from "../../src/floe/train_predictor.ts";
import { loadModel } from "../../src/models/load.ts";
import { asDenseLinear } from "../../src/nn/linear_like.ts";
import type { SparseMoE } from "../../src/nn/sparse_moe.ts";
import { LinearExpertPredictor, MlpExpertPredictor } from "../../src/predictors/learned.ts";
import { traceMoe } from "../../src/predictors/trace.ts";
import { testOnDevices } from "../_helpers.ts";

testOnDevices(
  "learned expert predictors: linear from the router equals reuse; training lowers the loss",
  async (dev) => {
    using model = await floeCompress(
      await loadModel("test/fixtures/models/mixtral-top2-f32", { device: dev }),
      {
        upBits: 16,
        sparsity: 0.5,
        mode: "topk",
      },
    );
    const seqs = [0, 1, 2, 3].map((s) =>
      Int32Array.from({ length: 48 }, (_, i) => (i * (7 + 2 * s) + s) % 96)
    );
    const traces = await Promise.all(seqs.map((ids) => traceMoe(model, ids)));
    const examples = predictorExamples(traces, 1, 4);
    assert.equal(examples.length, 4 * 48);
    assert.ok(examples.every((x) => x.label.reduce((a, b) => a + b) === 2));
    const router = asDenseLinear((model.layers[1].mlp as SparseMoE).router, "test");
    using linear = await LinearExpertPredictor.fromRouter(router);
    const [reuse] = await evaluatePredictors(model, seqs);
    const [start] = await evaluatePredictors(model, seqs, { expertPredictor: () => linear });
    assert.deepEqual([start.predictor, start.expert_topk, start.expert_top1], [
      "learned-linear",
      reuse.expert_topk,
      reuse.expert_top1,
    ]);

    const runDir = await Deno.makeTempDir();
    try {
      using mlp = new MlpExpertPredictor(dev, { features: 32, experts: 4, hidden: 64, seed: 3 });
      for (const p of [linear, mlp]) {
        const r = await trainExpertPredictor(p, examples, {
          steps: 60,
          batch: 64,
          lr: 3e-3,
          runDir: `${runDir}/${p.kind}`,
        });
        const losses = r.log.toJSON().map((row) => Number(row.loss));
        assert.ok(losses.at(-1)! < losses[0], `${p.kind}: loss ${losses[0]} -> ${losses.at(-1)}`);
      }
      const [trained] = await evaluatePredictors(model, seqs, { expertPredictor: () => mlp });
      assert.ok(
        trained.expert_topk > 0.5,
        `MLP top-2 accuracy on its training traces ${trained.expert_topk} (chance 0.5)`,
      );
    } finally {
      await Deno.remove(runDir, { recursive: true });
    }
    assert.throws(() => predictorExamples(traces, 5, 4), /needs 4 and 5/);
  },
);

Deno.test("predictorTable: one row per predictor kind and predicted layer", async () => {
  const { createDevice } = await import("../../src/device/create_device.ts");
  const { predictorTable } = await import("../../src/floe/predictor_study.ts");
  const device = await createDevice({ backend: "cpu" });
  using model = await floeCompress(await loadModel("test/fixtures/models/mixtral-top2-f32", { device }), {
    upBits: 16,
    sparsity: 0.5,
    mode: "topk",
  });
  const seqs = [0, 1].map((s) => Int32Array.from({ length: 24 }, (_, i) => (i * 5 + s) % 96));
  const rows = (await predictorTable(model, { train: seqs, evaluation: seqs, steps: 3, hidden: 16 }))
    .toJSON();
  assert.deepEqual(rows.map((r) => [r.predictor, r.layer]), [["router-reuse", 1], ["learned-linear", 1], [
    "learned-mlp",
    1,
  ]]);
  assert.ok(rows.every((r) => Number(r.channel_recall) > 0 && Number(r.tokens) === 48));
});
