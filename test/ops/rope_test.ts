import assert from "node:assert/strict";
import { Tensor } from "../../src/tensor/tensor.ts";
import { rope, ropeRef } from "../../src/ops/rope.ts";
import { randn, rng, testOnDevices } from "../_helpers.ts";

/**
 * Independent float64 RoPE: each pair (x_i, x_{i+R/2}) as the complex number x_i + i·x_{i+R/2},
 * multiplied by e^{i·pos·ω_i} with ω_i = 1 / θ^(i / (R/2)).
 */
function rope64(
  x: Float32Array,
  pos: number[],
  h: number,
  d: number,
  theta: number,
  r: number,
): Float64Array {
  const out = Float64Array.from(x);
  const half = r / 2;
  pos.forEach((p, t) => {
    for (let head = 0; head < h; head++) {
      const o = (t * h + head) * d;
      for (let i = 0; i < half; i++) {
        const w = 1 / theta ** (i / half);
        const [re, im] = [Math.cos(p * w), Math.sin(p * w)];
        const [a, b] = [x[o + i], x[o + i + half]];
        out[o + i] = a * re - b * im;
        out[o + i + half] = a * im + b * re;
      }
    }
  });
  return out;
}

/** |y − y64| <= 2e-6 · (|x_i| + |x_{i+R/2}|) + 1e-7 per rotated pair; pass-through dims exactly. */
function assertRope(
  y: Float32Array,
  x: Float32Array,
  want: Float64Array,
  d: number,
  r: number,
  what: string,
) {
  for (let k = 0; k < y.length; k++) {
    const j = k % d;
    if (j >= r) {
      assert.equal(y[k], x[k], `${what}: pass-through element ${k}`);
      continue;
    }
    const partner = j < r / 2 ? k + r / 2 : k - r / 2;
    const tol = 2e-6 * (Math.abs(x[k]) + Math.abs(x[partner])) + 1e-7;
    assert.ok(Math.abs(y[k] - want[k]) <= tol, `${what}: element ${k} is ${y[k]}, float64 gives ${want[k]}`);
  }
}

const CASES: { t: number; h: number; d: number; r?: number; theta: number }[] = [
  { t: 1, h: 1, d: 2, theta: 10000 },
  { t: 7, h: 3, d: 64, theta: 10000 },
  { t: 5, h: 1, d: 128, theta: 500000 },
  { t: 3, h: 2, d: 10, r: 4, theta: 10000 }, // partial rotary: dims 4..9 pass through
];

testOnDevices("rope() matches an independent float64 RoPE at positions up to 8191", async (dev) => {
  const u = rng(42);
  for (const { t, h, d, r = d, theta } of CASES) {
    const x = randn(t * h * d, t * d + h, 1.5);
    const pos = Array.from({ length: t }, (_, i) => i === 0 ? 8191 : i === 1 ? 0 : Math.floor(u() * 8000));
    using tx = Tensor.fromArray(dev, x, [t, h, d]);
    using tp = Tensor.fromArray(dev, new Int32Array(pos));
    using y = rope(tx, tp, { theta, rotaryDim: r });
    assert.deepEqual(y.shape, [t, h, d]);
    const want = rope64(x, pos, h, d, theta, r);
    assertRope(await y.toArray(), x, want, d, r, `rope [${t},${h},${d}] R=${r}`);
    // The CPU reference against the same float64 math, to f32 rounding.
    const ref = new Float32Array(x.length);
    ropeRef(x, pos, ref, h, d, theta, r);
    ref.forEach((v, k) => assert.ok(Math.abs(v - want[k]) <= 1e-6 * (Math.abs(want[k]) + 1e-6), `ref ${k}`));
  }
});

testOnDevices("rope() with a start offset equals rope() with explicit positions", async (dev) => {
  const [t, h, d] = [6, 2, 16];
  const x = randn(t * h * d, 5);
  using tx = Tensor.fromArray(dev, x, [t, h, d]);
  using tp = Tensor.fromArray(dev, Int32Array.from({ length: t }, (_, i) => 4093 + i));
  using a = rope(tx, 4093, { theta: 10000 });
  using b = rope(tx, tp, { theta: 10000 });
  assert.deepEqual(await a.toArray(), await b.toArray());
  using z = rope(tx, 0);
  const y0 = await z.toArray();
  assert.deepEqual(y0.subarray(0, h * d), x.subarray(0, h * d)); // position 0 is the identity
});

testOnDevices("rope() rejects bad shapes, dtypes and options", (dev) => {
  using x = Tensor.zeros(dev, [4, 2, 8]);
  using x2 = Tensor.zeros(dev, [4, 8]);
  using p3 = Tensor.zeros(dev, [3], { dtype: "i32" });
  using pf = Tensor.zeros(dev, [4]);
  assert.throws(() => rope(x2, 0), /Cannot run rope: x must have rank 3: received shape \[4,8\]/);
  assert.throws(
    () => rope(x, p3),
    /Cannot run rope: positions must have shape \[4\] \(T of x \[4,2,8\]\): received \[3\]/,
  );
  assert.throws(() => rope(x, pf), /Cannot run rope: positions must be i32: received f32/);
  assert.throws(
    () => rope(x, 0, { rotaryDim: 5 }),
    /rotaryDim must be an even integer in \[2, 8\].*received 5/,
  );
  assert.throws(() => rope(x, 0, { theta: 0 }), /theta must be a positive finite number: received 0/);
  using odd = Tensor.zeros(dev, [4, 2, 7]);
  assert.throws(
    () => rope(odd, 0),
    /Cannot run rope: the head dim D of x \[4,2,7\] must be even: received 7/,
  );
  assert.throws(() => rope(x, 2 ** 24), /start offset must be an integer with \|offset \+ T - 1\| < 2\^24/);
});

testOnDevices("rope() leaves no frequency table behind in the ledger", async (dev) => {
  const before = dev.ledger.current();
  {
    using x = Tensor.fromArray(dev, randn(2 * 8, 3), [2, 1, 8]);
    using y = rope(x, 3, { theta: 10000, rotaryDim: 4 });
    await y.toArray();
  }
  assert.equal(dev.ledger.current(), before);
});

Deno.test("ropeRef: cached angle rows (negative positions too) and positions past the cache equal angles computed afresh", () => {
  const [H, D, theta] = [2, 6, 500];
  const positions = [0, 3, -3, 8191, 8192, 9001, -9001, 17];
  const x = randn(positions.length * H * D, 11);
  const y = new Float32Array(x.length);
  ropeRef(x, positions, y, H, D, theta);
  const want = new Float32Array(x.length);
  positions.forEach((p, t) => {
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < D / 2; i++) {
        const a = p * Math.pow(theta, -2 * i / D);
        const k = (t * H + h) * D + i;
        want[k] = x[k] * Math.cos(a) - x[k + D / 2] * Math.sin(a);
        want[k + D / 2] = x[k + D / 2] * Math.cos(a) + x[k] * Math.sin(a);
      }
    }
  });
  assert.deepEqual(y, want);
});
