/**
 * Whole-model gradients of `CausalLM.lossTrain` against PyTorch autograd (test/fixtures/make_grad_golden.py:
 * transformers' `*ForCausalLM(input_ids=ids, labels=ids).loss`, float32, `router_aux_loss_coef` from
 * config.json for the MoE), every parameter trainable, on the CPU reference and on WebGPU.
 *
 * Tolerances: the loss within `1e-5` relative; each gradient tensor within `1e-4 · max|expected|`
 * elementwise (max-abs error relative to the tensor's max-abs), which absorbs f32 reordering between
 * the two implementations (a few ulps of the largest entries) while still catching any missing or
 * wrong term (those are O(max|g|)).
 */
import assert from "node:assert/strict";
import { Tape, TrainContext } from "../../src/autograd/mod.ts";
import { SafetensorsFile } from "../../src/io/safetensors.ts";
import { loadModel } from "../../src/models/load.ts";
import { testOnDevices } from "../_helpers.ts";
import { fixture } from "./_fixtures.ts";

interface GradInfo {
  ids: number[];
  loss: number;
  lm_loss: number;
  aux_loss: number | null;
  router_aux_loss_coef: number;
}

for (const name of ["llama-gqa-tied-f32", "mixtral-top2-f32"]) {
  testOnDevices(`CausalLM.lossTrain(${name}) loss and every gradient match PyTorch`, async (device) => {
    const { dir } = fixture(name);
    const info = JSON.parse(await Deno.readTextFile(`${dir}/grads.json`)) as GradInfo;
    using want = await SafetensorsFile.open(`${dir}/grads.safetensors`);
    using model = await loadModel(dir, { device });
    const params = model.parameters();
    assert.deepEqual([...params.keys()].sort(), [...want.names].sort());

    using tape = new Tape();
    const ctx = new TrainContext(tape, new Set(params.values()), { training: false });
    const { loss, lmLoss, auxLoss, tokens } = await model.lossTrain(ctx, Int32Array.from(info.ids));
    assert.equal(tokens, info.ids.length - 1);
    const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
    const got = (await loss.value.toArray())[0];
    assert.ok(rel(got, info.loss) < 1e-5, `${name} loss ${got} vs ${info.loss}`);
    assert.ok(rel((await lmLoss.value.toArray())[0], info.lm_loss) < 1e-5, `${name} lm loss`);
    if (info.aux_loss === null) assert.equal(auxLoss, undefined);
    else {
      const aux = (await auxLoss!.value.toArray())[0];
      assert.ok(rel(aux, info.aux_loss) < 1e-5, `${name} aux ${aux} vs ${info.aux_loss}`);
      assert.equal(info.router_aux_loss_coef, model.hfConfig.router_aux_loss_coef);
    }

    tape.backward(loss);
    for (const [pname, t] of params) {
      const expected = await want.readF32(pname);
      const g = ctx.grad(t);
      assert.ok(g, `${name}: ${pname} got no gradient`);
      assert.deepEqual(g.shape, t.shape);
      const actual = await g.toArray() as Float32Array;
      let maxAbs = 0;
      let maxErr = 0;
      for (let i = 0; i < expected.length; i++) {
        maxAbs = Math.max(maxAbs, Math.abs(expected[i]));
        maxErr = Math.max(maxErr, Math.abs(actual[i] - expected[i]));
      }
      assert.ok(maxAbs > 0, `${name}: ${pname} has an all-zero golden gradient`);
      assert.ok(
        maxErr <= 1e-4 * maxAbs,
        `${name} [${device.kind}]: d loss / d ${pname}: max |error| ${maxErr.toExponential(3)} > 1e-4 · ` +
          `max |g| ${maxAbs.toExponential(3)}`,
      );
    }
  });
}
