import assert from "node:assert/strict";
import { add, linear, loraLinear, mul, scale, sum, Tape, type Var } from "../../src/autograd/mod.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { randn, testOnDevices } from "../_helpers.ts";
import { gradcheck } from "./_gradcheck.ts";

const inp = (shape: number[], seed: number) => ({
  data: randn(shape.reduce((a, b) => a * b, 1), seed, 0.7),
  shape,
});

testOnDevices(
  "autograd loraLinear() matches finite differences (x, W, bias, A, B; separate xd)",
  async (dev) => {
    // [T, in] = [3, 5], out 4, r 2; odd sizes, a batch dim, and a frozen weight.
    await gradcheck(
      dev,
      (_t, [x, w, b, a, bb]) => loraLinear({ x, weight: w, bias: b, a, b: bb, scaling: 1.5 }),
      [inp([3, 5], 1), inp([4, 5], 2), inp([4], 3), inp([2, 5], 4), inp([4, 2], 5)],
      { what: "loraLinear with bias" },
    );
    await gradcheck(
      dev,
      (_t, [x, w, a, bb]) => loraLinear({ x, weight: w, a, b: bb, scaling: 0.5 }),
      [inp([2, 3, 5], 6), { ...inp([4, 5], 7), param: false }, inp([2, 5], 8), inp([4, 2], 9)],
      { what: "loraLinear [2,3,5], frozen W" },
    );
    // A separate adapter input (dropout's x ⊙ mask): both paths reach x.
    await gradcheck(
      dev,
      (_t, [x, m, w, a, bb]) => loraLinear({ x, xd: mul(x, m), weight: w, a, b: bb, scaling: 2 }),
      [
        inp([3, 5], 10),
        { ...inp([3, 5], 11), param: false },
        inp([4, 5], 12),
        inp([2, 5], 13),
        inp([4, 2], 14),
      ],
      { what: "loraLinear with xd" },
    );
  },
);

testOnDevices("loraLinear() equals the unfused ops bit for bit and keeps fewer activations", async (dev) => {
  const [T, IN, OUT, R] = [17, 24, 20, 4];
  const run = async (fused: boolean) => {
    using tape = new Tape();
    const x = tape.param(Tensor.fromArray(dev, randn(T * IN, 1), [T, IN]));
    const w = tape.constant(Tensor.fromArray(dev, randn(OUT * IN, 2), [OUT, IN]));
    const bias = tape.constant(Tensor.fromArray(dev, randn(OUT, 3), [OUT]));
    const a = tape.param(Tensor.fromArray(dev, randn(R * IN, 4), [R, IN]));
    const b = tape.param(Tensor.fromArray(dev, randn(OUT * R, 5), [OUT, R]));
    const before = dev.ledger.current();
    const z: Var = fused
      ? loraLinear({ x, weight: w, bias, a, b, scaling: 0.25 })
      : add(linear(x, w, bias), scale(linear(linear(x, a), b), 0.25));
    const held = dev.ledger.current() - before;
    tape.backward(sum(mul(z, z)));
    const out = await Promise.all([z.value, x.grad!, a.grad!, b.grad!].map((t) => t.toArray()));
    return { out, held };
  };
  const fused = await run(true);
  const plain = await run(false);
  ["z", "dx", "dA", "dB"].forEach((name, i) => assert.deepEqual(fused.out[i], plain.out[i], name));
  // Unfused: x Wᵀ, + bias, xA, xAB, scaled, z = 5 [T, out]-or-[T, r] tensors; fused: z and xA.
  assert.ok(fused.held < plain.held / 2, `fused holds ${fused.held} bytes, unfused ${plain.held}`);
});
