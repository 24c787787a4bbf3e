/**
 * A batch of equal-length blocks trains as one packed forward: its loss is the token-weighted mean
 * of the blocks' own losses and its gradients their sum's, on every device, for a dense GQA model
 * and a MoE model (aux loss off: a packed batch pools the router over all its tokens, as HF does).
 */
import assert from "node:assert/strict";
import { add, scale, Tape, TrainContext } from "../../src/autograd/mod.ts";
import { loadModel } from "../../src/models/load.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, testOnDevices } from "../_helpers.ts";

const BLOCKS = [
  Int32Array.of(3, 17, 5, 40, 11, 2, 29),
  Int32Array.of(8, 1, 30, 30, 12, 7, 4),
  Int32Array.of(9, 9, 2, 6, 51, 3, 22),
];

for (const fixture of ["llama-gqa-tied-f32", "mixtral-top2-f32"]) {
  testOnDevices(`packed lossTrain on ${fixture} equals one forward per block`, async (device) => {
    using model = await loadModel(`test/fixtures/models/${fixture}`, { device });
    const params = [...model.parameters().values()];
    const run = async (packed: boolean) => {
      using tape = new Tape();
      const ctx = new TrainContext(tape, new Set(params), { training: false });
      let loss;
      let tokens = 0;
      if (packed) {
        ({ loss, tokens } = await model.lossTrain(ctx, BLOCKS, { routerAuxLossCoef: 0 }));
      } else {
        const parts = [];
        for (const b of BLOCKS) parts.push(await model.lossTrain(ctx, b, { routerAuxLossCoef: 0 }));
        tokens = parts.reduce((n, p) => n + p.tokens, 0);
        loss = parts.map((p) => scale(p.loss, p.tokens / 18)).reduce((a, b) => add(a, b));
      }
      tape.backward(loss);
      const grads = [];
      for (const p of params) grads.push(await ctx.grad(p)!.toArray() as Float32Array);
      return { loss: (await loss.value.toArray())[0], tokens, grads };
    };
    const packed = await run(true);
    const each = await run(false);
    assert.equal(packed.tokens, 18);
    assert.equal(each.tokens, 18);
    assert.ok(Math.abs(packed.loss - each.loss) < 1e-5, `loss ${packed.loss} vs ${each.loss}`);
    packed.grads.forEach((g, i) =>
      assertClose(g, each.grads[i], { rtol: 1e-3, atol: 1e-6, what: `grad ${i}` })
    );
  });
}

testOnDevices("packed lossTrain refuses blocks of different lengths and an empty batch", async (device) => {
  using model = await loadModel("test/fixtures/models/llama-gqa-tied-f32", { device });
  using tape = new Tape();
  const ctx = new TrainContext(tape, new Set());
  await assert.rejects(
    () => model.lossTrain(ctx, [Int32Array.of(1, 2, 3), Int32Array.of(1, 2)]),
    /a batch's blocks must have one length: received 3,2; pass blocks of different lengths one call each/,
  );
  await assert.rejects(() => model.lossTrain(ctx, []), /the batch is empty/);
  const x = tape.constant(Tensor.zeros(device, [12, model.config.hidden])); // [T=12, C]
  assert.throws(
    () => model.layers[0].attention.forwardTrain(x, ctx, 7),
    /Cannot run Attention.forwardTrain: segment 7 must be a positive divisor of the 12 rows/,
  );
});
