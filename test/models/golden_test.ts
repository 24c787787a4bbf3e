/**
 * Every model fixture against its golden outputs (float32 re-implementations of transformers'
 * forward passes, see test/fixtures/models/README.md), on the CPU reference and on WebGPU.
 */
import assert from "node:assert/strict";
import { loadModel } from "../../src/models/load.ts";
import { gatherRows } from "../../src/ops/gather.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, testOnDevices } from "../_helpers.ts";
import { assertLogitsClose, FIXTURES } from "./_fixtures.ts";

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

for (const { name, dir, golden } of FIXTURES) {
  testOnDevices(`loadModel(${name}) logits and router logits match the golden forward`, async (device) => {
    using model = await loadModel(dir, { device });
    const { logits, routerLogits, selected } = model.forward(golden.inputIds, { collectRouter: true });
    using _l = logits;
    assert.deepEqual(logits.shape, [golden.inputIds.length, model.config.vocabSize]);
    assertLogitsClose(await logits.toArray(), golden.logits, `${name} logits`);
    assert.deepEqual([...model.moeLayers], [...golden.routerLogits.keys()].sort((a, b) => a - b));
    for (const [j, layer] of model.moeLayers.entries()) {
      const want = golden.routerLogits.get(layer)!;
      assertClose(await routerLogits![j].toArray(), want, {
        rtol: 1e-4,
        atol: 1e-5,
        what: `${name} router ${layer}`,
      });
      // The selected experts are the top-K router logits (the fixtures keep a margin between K-th and K+1-th).
      const sel = await selected![j].toArray() as Int32Array;
      const { numExperts: E, topK: K } = model.config;
      for (let t = 0; t < golden.inputIds.length; t++) {
        const row = Array.from(want.subarray(t * E, (t + 1) * E));
        const top = row.map((v, e) => [v, e]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, K).map((
          p,
        ) => p[1]);
        assert.deepEqual([...sel.subarray(t * K, (t + 1) * K)], top, `${name} layer ${layer} token ${t}`);
      }
      routerLogits![j].dispose();
      selected![j].dispose();
    }
  });

  testOnDevices(
    `loadModel(${name}) greedy decoding through the cache matches the golden tokens`,
    async (device) => {
      using model = await loadModel(dir, { device });
      const n = golden.greedy.length;
      using cache = model.createCache(golden.inputIds.length + n);
      const tokens: number[] = [];
      let step = model.forward(golden.inputIds, { cache }).logits; // [T, V]
      for (let i = 0; i < n; i++) {
        const T = step.shape[0];
        using idx = Tensor.fromArray(device, Int32Array.of(T - 1));
        using last = gatherRows(step, idx); // [1, V]
        step.dispose();
        tokens.push(argmax(await last.toArray() as Float32Array));
        if (i < n - 1) step = model.forward(Int32Array.of(tokens[i]), { cache }).logits; // [1, V]
      }
      assert.deepEqual(tokens, [...golden.greedy]);
      assert.equal(cache.position, golden.inputIds.length + n - 1);
    },
  );
}
