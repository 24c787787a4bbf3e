/** The mask-signal study: its "up" signal is FloE top-k (two independent computations agree). */
import assert from "node:assert/strict";
import { createDevice } from "../../src/device/create_device.ts";
import { floeCompress } from "../../src/floe/compress.ts";
import { useMaskSignal } from "../../src/floe/mask_study.ts";
import { loadModel } from "../../src/models/load.ts";
import { assertClose } from "../_helpers.ts";

const DIR = "test/fixtures/models/qwen2-moe-f32"; // shared expert included
const ids = [3, 17, 42, 5, 8, 11, 2, 60];

Deno.test("mask by |up| on the host equals FloE top-k with exact up; other signals differ", async () => {
  const device = await createDevice({ backend: "cpu" });
  for (const s of [0.5, 0.75]) {
    using floe = await floeCompress(await loadModel(DIR, { device }), {
      upBits: 16,
      sparsity: s,
      mode: "topk",
      denseLayers: [],
    });
    const want = await floe.forward(ids).logits.toArray() as Float32Array;
    using model = await loadModel(DIR, { device });
    const restore = await useMaskSignal(model, "up", s, []);
    assertClose(await model.forward(ids).logits.toArray(), want, { rtol: 1e-4, atol: 1e-4, what: `s ${s}` });
    restore();
    for (const signal of ["gate", "down-input"] as const) {
      const back = await useMaskSignal(model, signal, s, []);
      const got = await model.forward(ids).logits.toArray() as Float32Array;
      back();
      const diff = got.reduce((m, v, i) => Math.max(m, Math.abs(v - want[i])), 0);
      assert.ok(diff > 1e-6, `${signal} picks other channels: max logit difference ${diff}`);
    }
  }
});
