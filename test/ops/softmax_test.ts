import assert from "node:assert/strict";
import type { Device } from "../../src/device/device.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { softmax, softmaxRef } from "../../src/ops/softmax.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";

// Odd C runs the scalar entry point, C % 4 == 0 the vec4 one; row counts cover 16 lanes per row
// (< 16 rows), 8 rows per workgroup and 64 rows per workgroup (>= 512 rows).
const SHAPES: number[][] = [[1, 1], [3, 7], [2, 1, 33], [1, 4099], [3, 4096], [20, 12], [600, 36], [
  70001,
  7,
]];

testOnDevices("softmax() matches softmaxRef on odd shapes", async (dev) => {
  for (const shape of SHAPES) {
    const c = shape[shape.length - 1];
    const n = shape.reduce((a, b) => a * b, 1);
    const x = randn(n, n + 7 * c, 3);
    using tx = Tensor.fromArray(dev, x, shape);
    using y = softmax(tx);
    assert.deepEqual(y.shape, shape);
    const want = new Float32Array(n);
    softmaxRef(x, want, c);
    assertClose(await y.toArray(), want, { rtol: 1e-5, atol: 1e-7, what: `softmax [${shape}]` });
  }
});

async function checkLarge(dev: Device, rows: number, c: number): Promise<void> {
  const x = randn(rows * c, 11 + c, 1).map((v) => (v > 0 ? 80 : -80) + v);
  x[0] = 1e4; // a far larger max in row 0
  using tx = Tensor.fromArray(dev, x, [rows, c]);
  using y = softmax(tx);
  const p = await y.toArray();
  assert.ok(p.every(Number.isFinite), `C=${c}: all probabilities finite`);
  for (let r = 0; r < rows; r++) {
    const s = p.subarray(r * c, (r + 1) * c).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(s - 1) < 1e-5, `C=${c}: row ${r} sums to ${s}`);
  }
  assert.equal(p[0], 1);
  const want = new Float32Array(rows * c);
  softmaxRef(x, want, c);
  assertClose(p, want, { rtol: 1e-5, atol: 1e-7, what: `C=${c}` });
}

testOnDevices("softmax() stays finite on ±80 logits and each row sums to 1", async (dev) => {
  for (const c of [33, 32]) await checkLarge(dev, 5, c);
});

testOnDevices(
  "softmax() gives 0 for -Infinity (masked) entries and NaN for fully masked rows",
  async (dev) => {
    for (const c of [3, 4]) {
      const masked = Array(c - 2).fill(-Infinity);
      using tx = Tensor.fromArray(dev, [0, Math.log(3), ...masked, ...Array(c).fill(-Infinity)], [2, c]);
      using y = softmax(tx);
      const p = await y.toArray();
      assertClose(p.subarray(0, c), [0.25, 0.75, ...Array(c - 2).fill(0)], {
        rtol: 1e-6,
        atol: 0,
        what: `C=${c}`,
      });
      assert.ok(p.subarray(c).every(Number.isNaN), `C=${c}: fully masked row gives ${p.subarray(c)}`);
    }
  },
);

testOnDevices("softmax() rejects scalars and non-f32 input", (dev) => {
  using s = Tensor.zeros(dev, []);
  using i = Tensor.zeros(dev, [3], { dtype: "i32" });
  assert.throws(() => softmax(s), /Cannot run softmax: x must have rank at least 1: received shape \[\]/);
  assert.throws(() => softmax(i), /Cannot run softmax: x must be f32: received i32/);
});
