import assert from "node:assert/strict";
import {
  crossEntropy,
  embedding,
  linear,
  mul,
  silu,
  siluMul,
  sum,
  Tape,
  type Var,
} from "../../src/autograd/mod.ts";
import { scale as scaleOp } from "../../src/ops/elementwise.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { randn, testOnDevices } from "../_helpers.ts";
import { gradcheck } from "./_gradcheck.ts";

const inp = (shape: number[], seed: number, std = 0.5) => ({
  data: randn(shape.reduce((a, b) => a * b, 1), seed, std),
  shape,
});

testOnDevices(
  "2-layer MLP + crossEntropy: every parameter's gradient matches finite differences",
  async (dev) => {
    // embedding -> linear+bias -> SwiGLU (silu(gate) ⊙ up) -> linear -> crossEntropy, ignored row included
    const ids = new Int32Array([1, 4, 4, 0, 2]);
    const targets = new Int32Array([2, 0, -100, 5, 2]);
    const mlp = (_t: Tape, [table, w1, b1, wu, w2]: Var[], d: typeof dev) => {
      const x = embedding(table, Tensor.fromArray(d, ids)); // [N] -> [N, C=6]
      const gate = linear(x, w1, b1); // [N, 6] -> [N, H=7]
      const up = linear(x, wu); // [N, 6] -> [N, 7]
      const h = siluMul(gate, up); // [N, 7]
      const logits = linear(silu(h), w2); // [N, 7] -> [N, V=6]
      return crossEntropy(logits, Tensor.fromArray(d, targets)); // []
    };
    await gradcheck(dev, mlp, [
      inp([5, 6], 1, 1),
      inp([7, 6], 2),
      inp([7], 3),
      inp([7, 6], 4),
      inp([6, 7], 5),
    ], {
      what: "mlp",
    });
  },
);

testOnDevices("frozen weights record nothing and cost no gradient memory", (dev) => {
  const base = dev.ledger.current("grads");
  using x = Tensor.fromArray(dev, randn(3 * 5, 1), [3, 5]);
  using w = Tensor.fromArray(dev, randn(4 * 5, 2), [4, 5], { category: "weights" });
  using lora = Tensor.fromArray(dev, randn(4, 3), [4]);
  {
    using tape = new Tape();
    const y = silu(linear(tape.constant(x), tape.constant(w))); // all frozen
    assert.equal(y.requiresGrad, false);
    assert.equal(tape.size, 0);
    assert.throws(() => tape.backward(sum(y)), /does not depend on any param/);
  }
  {
    using tape = new Tape();
    const wv = tape.constant(w);
    const bv = tape.param(lora); // only the [4] bias trains
    using r = Tensor.fromArray(dev, randn(12, 9), [3, 4]);
    const loss = sum(mul(linear(tape.constant(x), wv, bv), tape.constant(r))); // [3, 5] -> [3, 4] -> []
    assert.equal(tape.size, 3); // add (bias), mul, sum: the frozen matmul records nothing
    tape.backward(loss);
    assert.equal(wv.grad, null);
    assert.deepEqual(bv.grad!.shape, [4]);
    assert.equal(dev.ledger.current("grads") - base, 16, "only the bias gradient is held");
  }
  assert.equal(dev.ledger.current("grads"), base, "dispose returns every gradient");
});

testOnDevices(
  "Tape errors clearly on backward twice, after dispose, and on a non-scalar loss",
  async (dev) => {
    using p = Tensor.fromArray(dev, [1, 2, 3], [3]);
    const tape = new Tape();
    const v = tape.param(p);
    const y = mul(v, v);
    assert.throws(() => tape.backward(y), /loss must be a scalar: received shape \[3\]/);
    const loss = sum(y);
    tape.backward(loss);
    assert.deepEqual([...await v.grad!.toArray()], [2, 4, 6]);
    assert.throws(() => tape.backward(loss), /already ran backward/);
    assert.throws(() => sum(y), /already ran backward/);
    tape.dispose();
    assert.throws(() => tape.backward(loss), /the tape was disposed/);
    assert.throws(() => tape.param(p), /the tape was disposed/);
    assert.equal(p.disposed, false, "leaf values belong to the caller");
    const other = new Tape();
    assert.throws(() => mul(other.param(p), v), /another tape/);
    other.dispose();
  },
);

testOnDevices("Tape.dispose() frees values and gradients; takeGrad() keeps one", (dev) => {
  // Tensor bytes only: uploads waiting for the next submit are counted under "staging" until then.
  const tensors = () => dev.ledger.current() - dev.ledger.current("staging");
  const before = tensors();
  using p = Tensor.fromArray(dev, randn(6, 1), [2, 3]);
  const tape = new Tape();
  const v = tape.param(p);
  tape.backward(sum(silu(mul(v, v))));
  const kept = v.takeGrad()!;
  tape.dispose();
  assert.equal(tensors() - before, p.storage.bytes + kept.storage.bytes);
  assert.equal(kept.storage.allocation.category, "grads");
  kept.dispose();
});

testOnDevices("gradcheck catches a wrong backward", async (dev) => {
  const wrong = (t: Tape, [a]: Var[]) =>
    t.record("double", [a], scaleOp(a.value, 2), (dy) => [scaleOp(dy, 3)]); // should be 2
  await assert.rejects(() => gradcheck(dev, wrong, [inp([3], 1)]), /d\/dinput0/);
});
