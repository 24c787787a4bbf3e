import assert from "node:assert/strict";
import { ConfigError } from "../../src/errors.ts";
import { cosineWithWarmup, linearWarmupCosine } from "../../src/optim/schedules.ts";
import { assertClose } from "../_helpers.ts";

/** nanoGPT train.py get_lr, transcribed. */
function nanoGptGetLr(it: number, warmup: number, decay: number, lr: number, minLr: number): number {
  if (it < warmup) return lr * (it + 1) / (warmup + 1);
  if (it > decay) return minLr;
  const ratio = (it - warmup) / (decay - warmup);
  return minLr + 0.5 * (1 + Math.cos(Math.PI * ratio)) * (lr - minLr);
}

Deno.test("linearWarmupCosine follows nanoGPT get_lr", () => {
  const lr = linearWarmupCosine({ warmupSteps: 7, totalSteps: 40, maxLr: 6e-4, minLr: 6e-5 });
  const steps = Array.from({ length: 60 }, (_, i) => i);
  assertClose(steps.map(lr), steps.map((i) => nanoGptGetLr(i, 7, 40, 6e-4, 6e-5)), { rtol: 1e-15, atol: 0 });
  assert.equal(lr(7), 6e-4); // the peak is the first decay step
  assert.equal(lr(40), 6e-5);
  const noWarmup = linearWarmupCosine({ warmupSteps: 0, totalSteps: 0, maxLr: 1 });
  assert.deepEqual([noWarmup(0), noWarmup(1)], [1, 0]);
});

Deno.test("cosineWithWarmup follows transformers get_cosine_schedule_with_warmup", () => {
  const lr = cosineWithWarmup({ warmupSteps: 100, totalSteps: 1000, maxLr: 1e-5 });
  assert.equal(lr(0), 0);
  assert.equal(lr(50), 0.5e-5);
  assert.equal(lr(100), 1e-5);
  assertClose([lr(550), lr(1000)], [0.5e-5, 0], { rtol: 1e-12, atol: 1e-20 });
  assertClose([lr(1900)], [1e-5], {
    rtol: 1e-12,
    what: "past the end the cosine rises again, as in transformers",
  });
});

Deno.test("schedules validate their options", () => {
  assert.throws(
    () => linearWarmupCosine({ warmupSteps: 10, totalSteps: 5, maxLr: 1 }),
    /warmupSteps: must be/,
  );
  assert.throws(() => linearWarmupCosine({ warmupSteps: 1, totalSteps: 5, maxLr: 1, minLr: 2 }), ConfigError);
  assert.throws(() => cosineWithWarmup({ warmupSteps: 1.5, totalSteps: 5, maxLr: 1 }), ConfigError);
});
