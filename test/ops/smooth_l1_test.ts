/** SmoothL1: the kernel against the reference (odd sizes, β ≠ 1), the reference against torch's definition, and its gradient. */
import assert from "node:assert/strict";
import { smoothL1Loss } from "../../src/autograd/smooth_l1.ts";
import type { Var } from "../../src/autograd/tape.ts";
import { smoothL1, smoothL1Grad, smoothL1GradRef, smoothL1Ref } from "../../src/ops/smooth_l1.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";
import { gradcheck } from "../autograd/_gradcheck.ts";

Deno.test("smoothL1Ref is torch's SmoothL1 (quadratic inside β, linear outside)", () => {
  const y = new Float32Array(4);
  smoothL1Ref(Float32Array.of(0.2, -0.2, 3, -1), Float32Array.of(0, 0, 1, 1), y, 0.5);
  assertClose(y, [0.5 * 0.04 / 0.5, 0.5 * 0.04 / 0.5, 2 - 0.25, 2 - 0.25]);
  const g = new Float32Array(3);
  smoothL1GradRef(Float32Array.of(0.2, 3, -3), Float32Array.of(0, 0, 0), Float32Array.of(2, 2, 2), g, 0.5);
  assertClose(g, [0.8, 2, -2]);
});

testOnDevices("smoothL1 and smoothL1Grad match their references (odd size, β 0.7)", async (dev) => {
  const n = 1031;
  const [a, b, g] = [randn(n, 1, 2), randn(n, 2), randn(n, 3)];
  const t = (x: Float32Array) => Tensor.fromArray(dev, x, [n]);
  const want = new Float32Array(n);
  smoothL1Ref(a, b, want, 0.7);
  assertClose(await smoothL1(t(a), t(b), 0.7).toArray(), want, { rtol: 1e-6, atol: 1e-6 });
  smoothL1GradRef(a, b, g, want, 0.7);
  assertClose(await smoothL1Grad(t(a), t(b), t(g), 0.7).toArray(), want, { rtol: 1e-6, atol: 1e-6 });
  assert.throws(() => smoothL1(t(a), Tensor.zeros(dev, [3])), /must have as many elements/);
  assert.throws(() => smoothL1(t(a), t(b), 0), /beta must be a finite number > 0: received 0/);
});

testOnDevices("autograd smoothL1Loss matches finite differences for both inputs", async (dev) => {
  // Values kept away from the kink at |d| = β, where the finite difference straddles two pieces.
  const data = Float32Array.from(randn(15, 4, 2), (v) => (Math.abs(Math.abs(v) - 1) < 0.05 ? v + 0.2 : v));
  await gradcheck(dev, (_t, [p, q]: Var[]) => smoothL1Loss(p, q), [{ data, shape: [3, 5] }, {
    data: new Float32Array(15),
    shape: [3, 5],
  }], { what: "smoothL1Loss" });
});
