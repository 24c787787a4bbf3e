/**
 * LoRAM-Stru's first-order plan: the importance is |W·G| with G the gradient of the summed
 * calibration loss (checked against central finite differences), and structures whose weights are
 * zero (importance 0) are the ones pruned.
 */
import assert from "node:assert/strict";
import { Tape } from "../../src/autograd/tape.ts";
import { TrainContext } from "../../src/autograd/train_context.ts";
import { createDevice } from "../../src/device/create_device.ts";
import { firstOrderImportance, firstOrderPlan } from "../../src/loram/first_order_plan.ts";
import type { CausalLM } from "../../src/models/causal_lm.ts";
import { loadModel } from "../../src/models/load.ts";
import type { Linear } from "../../src/nn/linear.ts";
import { SwiGLU } from "../../src/nn/swiglu.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";

const FIXTURE = "test/fixtures/models/llama-gqa-tied-f32"; // L 2, C 32, F 64, H 4, Hkv 2, D 8
const device = await createDevice({ backend: "cpu" });
const BLOCKS = [Int32Array.of(3, 17, 5, 40, 11, 2, 29), Int32Array.of(9, 1, 77, 12, 50, 6)];

async function lossSum(model: CausalLM): Promise<number> {
  let s = 0;
  for (const ids of BLOCKS) {
    using tape = new Tape();
    const { loss } = await model.lossTrain(new TrainContext(tape, new Set(), { training: false }), ids);
    s += (await loss.value.toArray())[0];
  }
  return s;
}

async function setEntry(w: Tensor, j: number, value: number): Promise<number> {
  const host = await w.toArray() as Float32Array;
  const old = host[j];
  host[j] = value;
  w.device.upload(w.storage, host);
  return old;
}

Deno.test("firstOrderImportance: |W·G| with G the summed gradient (central finite differences)", async () => {
  using model = await loadModel(FIXTURE, { device });
  const imp = await firstOrderImportance(model, BLOCKS, [1, 2]);
  const mlp = model.layers[1].mlp as SwiGLU;
  const cases: [Tensor, "down" | "gate" | "q" | "v", number][] = [
    [(mlp.downProj as Linear).weight, "down", 5 * 64 + 7],
    [(mlp.gateProj as Linear).weight, "gate", 11 * 32 + 3],
    [(model.layers[1].attention.qProj as Linear).weight, "q", 20 * 32 + 1],
    [(model.layers[1].attention.vProj as Linear).weight, "v", 9 * 32 + 30],
  ];
  for (const [w, name, j] of cases) {
    const eps = 1e-2;
    const w0 = await setEntry(w, j, 0);
    await setEntry(w, j, w0 + eps);
    const up = await lossSum(model);
    await setEntry(w, j, w0 - eps);
    const down = await lossSum(model);
    await setEntry(w, j, w0);
    const g = (up - down) / (2 * eps);
    const got = imp.get(1)![name][j];
    assert.ok(
      Math.abs(got - Math.abs(w0 * g)) <= 2e-3 * Math.abs(w0 * g) + 1e-6,
      `${name}[${j}]: importance ${got}, |w·g| by finite differences ${Math.abs(w0 * g)}`,
    );
  }
});

Deno.test("firstOrderPlan: channels and KV heads with zero weights (importance 0) are pruned first", async () => {
  using model = await loadModel(FIXTURE, { device });
  const mlp = model.layers[0].mlp as SwiGLU;
  const zeroRows = async (w: Tensor, rows: number[], cols: number) => {
    const h = await w.toArray() as Float32Array;
    for (const r of rows) h.fill(0, r * cols, (r + 1) * cols);
    w.device.upload(w.storage, h);
  };
  const zeroCols = async (w: Tensor, colsToZero: number[], cols: number) => {
    const h = await w.toArray() as Float32Array;
    for (let i = 0; i < h.length; i++) if (colsToZero.includes(i % cols)) h[i] = 0;
    w.device.upload(w.storage, h);
  };
  const dead = Array.from({ length: 32 }, (_, i) => 2 * i + 1); // odd channels: nothing flows through them
  await zeroRows((mlp.gateProj as Linear).weight, dead, 32);
  await zeroRows((mlp.upProj as Linear).weight, dead, 32);
  await zeroCols((mlp.downProj as Linear).weight, dead, 64);
  const a = model.layers[0].attention; // KV head 0 and its query group (q heads 0, 1): rows 0..15
  await zeroRows((a.kProj as Linear).weight, [...Array(8).keys()], 32);
  await zeroRows((a.vProj as Linear).weight, [...Array(8).keys()], 32);
  await zeroRows((a.qProj as Linear).weight, [...Array(16).keys()], 32);
  await zeroCols((a.oProj as Linear).weight, [...Array(16).keys()], 32);
  const plan = await firstOrderPlan(model, BLOCKS, { ratio: 0.5, layers: [0, 1] });
  assert.equal(plan.method, "llm-pruner");
  assert.deepEqual(plan.layers[0].mlpKeep, Array.from({ length: 32 }, (_, i) => 2 * i));
  assert.deepEqual(plan.layers[0].kvHeadKeep, [1]);
  await assert.rejects(
    () => firstOrderPlan(model, [], { ratio: 0.5, layers: [0, 1] }),
    /no calibration blocks/,
  );
  await assert.rejects(() => firstOrderPlan(model, BLOCKS, { ratio: 0.5 }), /layer range \[4, 0\)/);
});
