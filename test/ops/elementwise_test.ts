import assert from "node:assert/strict";
import { Tensor } from "../../src/tensor/tensor.ts";
import * as ew from "../../src/ops/elementwise.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";

// Odd sizes: not multiples of the 256-element tile, a size-1 dim, and one long row.
const SHAPES: [number[], number[]][] = [
  [[7, 33], [33]],
  [[1, 1], [1]],
  [[3, 5, 17], [5, 17]],
  [[70001], [70001]],
  [[5, 9], [1]],
];

testOnDevices("binary elementwise ops match their references on odd shapes", async (dev) => {
  for (const [as, bs] of SHAPES) {
    const an = as.reduce((x, y) => x * y, 1);
    const bn = bs.reduce((x, y) => x * y, 1);
    const a = randn(an, an);
    const b = randn(bn, bn + 1);
    using ta = Tensor.fromArray(dev, a, as);
    using tb = Tensor.fromArray(dev, b, bs);
    for (
      const [op, ref] of [[ew.add, ew.addRef], [ew.mul, ew.mulRef], [ew.siluMul, ew.siluMulRef]] as const
    ) {
      const want = new Float32Array(an);
      ref(a, b, want);
      using y = op(ta, tb);
      assert.deepEqual(y.shape, as);
      assertClose(await y.toArray(), want, { rtol: 1e-5, atol: 1e-6, what: `${op.name} [${as}]+[${bs}]` });
    }
  }
});

testOnDevices("unary elementwise ops match float64 math", async (dev) => {
  const x = Float32Array.from(randn(4099, 3, 3));
  x[0] = 0;
  x[1] = -20;
  x[2] = 20;
  using t = Tensor.fromArray(dev, x);
  const cases = [
    [ew.silu(t), ew.siluScalar],
    [ew.sigmoid(t), ew.sigmoidScalar],
    [ew.gelu(t), ew.geluScalar],
    [ew.geluTanh(t), ew.geluTanhScalar],
    [ew.scale(t, -1.5, 0.25), (v: number) => v * -1.5 + 0.25],
  ] as const;
  for (const [y, f] of cases) {
    assertClose(await y.toArray(), Array.from(x, f), { rtol: 1e-5, atol: 1e-6, what: f.name });
    y.dispose();
  }
});

Deno.test("erf matches known values", () => {
  assertClose([ew.erf(0), ew.erf(0.5), ew.erf(1), ew.erf(-2), ew.erf(3)], [
    0,
    0.5204998778130465,
    0.8427007929497149,
    -0.9953222650189527,
    0.9999779095030014,
  ], { rtol: 1e-12, atol: 1e-15 });
});

testOnDevices("elementwise ops reject shapes that do not broadcast", (dev) => {
  using a = Tensor.zeros(dev, [4, 6]);
  using b = Tensor.zeros(dev, [4]);
  assert.throws(
    () => ew.add(a, b),
    /Cannot run add: b of shape \[4\] does not broadcast to a of shape \[4,6\]/,
  );
  using i = Tensor.zeros(dev, [6], { dtype: "i32" });
  assert.throws(() => ew.mul(a, i), /b must be f32: received i32/);
});

testOnDevices("sigmoid saturates to exactly 0 and 1 without NaN", async (dev) => {
  using x = Tensor.fromArray(dev, [-200, -20, 0, 20, 200]);
  using y = ew.sigmoid(x);
  const v = await y.toArray();
  assert.equal(v[0], 0);
  assert.equal(v[2], 0.5);
  assert.equal(v[4], 1);
  assertClose(v, [0, ew.sigmoidScalar(-20), 0.5, ew.sigmoidScalar(20), 1], { rtol: 1e-6, atol: 1e-9 });
});
