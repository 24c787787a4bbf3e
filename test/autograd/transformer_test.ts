import { attention, rmsNorm, rope, softmax, type Var } from "../../src/autograd/mod.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { randn, testOnDevices } from "../_helpers.ts";
import { gradcheck } from "./_gradcheck.ts";

const inp = (shape: number[], seed: number, std = 1) => ({
  data: randn(shape.reduce((a, b) => a * b, 1), seed, std),
  shape,
});

testOnDevices("autograd rmsNorm() and softmax() match finite differences", async (dev) => {
  await gradcheck(dev, (_t, [x, w]) => rmsNorm(x, w, 1e-5), [inp([3, 7], 1), inp([7], 2)], {
    what: "rmsNorm",
  });
  await gradcheck(dev, (_t, [x, w]) => rmsNorm(x, w, 1e-5), [inp([2, 8], 3), {
    ...inp([8], 4),
    param: false,
  }], {
    what: "rmsNorm frozen weight",
  });
  await gradcheck(dev, (_t, [x]) => softmax(x), [inp([3, 7], 5, 2)], { what: "softmax" });
});

testOnDevices("autograd rope() matches finite differences (offset and explicit positions)", async (dev) => {
  await gradcheck(dev, (_t, [x]) => rope(x, 3, { theta: 100 }), [inp([3, 2, 6], 6)], { what: "rope offset" });
  await gradcheck(
    dev,
    (_t, [x], d) => rope(x, Tensor.fromArray(d, new Int32Array([5, 0, 9])), { theta: 50, rotaryDim: 4 }),
    [inp([3, 1, 6], 7)],
    { what: "rope positions, partial rotary" },
  );
});

testOnDevices("autograd attention() (causal GQA) matches finite differences", async (dev) => {
  const f = (_t: unknown, [q, k, v]: Var[]) => attention(q, k, v, { pos: 0 });
  // T = 3, Hq = 4, Hkv = 2, D = 5
  await gradcheck(dev, f, [inp([3, 4, 5], 8), inp([3, 2, 5], 9), inp([3, 2, 5], 10)], { what: "attention" });
  await gradcheck(dev, f, [inp([3, 2, 4], 11), { ...inp([3, 1, 4], 12), param: false }, inp([3, 1, 4], 13)], {
    what: "attention frozen k",
  });
});
