import { add, mul, scale, silu, siluMul, type Var } from "../../src/autograd/mod.ts";
import { randn, testOnDevices } from "../_helpers.ts";
import { gradcheck } from "./_gradcheck.ts";

const inp = (shape: number[], seed: number, std = 1) => ({
  data: randn(shape.reduce((a, b) => a * b, 1), seed, std),
  shape,
});

testOnDevices("autograd add() matches finite differences, with [C] and scalar broadcasting", async (dev) => {
  const f = (_t: unknown, [a, b]: Var[]) => add(a, b);
  await gradcheck(dev, f, [inp([3, 5], 1), inp([3, 5], 2)], { what: "add same shape" });
  await gradcheck(dev, f, [inp([2, 3, 5], 3), inp([5], 4)], { what: "add [C]" });
  await gradcheck(dev, f, [inp([3, 5], 5), inp([3, 5], 6)], { what: "add [3,5] + [3,5]" });
  await gradcheck(dev, f, [inp([7, 3], 7), inp([1], 8)], { what: "add scalar" });
});

testOnDevices("autograd mul() matches finite differences, with broadcasting", async (dev) => {
  const f = (_t: unknown, [a, b]: Var[]) => mul(a, b);
  await gradcheck(dev, f, [inp([3, 7], 11), inp([3, 7], 12)], { what: "mul same shape" });
  await gradcheck(dev, f, [inp([2, 3, 5], 13), inp([3, 5], 14)], { what: "mul [3, 5]" });
  await gradcheck(dev, f, [inp([5, 3], 15), inp([1], 16)], { what: "mul scalar" });
});

testOnDevices("autograd scale() and silu() match finite differences", async (dev) => {
  await gradcheck(dev, (_t, [a]) => scale(a, -1.7, 0.3), [inp([4, 7], 21)], { what: "scale" });
  await gradcheck(dev, (_t, [a]) => silu(a), [inp([5, 7], 22, 3)], { what: "silu" });
});

testOnDevices("autograd siluMul() matches finite differences, same shape and [C] gate", async (dev) => {
  const f = (_t: unknown, [a, b]: Var[]) => siluMul(a, b);
  await gradcheck(dev, f, [inp([3, 9], 31, 2), inp([3, 9], 32)], { what: "siluMul" });
  await gradcheck(dev, f, [inp([4, 5], 33, 2), inp([5], 34)], { what: "siluMul [C]" });
  // only one side trainable: the other gets no gradient
  await gradcheck(dev, f, [inp([3, 5], 35, 2), { ...inp([3, 5], 36), param: false }], {
    what: "siluMul frozen b",
  });
});
