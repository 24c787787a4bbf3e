import assert from "node:assert/strict";
import { Tensor } from "../../src/tensor/tensor.ts";
import { rope } from "../../src/ops/rope.ts";
import { ropeBackward, ropeBackwardRef } from "../../src/ops/rope_backward.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";

/** Independent float64 RoPE forward: pair (x_i, x_{i+R/2}) times e^{i·pos·ω_i}, ω_i = θ^(-i/(R/2)). */
function rope64(
  x: Float64Array,
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

/** Central-difference gradient of `loss` at `v` (every entry), in float64. */
function fdGrad(loss: (v: Float64Array) => number, v: Float64Array, h: number): Float64Array {
  const g = new Float64Array(v.length);
  for (let i = 0; i < v.length; i++) {
    const keep = v[i];
    v[i] = keep + h;
    const up = loss(v);
    v[i] = keep - h;
    const down = loss(v);
    v[i] = keep;
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

// L = Σ dy ⊙ rope64(x) is linear in x: float64 central differences (h = 1e-4) are exact to ~1e-11,
// so the f32-rounded reference must match to f32 rounding (rtol 1e-6, atol 1e-7).
Deno.test("ropeBackwardRef() matches float64 central differences of the forward", () => {
  let seed = 1;
  for (const t of [1, 4, 7]) {
    for (const [h, d, r] of [[2, 4, 4], [3, 6, 6], [1, 8, 8], [2, 6, 4], [1, 8, 2]]) {
      for (const start of [0, 3, 1000]) {
        seed += 2;
        const theta = seed % 2 ? 10000 : 500000;
        const pos = Array.from({ length: t }, (_, i) => start + i);
        const x = randn(t * h * d, seed);
        const dy = randn(t * h * d, seed + 1);
        const dx = new Float32Array(t * h * d);
        ropeBackwardRef(dy, pos, dx, h, d, theta, r);
        const g = fdGrad((v) => dot(dy, rope64(v, pos, h, d, theta, r)), Float64Array.from(x), 1e-4);
        assertClose(dx, g, { rtol: 1e-6, atol: 1e-7, what: `dx T=${t} H=${h} D=${d} R=${r} start=${start}` });
      }
    }
  }
});

/** |dx − want| <= 2e-6·(|dy_i| + |dy_{i+R/2}|) + 1e-7 per rotated pair; pass-through dims exactly. */
function assertRopeGrad(got: Float32Array, want: Float32Array, dy: Float32Array, d: number, r: number) {
  const half = r / 2;
  for (let o = 0; o < got.length; o += d) {
    for (let i = 0; i < half; i++) {
      const tol = 2e-6 * (Math.abs(dy[o + i]) + Math.abs(dy[o + i + half])) + 1e-7;
      for (const k of [o + i, o + i + half]) {
        assert.ok(Math.abs(got[k] - want[k]) <= tol, `dx[${k}] = ${got[k]}, want ${want[k]} (tol ${tol})`);
      }
    }
    for (let j = r; j < d; j++) assert.equal(got[o + j], dy[o + j]);
  }
}

testOnDevices(
  "ropeBackward() matches ropeBackwardRef: offsets, position tensors, partial rotary",
  async (dev) => {
    const cases = [
      { t: 37, h: 3, d: 20, r: 20, start: 0 },
      { t: 37, h: 2, d: 66, r: 32, start: 4093 },
      { t: 5, h: 4, d: 128, r: 128, start: 100000, theta: 500000 },
    ];
    for (const [ci, { t, h, d, r, start, theta = 10000 }] of cases.entries()) {
      const dy = randn(t * h * d, 40 + ci);
      using tdy = Tensor.fromArray(dev, dy, [t, h, d]);
      const pos = Array.from({ length: t }, (_, i) => start + i);
      const want = new Float32Array(t * h * d);
      ropeBackwardRef(dy, pos, want, h, d, theta, r);
      using a = ropeBackward(tdy, start, { theta, rotaryDim: r });
      assertRopeGrad(await a.toArray(), want, dy, d, r);
      // Scrambled (and negative) positions as an i32 tensor.
      const scrambled = Int32Array.from(pos, (p, i) => (i % 3 === 0 ? -p : p * 7 % 9973));
      using tp = Tensor.fromArray(dev, scrambled);
      ropeBackwardRef(dy, scrambled, want, h, d, theta, r);
      using b = ropeBackward(tdy, tp, { theta, rotaryDim: r });
      assertRopeGrad(await b.toArray(), want, dy, d, r);
    }
  },
);

// The defining property of a VJP on the device itself: <rope(x), dy> = <x, ropeBackward(dy)>.
testOnDevices("ropeBackward() is the adjoint of rope()", async (dev) => {
  const [t, h, d] = [7, 2, 8];
  const x = randn(t * h * d, 3);
  const dy = randn(t * h * d, 4);
  using tx = Tensor.fromArray(dev, x, [t, h, d]);
  using tdy = Tensor.fromArray(dev, dy, [t, h, d]);
  using y = rope(tx, 3, { rotaryDim: 6 });
  using dx = ropeBackward(tdy, 3, { rotaryDim: 6 });
  const lhs = dot(await y.toArray(), dy);
  const rhs = dot(x, await dx.toArray());
  assert.ok(Math.abs(lhs - rhs) <= 1e-5 * (1 + Math.abs(lhs)), `${lhs} vs ${rhs}`);
});

testOnDevices("ropeBackward() rejects bad shapes, positions and options", (dev) => {
  using dy = Tensor.zeros(dev, [2, 1, 4]);
  using odd = Tensor.zeros(dev, [2, 1, 5]);
  using p3 = Tensor.zeros(dev, [3], { dtype: "i32" });
  using pf = Tensor.zeros(dev, [2]);
  assert.throws(
    () => ropeBackward(odd, 0),
    /Cannot run ropeBackward: the head dim D of dy \[2,1,5\] must be even/,
  );
  assert.throws(
    () => ropeBackward(dy, p3),
    /Cannot run ropeBackward: positions must have shape \[2\] \(T of dy \[2,1,4\]\): received \[3\]/,
  );
  assert.throws(() => ropeBackward(dy, pf), /Cannot run ropeBackward: positions must be i32: received f32/);
  assert.throws(() => ropeBackward(dy, 0, { rotaryDim: 3 }), /rotaryDim must be an even integer in \[2, 4\]/);
  assert.throws(() => ropeBackward(dy, 1.5), /the start offset must be an integer/);
  assert.throws(() => ropeBackward(dy, 0, { theta: -1 }), /theta must be a positive finite number/);
});
