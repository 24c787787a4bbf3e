import assert from "node:assert/strict";
import { clipGradNorm, gradNorm, scaleGrads } from "../../src/optim/clip_grad.ts";
import { GradAccumulator } from "../../src/optim/grad_accumulator.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";

testOnDevices("clipGradNorm computes torch's global norm and coefficient with one readback", async (dev) => {
  const data = [randn(7 * 33, 1), randn(1, 2), randn(5000, 3)];
  const shapes = [[7, 33], [1], [5000]];
  const grads = data.map((d, i) => Tensor.fromArray(dev, d, shapes[i]));
  let sq = 0;
  for (const d of data) for (const x of d) sq += x * x;
  const want = Math.sqrt(sq);
  const readsBefore = dev.stats.readbacks;
  const { norm, scale } = await clipGradNorm(grads, 1);
  if (dev.kind === "webgpu") assert.equal(dev.stats.readbacks - readsBefore, 1);
  assertClose([norm], [want], { rtol: 1e-5, what: "norm" });
  assertClose([scale], [1 / (want + 1e-6)], { rtol: 1e-5, what: "scale" });
  assert.equal((await clipGradNorm(grads, 1e6)).scale, 1);
  const scaled = scaleGrads(grads, scale);
  assertClose([await gradNorm(scaled)], [1], { rtol: 1e-5, what: "norm after scaling" });
  for (const t of [...grads, ...scaled]) t.dispose();
  assert.equal(await gradNorm([]), 0);
  await assert.rejects(() => clipGradNorm([], 0), RangeError);
});

testOnDevices("GradAccumulator sums micro-batches into 'grads' buffers", async (dev) => {
  const before = dev.ledger.current("grads");
  using acc = new GradAccumulator();
  const parts = [randn(129, 1), randn(129, 2), randn(129, 3)];
  for (const [k, p] of parts.entries()) {
    using g = Tensor.fromArray(dev, p);
    using h = Tensor.fromArray(dev, [k, 1]);
    acc.add(k === 0 ? [{ name: "w", grad: g }] : [{ name: "w", grad: g }, { name: "b", grad: h }]);
  }
  assert.equal(acc.microSteps, 3);
  assert.equal(acc.meanScale, 1 / 3);
  assert.deepEqual(acc.grads().map((g) => g.name), ["w", "b"]);
  assert.equal(dev.ledger.current("grads") - before, (129 + 2) * 4);
  const want = parts[0].map((x, i) => x + parts[1][i] + parts[2][i]);
  assertClose(await acc.get("w")!.toArray(), want, { what: "sum" });
  assert.deepEqual(Array.from(await acc.get("b")!.toArray()), [3, 2]);
  acc.reset();
  assert.equal(acc.microSteps, 0);
  assert.equal(dev.ledger.current("grads"), before);
});

testOnDevices(
  "GradAccumulator.addOwned keeps a first gradient as the sum and frees the later ones",
  async (dev) => {
    const before = dev.ledger.current("grads");
    using acc = new GradAccumulator();
    const parts = [randn(129, 4), randn(129, 5)];
    const owned = parts.map((p) => Tensor.fromArray(dev, p, [129], { category: "grads" }));
    acc.addOwned([{ name: "w", grad: owned[0] }]);
    assert.equal(acc.get("w"), owned[0]); // taken over, not copied
    acc.addOwned([{ name: "w", grad: owned[1] }]);
    assert.equal(acc.microSteps, 2);
    assert.equal(dev.ledger.current("grads") - before, 129 * 4); // the second was freed after adding
    assertClose(await acc.get("w")!.toArray(), parts[0].map((x, i) => x + parts[1][i]), { what: "sum" });
    acc.reset();
    assert.equal(dev.ledger.current("grads"), before);
  },
);
