import { crossEntropy, embedding, gatherRows, mean, sum } from "../../src/autograd/mod.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { randn, testOnDevices } from "../_helpers.ts";
import { gradcheck } from "./_gradcheck.ts";

const inp = (shape: number[], seed: number, std = 1) => ({
  data: randn(shape.reduce((a, b) => a * b, 1), seed, std),
  shape,
});

testOnDevices("autograd embedding() and gatherRows() sum the gradients of repeated rows", async (dev) => {
  const ids = new Int32Array([4, 0, 4, 6, 4, 2]); // repeats; rows 1, 3, 5 never used
  await gradcheck(
    dev,
    (_t, [table], d) => {
      const t = Tensor.fromArray(d, ids, [2, 3]); // [2, 3] ids -> [2, 3, 5]
      return embedding(table, t);
    },
    [inp([7, 5], 1)],
    { what: "embedding" },
  );
  await gradcheck(dev, (_t, [x], d) => gatherRows(x, Tensor.fromArray(d, ids)), [inp([7, 3], 2)], {
    what: "gatherRows",
  });
});

testOnDevices("autograd crossEntropy() matches finite differences, with ignored rows", async (dev) => {
  const targets = new Int32Array([3, -100, 0, 6, 6]);
  await gradcheck(dev, (_t, [x], d) => crossEntropy(x, Tensor.fromArray(d, targets)), [inp([5, 7], 3, 2)], {
    what: "crossEntropy [5,7]",
  });
  await gradcheck(
    dev,
    (_t, [x], d) => crossEntropy(x, Tensor.fromArray(d, new Int32Array([1, 2, 0, 0, 7, 7])).reshape([2, 3])),
    [inp([2, 3, 8], 4, 2)],
    { what: "crossEntropy [2,3,8]" },
  );
  await gradcheck(
    dev,
    (_t, [x], d) =>
      crossEntropy(x, Tensor.fromArray(d, new Int32Array([5, 2])), {
        ignoreIndex: 5,
      }),
    [inp([2, 6], 5)],
    { what: "crossEntropy ignoreIndex 5" },
  );
});

testOnDevices("autograd sum() and mean() match finite differences", async (dev) => {
  await gradcheck(dev, (_t, [x]) => sum(x), [inp([3, 5], 6)], { what: "sum" });
  await gradcheck(dev, (_t, [x]) => mean(x), [inp([7], 7)], { what: "mean" });
});
