import assert from "node:assert/strict";
import { ConfigError } from "../../src/errors.ts";
import { AdamW } from "../../src/optim/adamw.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";

/** torch.optim.AdamW in float64 (see test/ops/adamw_test.ts for the line-by-line mapping). */
function torchAdamW(
  p0: Float32Array,
  grads: Float32Array[],
  lrs: number[],
  wd: number,
  betas = [0.9, 0.999],
) {
  const p = Float64Array.from(p0);
  const m = new Float64Array(p.length);
  const v = new Float64Array(p.length);
  grads.forEach((g, k) => {
    const lr = lrs[k];
    const stepSize = lr / (1 - betas[0] ** (k + 1));
    const bc2Sqrt = Math.sqrt(1 - betas[1] ** (k + 1));
    for (let i = 0; i < p.length; i++) {
      p[i] *= 1 - lr * wd;
      m[i] += (g[i] - m[i]) * (1 - betas[0]);
      v[i] = v[i] * betas[1] + (1 - betas[1]) * g[i] * g[i];
      p[i] -= stepSize * m[i] / (Math.sqrt(v[i]) / bc2Sqrt + 1e-8);
    }
  });
  return p;
}

testOnDevices("AdamW.step matches torch over steps with a changing lr, state in 'optimizer'", async (dev) => {
  const shapes = { a: [5, 7], b: [33] } as const;
  const init = { a: randn(35, 1), b: randn(33, 2) };
  const lrs = [1e-2, 2e-2, 5e-3, 1e-2];
  const grads = { a: lrs.map((_, k) => randn(35, 10 + k)), b: lrs.map((_, k) => randn(33, 20 + k)) };
  const before = dev.ledger.current("optimizer");
  using opt = new AdamW({ lr: 1e-2, weightDecay: 0.1 });
  using a = Tensor.fromArray(dev, init.a, shapes.a, { category: "lora" });
  using b = Tensor.fromArray(dev, init.b, shapes.b, { category: "lora" });
  for (let k = 0; k < lrs.length; k++) {
    using ga = Tensor.fromArray(dev, grads.a[k], shapes.a);
    using gb = Tensor.fromArray(dev, grads.b[k], shapes.b);
    opt.step([{ name: "a", value: a, grad: ga }, { name: "b", value: b, grad: gb }], { lr: lrs[k] });
  }
  assert.equal(opt.stepCount("a"), 4);
  assert.equal(opt.stateBytes, (35 + 33) * 8);
  assert.equal(dev.ledger.current("optimizer") - before, (35 + 33) * 8);
  assertClose(await a.toArray(), torchAdamW(init.a, grads.a, lrs, 0.1), {
    rtol: 1e-5,
    atol: 2e-6,
    what: "a",
  });
  assertClose(await b.toArray(), torchAdamW(init.b, grads.b, lrs, 0.1), {
    rtol: 1e-5,
    atol: 2e-6,
    what: "b",
  });
  opt.dispose();
  assert.equal(dev.ledger.current("optimizer"), before);
});

testOnDevices("AdamW stateDict/loadStateDict resumes exactly", async (dev) => {
  const p0 = randn(50, 3);
  const gs = [randn(50, 4), randn(50, 5), randn(50, 6)];
  // Reference: three uninterrupted steps.
  using ref = new AdamW({ lr: 0.05 });
  using pr = Tensor.fromArray(dev, p0);
  for (const g of gs) {
    using t = Tensor.fromArray(dev, g);
    ref.step([{ name: "w", value: pr, grad: t }]);
  }
  // Two steps, checkpoint, a fresh optimizer, one more step.
  using first = new AdamW({ lr: 0.05 });
  using p = Tensor.fromArray(dev, p0);
  for (const g of gs.slice(0, 2)) {
    using t = Tensor.fromArray(dev, g);
    first.step([{ name: "w", value: p, grad: t }]);
  }
  const sd = await first.stateDict();
  assert.equal(sd.state.w.step, 2);
  assert.deepEqual(sd.state.w.shape, [50]);
  using second = new AdamW({ lr: 0.05 });
  second.loadStateDict(JSON.parse(JSON.stringify({ ...sd, state: {} })), dev); // options only: ok
  second.loadStateDict(sd, dev);
  using t = Tensor.fromArray(dev, gs[2]);
  second.step([{ name: "w", value: p, grad: t }]);
  assert.deepEqual(await p.toArray(), await pr.toArray());
  using other = new AdamW({ lr: 0.05, betas: [0.8, 0.9] });
  assert.throws(() => other.loadStateDict(sd, dev), /options differ/);
});

testOnDevices("AdamW rejects bad options and inconsistent parameters", (dev) => {
  assert.throws(() => new AdamW({ lr: -1 }), ConfigError);
  assert.throws(
    () => new AdamW({ weight_decay: 0.1 } as never),
    (e) => e instanceof ConfigError && /did you mean "weightDecay"/.test(e.message),
  );
  assert.throws(() => new AdamW({ betas: [0.9, 1] }), ConfigError);
  using opt = new AdamW();
  using w = Tensor.zeros(dev, [4]);
  using g = Tensor.zeros(dev, [4]);
  assert.throws(
    () => opt.step([{ name: "w", value: w, grad: g }, { name: "w", value: w, grad: g }]),
    /twice/,
  );
  opt.step([{ name: "w", value: w, grad: g }]);
  using w2 = Tensor.zeros(dev, [2, 2]);
  using g2 = Tensor.zeros(dev, [2, 2]);
  assert.throws(() => opt.step([{ name: "w", value: w2, grad: g2 }]), /state has \[4\]/);
});
