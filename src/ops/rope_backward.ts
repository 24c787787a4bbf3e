/**
 * Backward of rotary position embedding (`rope` in `./rope.ts`, HF `rotate_half` convention): RoPE
 * is a rotation per pair `(i, i + R/2)`, so its vector-Jacobian product is the transpose, a rotation
 * by `−pos · θ^(-2i/R)`. Dims past `rotaryDim` pass the gradient through. The angles are computed
 * exactly as the forward computes them (float64 on the CPU backend, the same exact turn reduction
 * in the kernel), so forward and backward use the same cos/sin. Kernel: `kernels/rope_backward.wgsl`.
 *
 * Shapes: `T` tokens, `H` heads, `D` head dim, `R` rotary dims.
 *
 * @see https://arxiv.org/abs/2104.09864
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { ropeBackward } from "./rope_backward.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const dy = Tensor.fromArray(dev, [1, 0], [1, 1, 2]); // [T, H, D]
 * const dx = await ropeBackward(dy, 1, { theta: 10000 }).toArray(); // position 1: rotate by −1 rad
 * assert.ok(Math.abs(dx[0] - Math.cos(1)) < 1e-6 && Math.abs(dx[1] + Math.sin(1)) < 1e-6);
 * ```
 * @module
 */
import code from "../../kernels/rope_backward.wgsl" with { type: "text" };
import { Tensor } from "../tensor/tensor.ts";
import { expectDType, expectRank, gpuOf, grid1d, params, sameDevice } from "./_kernel.ts";
import { type RopeOptions, ropeRef } from "./rope.ts";

export type { RopeOptions };

const WG = 64;
/** Positions must satisfy |pos| < 2^24, as in the forward. */
const MAX_POSITION = 2 ** 24;

/**
 * Reference RoPE backward in float64: the forward reference at negated positions (the angle
 * `(−pos) · θ^(-2i/R)` is exactly the negated forward angle), rounded to f32.
 *
 * @param dy `[T, H, D]` upstream gradient, row-major.
 * @param positions `[T]` integer positions of the forward.
 * @param dx `[T, H, D]` written.
 * @param h Heads `H`.
 * @param d Head dim `D`.
 * @param theta Frequency base θ.
 * @param r Rotary dims `R` (even, at most `D`).
 */
export function ropeBackwardRef(
  dy: Float32Array,
  positions: ArrayLike<number>,
  dx: Float32Array,
  h: number,
  d: number,
  theta: number,
  r = d,
): void {
  const negated = Float64Array.from(positions, (p) => -p);
  ropeRef(dy, negated, dx, h, d, theta, r);
}

/**
 * `[R/2, 2]` (hi, lo) split of the turns per position `θ^(-2i/R) / 2π`; hi has 12 significant bits.
 * NOTE: a copy of the forward's private table (src/ops/rope.ts); both kernels must see the same one.
 */
function turnTable(theta: number, r: number): Float32Array {
  const out = new Float32Array(r);
  for (let i = 0; i < r / 2; i++) {
    const f = Math.pow(theta, -2 * i / r) / (2 * Math.PI);
    const scale = 2 ** (11 - Math.floor(Math.log2(f)));
    const hi = Math.round(f * scale) / scale;
    out[2 * i] = hi;
    out[2 * i + 1] = f - hi;
  }
  return out;
}

/**
 * Gradient of `rope` with respect to its input: `dy` rotated back by each position's angles.
 *
 * Against the float64 reference the kernel is within `2e-6 · (|dy_i| + |dy_{i+R/2}|)` per rotated
 * pair (as the forward), and pass-through dims are copied exactly.
 *
 * @param dy `[T, H, D]` f32 gradient of the loss with respect to the forward output.
 * @param positions `[T]` i32 positions, or a start offset `s` (positions `s, …, s+T−1`), as in the forward.
 * @param options `theta` (default 10000) and `rotaryDim` (default `D`), as in the forward.
 * @returns `[T, H, D]` f32 gradient with respect to the forward input.
 * @throws {TypeError} when `dy` is not f32 `[T, H, D]` with even `D`, or `positions` is not i32 `[T]`.
 * @throws {RangeError} for a bad `theta`, `rotaryDim`, offset or position.
 */
export function ropeBackward(
  dy: Tensor,
  positions: Tensor | number,
  options: RopeOptions = {},
): Tensor<"f32"> {
  const op = "ropeBackward";
  const device = typeof positions === "number" ? dy.device : sameDevice(op, dy, positions);
  expectDType(op, "dy", dy, "f32");
  expectRank(op, "dy", dy, 3);
  const [t, h, d] = dy.shape;
  const theta = options.theta ?? 10000;
  const r = options.rotaryDim ?? d;
  if (!(Number.isFinite(theta) && theta > 0)) {
    throw new RangeError(`Cannot run ${op}: theta must be a positive finite number: received ${theta}`);
  }
  if (!Number.isInteger(r) || r < 2 || r % 2 !== 0 || r > d) {
    throw options.rotaryDim === undefined
      ? new TypeError(`Cannot run ${op}: the head dim D of dy [${dy.shape}] must be even: received ${d}`)
      : new RangeError(
        `Cannot run ${op}: rotaryDim must be an even integer in [2, ${d}] (the head dim): received ${r}`,
      );
  }
  if (typeof positions === "number") {
    if (!Number.isInteger(positions) || Math.abs(positions) + Math.max(t - 1, 0) >= MAX_POSITION) {
      throw new RangeError(
        `Cannot run ${op}: the start offset must be an integer with |offset + T - 1| < 2^24: received ${positions}`,
      );
    }
  } else {
    expectDType(op, "positions", positions, "i32");
    if (positions.rank !== 1 || positions.shape[0] !== t) {
      throw new TypeError(
        `Cannot run ${op}: positions must have shape [${t}] (T of dy [${dy.shape}]): received [${positions.shape}]`,
      );
    }
  }
  const dx = Tensor.empty(device, dy.shape); // [T, H, D] -> [T, H, D]
  if (dy.size === 0) return dx;
  if (device.kind === "cpu") {
    const pos = typeof positions === "number"
      ? Int32Array.from({ length: t }, (_, i) => positions + i)
      : positions.host() as Int32Array;
    pos.forEach((p, i) => {
      if (!(Math.abs(p) < MAX_POSITION)) {
        throw new RangeError(
          `Cannot run ${op}: positions must lie in (-2^24, 2^24): received ${p} at index ${i}`,
        );
      }
    });
    ropeBackwardRef(dy.host() as Float32Array, pos, dx.host(), h, d, theta, r);
    return dx;
  }
  // The table is a few hundred bytes; it is freed once the pending work is submitted.
  using freq = Tensor.fromArray(device, turnTable(theta, r), [r / 2, 2]);
  const offset = typeof positions === "number";
  gpuOf(device).dispatch({ name: "rope_backward", code }, {
    bindings: [dy.storage, offset ? freq.storage : positions.storage, freq.storage, dx.storage],
    params: params(
      ["u32", t],
      ["u32", h],
      ["u32", d],
      ["u32", r],
      ["i32", offset ? positions : 0],
      ["u32", offset ? 0 : 1],
      ["u32", 0],
      ["u32", 0],
    ),
    workgroups: grid1d(Math.ceil(t * (d - r / 2) / WG)),
    constants: { WG },
  });
  return dx;
}
