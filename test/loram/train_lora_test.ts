import assert from "node:assert/strict";
import { createDevice } from "../../src/device/create_device.ts";
import { trainingCurveRows } from "../../src/loram/curves.ts";
import { parseLoramRunConfig } from "../../src/loram/run_config.ts";
import { trainLora } from "../../src/loram/train_lora.ts";
import { loadModel } from "../../src/models/load.ts";

const device = await createDevice({ backend: "cpu" });
const blocks = Array.from(
  { length: 6 },
  (_, s) => Int32Array.from({ length: 17 }, (_, i) => (s + 5 * i) % 120),
);

Deno.test("trainLora: an eval point every evalEvery steps; empty eval blocks mean no curve and no error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry-train-lora-" });
  try {
    using model = await loadModel("test/fixtures/models/llama-gqa-tied-f32", { device });
    const config = (evalEvery: number) =>
      parseLoramRunConfig({
        model: "m",
        out: "o",
        method: "rand",
        ratio: 0.5,
        train: { steps: 4, batch: 2, evalEvery },
      });
    const a = await trainLora(
      model,
      config(2),
      { train: blocks, evalBlocks: blocks.slice(0, 2) },
      `${dir}/a`,
      {
        progress: false,
      },
    );
    a.lora[Symbol.dispose]();
    assert.deepEqual((await trainingCurveRows("a", a.logPath)).map((r) => r.step), [0, 2, 4]); // step 0: before training
    assert.equal(a.stats.steps, 4);
    assert.equal(a.stats.tokens, 4 * 2 * 16);
    const b = await trainLora(model, config(0), { train: blocks, evalBlocks: [] }, `${dir}/b`, {
      progress: false,
    });
    b.lora[Symbol.dispose]();
    assert.deepEqual(await trainingCurveRows("b", b.logPath), []);
    // The adapter is off the model again: a second one attaches.
    const c = await trainLora(model, config(0), { train: blocks }, `${dir}/c`, { progress: false });
    assert.equal(c.stats.trainable_params, a.stats.trainable_params);
    c.lora[Symbol.dispose]();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
