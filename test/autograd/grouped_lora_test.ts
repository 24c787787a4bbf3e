import assert from "node:assert/strict";
import {
  add,
  addGroupedLora,
  concatRows,
  groupedLinear,
  linear,
  mul,
  scale,
  sliceRows,
  sum,
  Tape,
  type Var,
} from "../../src/autograd/mod.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";
import { gradcheck } from "./_gradcheck.ts";

const inp = (shape: number[], seed: number) => ({
  data: randn(shape.reduce((a, b) => a * b, 1), seed, 0.7),
  shape,
});

// Experts 0..3 with 2, 0, 3, 1 rows: expert 1 is empty, expert 3 has no adapter.
const GROUPS = [2, 0, 3, 1];
const [N, IN, OUT, R] = [6, 5, 4, 2];

testOnDevices(
  "autograd addGroupedLora() matches finite differences (x, y, A, B per adapted expert)",
  async (dev) => {
    await gradcheck(
      dev,
      (_t, [y, x, a0, b0, a2, b2]) =>
        addGroupedLora(y, x, GROUPS, [{ a: a0, b: b0, scaling: 1.5 }, undefined, {
          a: a2,
          b: b2,
          scaling: 0.5,
        }]),
      [
        inp([N, OUT], 1),
        inp([N, IN], 2),
        inp([R, IN], 3),
        inp([OUT, R], 4),
        inp([R, IN], 5),
        inp([OUT, R], 6),
      ],
      { what: "addGroupedLora" },
    );
  },
);

testOnDevices("addGroupedLora() equals the op-by-op deltas and keeps fewer activations", async (dev) => {
  const run = async (fused: boolean) => {
    using tape = new Tape();
    const x = tape.param(Tensor.fromArray(dev, randn(N * IN, 7), [N, IN]));
    const w = tape.param(Tensor.fromArray(dev, randn(4 * OUT * IN, 8), [4, OUT, IN])); // [E, out, in]
    const ad = [0, 2].map((e) => ({
      a: tape.param(Tensor.fromArray(dev, randn(R * IN, 10 + e), [R, IN])),
      b: tape.param(Tensor.fromArray(dev, randn(OUT * R, 20 + e), [OUT, R])),
      scaling: 0.25 * (e + 1),
    }));
    const before = dev.ledger.current();
    const y = groupedLinear(x, w, GROUPS); // [N, out]
    let z: Var;
    if (fused) z = addGroupedLora(y, x, GROUPS, [ad[0], undefined, ad[1], undefined]);
    else {
      const zeros = (n: number) => tape.constant(tape.keep(Tensor.zeros(dev, [n, OUT])));
      const delta = (start: number, n: number, a: typeof ad[0]) =>
        scale(linear(linear(sliceRows(x, start, n), a.a), a.b), a.scaling);
      z = add(y, concatRows([delta(0, 2, ad[0]), delta(2, 3, ad[1]), zeros(1)]));
    }
    const held = dev.ledger.current() - before;
    tape.backward(sum(mul(z, z)));
    const grads = [z.value, x.grad!, w.grad!, ad[0].a.grad!, ad[0].b.grad!, ad[1].a.grad!, ad[1].b.grad!];
    return { out: await Promise.all(grads.map((t) => t.toArray())), held };
  };
  const fused = await run(true);
  const plain = await run(false);
  ["z", "dx", "dW", "dA0", "dB0", "dA2", "dB2"].forEach((name, i) =>
    assertClose(fused.out[i], plain.out[i], { rtol: 0, atol: 0, what: name })
  );
  assert.ok(fused.held < plain.held, `fused holds ${fused.held} bytes, unfused ${plain.held}`);
});
