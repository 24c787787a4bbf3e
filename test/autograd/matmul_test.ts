import { linear, matmul, reshape, type Var } from "../../src/autograd/mod.ts";
import { randn, testOnDevices } from "../_helpers.ts";
import { gradcheck } from "./_gradcheck.ts";

const inp = (shape: number[], seed: number) => ({
  data: randn(shape.reduce((a, b) => a * b, 1), seed, 0.7),
  shape,
});

testOnDevices("autograd matmul() matches finite differences: plain and transB", async (dev) => {
  await gradcheck(dev, (_t, [a, b]) => matmul(a, b), [inp([3, 5], 1), inp([5, 7], 2)], {
    what: "[3,5]x[5,7]",
  });
  await gradcheck(dev, (_t, [a, b]) => matmul(a, b, { transB: true }), [inp([3, 5], 3), inp([7, 5], 4)], {
    what: "[3,5]x[7,5]T",
  });
  // K % 4 == 0 and N % 4 == 0 run the vec4 kernels on WebGPU
  await gradcheck(dev, (_t, [a, b]) => matmul(a, b, { transB: true }), [inp([2, 8], 5), inp([4, 8], 6)], {
    what: "[2,8]x[4,8]T",
  });
});

testOnDevices("autograd matmul() sums a shared b's gradient over the batch", async (dev) => {
  await gradcheck(dev, (_t, [a, b]) => matmul(a, b), [inp([2, 3, 5], 7), inp([5, 3], 8)], {
    what: "[2,3,5]x[5,3]",
  });
  await gradcheck(dev, (_t, [a, b]) => matmul(a, b, { transB: true }), [inp([2, 3, 5], 9), inp([3, 5], 10)], {
    what: "[2,3,5]x[3,5]T",
  });
});

testOnDevices("autograd matmul() with a batched b matches finite differences", async (dev) => {
  await gradcheck(dev, (_t, [a, b]) => matmul(a, b), [inp([2, 3, 5], 11), inp([2, 5, 3], 12)], {
    what: "[2,3,5]x[2,5,3]",
  });
  await gradcheck(
    dev,
    (_t, [a, b]) => matmul(a, b, { transB: true }),
    [inp([3, 2, 5], 13), inp([3, 3, 5], 14)],
    { what: "[3,2,5]x[3,3,5]T" },
  );
});

testOnDevices("autograd linear() with bias and a frozen weight matches finite differences", async (dev) => {
  const f = (_t: unknown, [x, w, b]: Var[]) => linear(x, w, b);
  await gradcheck(dev, f, [inp([2, 3, 5], 21), inp([4, 5], 22), inp([4], 23)], { what: "linear" });
  await gradcheck(dev, f, [inp([3, 5], 24), { ...inp([4, 5], 25), param: false }, inp([4], 26)], {
    what: "linear frozen W",
  });
  await gradcheck(dev, (_t, [x, w]) => reshape(linear(reshape(x, [6, 5]), w), [2, 3, 4]), [
    inp([2, 3, 5], 27),
    inp([4, 5], 28),
  ], { what: "reshape around linear" });
});
