import assert from "node:assert/strict";
import { adamwStep, adamwStepInPlace, axpyInPlace } from "../../src/ops/adamw.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";

interface Hyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/**
 * torch.optim.AdamW (foreach=False, amsgrad=False, maximize=False) re-implemented in float64,
 * line by line from `_single_tensor_adam` with decoupled weight decay:
 *   param.mul_(1 - lr * weight_decay)
 *   exp_avg.lerp_(grad, 1 - beta1)
 *   exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
 *   step_size = lr / (1 - beta1 ** step); bias_correction2_sqrt = sqrt(1 - beta2 ** step)
 *   denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
 *   param.addcdiv_(exp_avg, denom, value=-step_size)
 */
function torchAdamW(p0: Float32Array, grads: Float32Array[], h: Hyper) {
  const p = Float64Array.from(p0);
  const m = new Float64Array(p.length);
  const v = new Float64Array(p.length);
  grads.forEach((g, k) => {
    const step = k + 1;
    const stepSize = h.lr / (1 - h.beta1 ** step);
    const bc2Sqrt = Math.sqrt(1 - h.beta2 ** step);
    for (let i = 0; i < p.length; i++) {
      p[i] *= 1 - h.lr * h.weightDecay;
      m[i] = m[i] + (g[i] - m[i]) * (1 - h.beta1);
      v[i] = v[i] * h.beta2 + (1 - h.beta2) * g[i] * g[i];
      p[i] -= stepSize * m[i] / (Math.sqrt(v[i]) / bc2Sqrt + h.eps);
    }
  });
  return { p, m, v };
}

const HYPERS: Hyper[] = [
  { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 1e-2 }, // torch defaults
  { lr: 5e-2, beta1: 0.8, beta2: 0.95, eps: 1e-6, weightDecay: 0.1 },
];
const SIZES = [[1], [7, 33], [5, 3, 17], [70001]];
const STEPS = 5;

testOnDevices("adamwStep matches a float64 torch.optim.AdamW over several steps", async (dev) => {
  for (const h of HYPERS) {
    for (const shape of SIZES) {
      const n = shape.reduce((a, b) => a * b, 1);
      const p0 = randn(n, n);
      const grads = Array.from({ length: STEPS }, (_, k) => randn(n, 100 + n + k));
      const want = torchAdamW(p0, grads, h);
      let p = Tensor.fromArray(dev, p0, shape, { category: "lora" });
      let m = Tensor.zeros(dev, shape, { category: "optimizer" });
      let v = Tensor.zeros(dev, shape, { category: "optimizer" });
      for (let k = 0; k < STEPS; k++) {
        using g = Tensor.fromArray(dev, grads[k], shape);
        const next = adamwStep(p, g, m, v, { ...h, step: k + 1 });
        assert.equal(next.param.storage.allocation.category, "lora");
        assert.equal(next.m.storage.allocation.category, "optimizer");
        p.dispose(), m.dispose(), v.dispose();
        ({ param: p, m, v } = next);
      }
      const what = `lr ${h.lr} [${shape}]`;
      assertClose(await p.toArray(), want.p, { rtol: 1e-5, atol: 2e-6, what: `param ${what}` });
      assertClose(await m.toArray(), want.m, { rtol: 1e-5, atol: 1e-6, what: `m ${what}` });
      assertClose(await v.toArray(), want.v, { rtol: 1e-5, atol: 1e-7, what: `v ${what}` });
      p.dispose(), m.dispose(), v.dispose();
    }
  }
});

testOnDevices("adamwStepInPlace equals adamwStep and honours gradScale", async (dev) => {
  const shape = [3, 257];
  const n = 3 * 257;
  const p0 = randn(n, 1);
  const h = { lr: 1e-2, weightDecay: 0.05, beta1: 0.9, beta2: 0.99, eps: 1e-8 };
  const grads = [randn(n, 2), randn(n, 3), randn(n, 4)];
  // gradScale 0.5 on the in-place path must equal pre-halved grads on the reference.
  const want = torchAdamW(p0, grads.map((g) => g.map((x) => x * 0.5)), h);
  using p = Tensor.fromArray(dev, p0, shape);
  using view = p.reshape([n]);
  using m = Tensor.zeros(dev, shape);
  using v = Tensor.zeros(dev, shape);
  for (let k = 0; k < grads.length; k++) {
    using g = Tensor.fromArray(dev, grads[k], shape);
    adamwStepInPlace(p, g, m, v, { ...h, step: k + 1, gradScale: 0.5 });
  }
  assertClose(await view.toArray(), want.p, { rtol: 1e-5, atol: 2e-6, what: "in-place param via view" });
  assertClose(await m.toArray(), want.m, { rtol: 1e-5, atol: 1e-6, what: "in-place m" });
});

testOnDevices("adamw ops validate their inputs", (dev) => {
  using p = Tensor.zeros(dev, [4]);
  using g = Tensor.zeros(dev, [5]);
  using m = Tensor.zeros(dev, [4]);
  using v = Tensor.zeros(dev, [4]);
  assert.throws(() => adamwStep(p, g, m, v, { step: 1 }), /grad must have shape \[4\]/);
  assert.throws(() => adamwStep(p, m, m, v, { step: 0 }), RangeError);
  assert.throws(() => adamwStep(p, m, m, v, { step: 1, beta1: 1 }), /beta1 must be in \[0, 1\)/);
  assert.throws(() => adamwStepInPlace(p, m, m, v, { step: 1 }), /must not share storage/);
});

testOnDevices("axpyInPlace adds a scaled tensor into a buffer", async (dev) => {
  const a = randn(1001, 7);
  const b = randn(1001, 8);
  using y = Tensor.fromArray(dev, a);
  using x = Tensor.fromArray(dev, b);
  axpyInPlace(y, x, -0.25);
  assertClose(await y.toArray(), Array.from(a, (ai, i) => ai - 0.25 * b[i]), { what: "axpy" });
});
