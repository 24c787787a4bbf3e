import assert from "node:assert/strict";
import { siluMulBackward, siluMulBackwardRef } from "../../src/ops/silu_mul_backward.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";

/** silu(x)·w in float64, for central differences independent of the reference's closed form. */
const siluMul = (x: number, w: number) => x / (1 + Math.exp(-x)) * w;

Deno.test("siluMulBackwardRef equals central differences of silu(a)·b", () => {
  const n = 257;
  const a = randn(n, 1), b = randn(n, 2), dy = randn(n, 3);
  const da = new Float32Array(n), db = new Float32Array(n);
  siluMulBackwardRef(a, b, dy, da, db);
  const h = 1e-4;
  const fdA = a.map((x, i) => dy[i] * (siluMul(x + h, b[i]) - siluMul(x - h, b[i])) / (2 * h));
  const fdB = a.map((x, i) => dy[i] * (siluMul(x, b[i] + h) - siluMul(x, b[i] - h)) / (2 * h));
  assertClose(da, fdA, { rtol: 1e-4, atol: 1e-5, what: "da" });
  assertClose(db, fdB, { rtol: 1e-4, atol: 1e-5, what: "db" });
});

testOnDevices("siluMulBackward matches its reference on odd shapes", async (dev) => {
  for (const shape of [[1], [7, 33], [3, 5, 17], [70001]]) {
    const n = shape.reduce((x, y) => x * y, 1);
    const a = randn(n, n), b = randn(n, n + 1), dy = randn(n, n + 2);
    const wantA = new Float32Array(n), wantB = new Float32Array(n);
    siluMulBackwardRef(a, b, dy, wantA, wantB);
    using ta = Tensor.fromArray(dev, a, shape);
    using tb = Tensor.fromArray(dev, b, shape);
    using tdy = Tensor.fromArray(dev, dy, shape);
    const { da, db } = siluMulBackward(ta, tb, tdy);
    assert.deepEqual(da.shape, shape);
    assertClose(await da.toArray(), wantA, { rtol: 1e-5, atol: 1e-6, what: `da [${shape}]` });
    assertClose(await db.toArray(), wantB, { rtol: 1e-5, atol: 1e-6, what: `db [${shape}]` });
    da.dispose();
    db.dispose();
  }
});

testOnDevices("siluMulBackward refuses operands of different shapes", (dev) => {
  using a = Tensor.fromArray(dev, randn(6, 1), [2, 3]);
  using b = Tensor.fromArray(dev, randn(3, 2), [3]);
  assert.throws(() => siluMulBackward(a, b, a), /must have one shape/);
});
