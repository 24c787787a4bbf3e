/** QuantizedLinear and the LinearLike / Experts seams: packed forward vs the dequantized dense Linear, swapped experts. */
import assert from "node:assert/strict";
import { quantize } from "../../src/compressors/quant/quantize.ts";
import { loadModel } from "../../src/models/load.ts";
import { asDenseExperts, SwiGLUExperts } from "../../src/nn/experts.ts";
import { Linear } from "../../src/nn/linear.ts";
import { asDenseLinear } from "../../src/nn/linear_like.ts";
import type { Experts, ExpertsInput } from "../../src/nn/moe_types.ts";
import { QuantizedLinear } from "../../src/nn/quantized_linear.ts";
import { SparseMoE } from "../../src/nn/sparse_moe.ts";
import { SwiGLU } from "../../src/nn/swiglu.ts";
import { dequantize } from "../../src/ops/dequantize.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";

const [OUT, IN] = [19, 64]; // odd rows, one 64-group per row

testOnDevices(
  "QuantizedLinear equals Linear over the dequantized weight (1 row: qgemv, 5 rows: qmatmul)",
  async (dev) => {
    const w = Tensor.fromArray(dev, randn(OUT * IN, 1), [OUT, IN], { category: "weights" }); // [out, in]
    const bias = randn(OUT, 2);
    for (const bits of [2, 3, 4] as const) {
      const q = await quantize(w, { method: "hqq", bits, groupSize: 32 });
      using ql = new QuantizedLinear(q, Tensor.fromArray(dev, bias));
      using dense = new Linear(dequantize(q), Tensor.fromArray(dev, bias)); // [out, in]
      assert.deepEqual([ql.inFeatures, ql.outFeatures, ql.weightShape, ql.category], [
        IN,
        OUT,
        [OUT, IN],
        "weights",
      ]);
      for (const shape of [[1, IN], [5, IN], [2, 3, IN]]) {
        const n = shape.reduce((a, b) => a * b);
        using x = Tensor.fromArray(dev, randn(n, 3 + n), shape);
        using y = ql.forward(x);
        using e = dense.forward(x);
        assert.deepEqual(y.shape, e.shape);
        assertClose(await y.toArray(), await e.toArray(), {
          rtol: 1e-4,
          atol: 1e-4,
          what: `${bits}-bit [${shape}]`,
        });
      }
    }
    w.dispose();
  },
);

testOnDevices(
  "A QuantizedLinear stands in a SwiGLU; dense-only code names it (training through it: test/loram/qloram_test.ts)",
  async (dev) => {
    const [F, C] = [16, 32];
    const t = (seed: number, shape: number[]) =>
      Tensor.fromArray(dev, randn(shape[0] * shape[1], seed, 0.3), shape);
    const up = t(2, [F, C]);
    const q = await quantize(up, { method: "rtn", bits: 4, groupSize: 32 });
    using mlp = new SwiGLU(new Linear(t(1, [F, C])), new QuantizedLinear(q), new Linear(t(3, [C, F])));
    using ref = new SwiGLU(new Linear(t(1, [F, C])), new Linear(dequantize(q)), new Linear(t(3, [C, F])));
    up.dispose();
    using x = t(4, [3, C]);
    assertClose(await mlp.forward(x).toArray(), await ref.forward(x).toArray(), { rtol: 1e-4, atol: 1e-5 });
    assert.throws(
      () => asDenseLinear(mlp.upProj, "attach a LoRA adapter"),
      /Cannot attach a LoRA adapter: it needs a dense f32 Linear, received a QuantizedLinear \[16,32\]/,
    );
  },
);

testOnDevices("SparseMoE runs swapped experts with the layer index, routing and MoE input", async (dev) => {
  using model = await loadModel("test/fixtures/models/mixtral-top2-f32", { device: dev });
  const ids = Int32Array.of(3, 17, 42, 5, 8);
  const base = await model.forward(ids).logits.toArray() as Float32Array; // [T, V]
  const seen: { layer: number; T: number; K: number }[] = [];
  const swapped: Experts[] = [];
  for (const i of model.moeLayers) {
    const moe = model.layers[i].mlp as SparseMoE;
    const dense = asDenseExperts(moe.experts, "wrap");
    const spy: Experts = {
      numExperts: dense.numExperts,
      hidden: dense.hidden,
      intermediate: dense.intermediate,
      forward: (input: ExpertsInput) => {
        seen.push({ layer: input.layer, T: input.x.shape[0], K: input.selected.shape[1] });
        return dense.forward(input);
      },
      parameters: () => dense.parameters(),
      dispose: () => dense.dispose(),
    };
    swapped.push(moe.replaceExperts(spy));
  }
  const logits = await model.forward(ids).logits.toArray() as Float32Array;
  assert.deepEqual(logits, base, "same computation through the interface");
  assert.deepEqual(seen, model.moeLayers.map((layer) => ({ layer, T: 5, K: 2 })));
  const moe0 = model.layers[model.moeLayers[0]].mlp as SparseMoE;
  const wrong = new SwiGLUExperts(
    Tensor.zeros(dev, [3, 4, 5]),
    Tensor.zeros(dev, [3, 4, 5]),
    Tensor.zeros(dev, [3, 5, 4]),
  );
  assert.throws(
    () => moe0.replaceExperts(wrong),
    /Cannot replace the experts: expected 4 experts of hidden size 32: received 3 of 5/,
  );
  wrong.dispose();
  assert.ok(swapped.every((e) => e instanceof SwiGLUExperts));
});
