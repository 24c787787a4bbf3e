/**
 * Rotary position embedding (RoFormer), in the HF `rotate_half` convention used by Llama,
 * Mistral and Qwen: dimension `i < R/2` pairs with `i + R/2`, rotated by `pos · θ^(-2i/R)`.
 * `rotaryDim` (`R`, default `D`) rotates only the first `R` dims of each head (partial rotary,
 * as GPT-NeoX / Phi); the rest pass through. Kernel: `kernels/rope.wgsl`.
 *
 * Shapes: `T` tokens, `H` heads, `D` head dim, `R` rotary dims.
 *
 * Numerics: frequencies are computed in float64 on the host and angles reduced exactly (see the
 * kernel header), so the kernel stays within `2e-6 · (|x_i| + |x_{i+R/2}|)` of float64 math at any
 * position below 2^24, including the long-context ones where f32 `pos · inv_freq` drifts.
 *
 * @see https://arxiv.org/abs/2104.09864
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { rope } from "./rope.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const q = Tensor.fromArray(dev, [1, 0], [1, 1, 2]); // [T, H, D]
 * const y = await rope(q, 1, { theta: 10000 }).toArray(); // position 1: rotate by 1 rad
 * assert.ok(Math.abs(y[0] - Math.cos(1)) < 1e-6 && Math.abs(y[1] - Math.sin(1)) < 1e-6);
 * ```
 * @module
 */
import code from "../../kernels/rope.wgsl" with { type: "text" };
import { Tensor } from "../tensor/tensor.ts";
import { expectDType, expectRank, gpuOf, grid1d, params, sameDevice } from "./_kernel.ts";

const WG = 64;
/** Positions must satisfy |pos| < 2^24 (exact in f32; the kernel splits them in 12-bit halves). */
const MAX_POSITION = 2 ** 24;

/** Options of {@link rope}. */
export interface RopeOptions {
  /** Base θ of the frequencies (`rope_theta`); default 10000. */
  theta?: number;
  /** Dims rotated per head (`R`, even, at most `D`); default `D`. */
  rotaryDim?: number;
}

/**
 * Reference RoPE in float64 (frequencies, angles, rotation), rounded to f32.
 *
 * @param x `[T, H, D]` input, row-major.
 * @param positions `[T]` integer positions.
 * @param y `[T, H, D]` output.
 * @param h Heads `H`.
 * @param d Head dim `D`.
 * @param theta Frequency base θ.
 * @param r Rotary dims `R` (even, at most `D`).
 */
export function ropeRef(
  x: Float32Array,
  positions: ArrayLike<number>,
  y: Float32Array,
  h: number,
  d: number,
  theta: number,
  r = d,
): void {
  const half = r / 2;
  const { cos, sin } = angles(theta, r, positions); // [T, R/2] each
  for (let t = 0; t < positions.length; t++) {
    for (let i = 0; i < half; i++) {
      const c = cos[t * half + i];
      const s = sin[t * half + i];
      for (let k = (t * h) * d + i; k < (t + 1) * h * d; k += d) {
        const x1 = x[k];
        const x2 = x[k + half];
        y[k] = x1 * c - x2 * s;
        y[k + half] = x2 * c + x1 * s;
      }
    }
    for (let k = t * h * d; k < (t + 1) * h * d; k += d) {
      for (let j = r; j < d; j++) y[k + j] = x[k + j];
    }
  }
}

/** Positions below this come from a cached table per `(θ, R)`; others are computed per call. */
const TABLE_POSITIONS = 8192;
/** `cos`/`sin` of `p · θ^(−2i/R)` at `[p, i]`, `p < n`, per `"θ,R"`; grown on demand. */
const TABLES = new Map<string, { n: number; cos: Float64Array; sin: Float64Array }>();

function angleRows(
  theta: number,
  r: number,
  ps: ArrayLike<number>,
): { cos: Float64Array; sin: Float64Array } {
  const half = r / 2;
  const cos = new Float64Array(ps.length * half);
  const sin = new Float64Array(ps.length * half);
  for (let t = 0; t < ps.length; t++) {
    for (let i = 0; i < half; i++) {
      const angle = ps[t] * Math.pow(theta, -2 * i / r);
      cos[t * half + i] = Math.cos(angle);
      sin[t * half + i] = Math.sin(angle);
    }
  }
  return { cos, sin };
}

/**
 * `[T, R/2]` float64 `cos`/`sin` of each position's angles: rows copied from the cached table for
 * integer positions in `(−TABLE_POSITIONS, TABLE_POSITIONS)` (`cos(−a) = cos(a)`, `sin(−a) = −sin(a)`),
 * computed otherwise. Either way the same float64 values as computing each angle afresh.
 */
function angles(
  theta: number,
  r: number,
  positions: ArrayLike<number>,
): { cos: Float64Array; sin: Float64Array } {
  let need = 1;
  for (let t = 0; t < positions.length; t++) {
    const p = positions[t];
    if (!(Number.isInteger(p) && Math.abs(p) < TABLE_POSITIONS)) return angleRows(theta, r, positions);
    need = Math.max(need, Math.abs(p) + 1);
  }
  const key = `${theta},${r}`;
  let table = TABLES.get(key);
  if (!table || table.n < need) {
    const n = Math.min(TABLE_POSITIONS, Math.max(need, 2 * (table?.n ?? 0), 256));
    table = { n, ...angleRows(theta, r, Array.from({ length: n }, (_, p) => p)) };
    TABLES.set(key, table);
  }
  const half = r / 2;
  const cos = new Float64Array(positions.length * half);
  const sin = new Float64Array(positions.length * half);
  for (let t = 0; t < positions.length; t++) {
    const p = positions[t];
    const from = Math.abs(p) * half;
    cos.set(table.cos.subarray(from, from + half), t * half);
    const s = table.sin.subarray(from, from + half);
    if (p >= 0) sin.set(s, t * half);
    else for (let i = 0; i < half; i++) sin[t * half + i] = -s[i];
  }
  return { cos, sin };
}

/** `[R/2, 2]` (hi, lo) split of the turns per position `θ^(-2i/R) / 2π`; hi has 12 significant bits. */
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

function checkPositions(positions: ArrayLike<number>): void {
  for (let t = 0; t < positions.length; t++) {
    if (!(Math.abs(positions[t]) < MAX_POSITION)) {
      throw new RangeError(
        `Cannot run rope: positions must lie in (-2^24, 2^24): received ${positions[t]} at index ${t}`,
      );
    }
  }
}

/**
 * Applies rotary position embedding to queries or keys.
 *
 * @param x `[T, H, D]` f32.
 * @param positions `[T]` i32 positions, or a start offset `s` meaning positions `s, s+1, …, s+T−1`.
 *   |position| must stay below 2^24 (checked on the host for an offset and on the CPU backend).
 * @param options `theta` (default 10000) and `rotaryDim` (default `D`).
 * @returns `[T, H, D]` f32.
 * @throws {TypeError} when `x` is not f32 `[T, H, D]` with even `D`, or `positions` is not i32 `[T]`.
 * @throws {RangeError} for a bad `theta`, `rotaryDim` or offset.
 */
export function rope(x: Tensor, positions: Tensor | number, options: RopeOptions = {}): Tensor<"f32"> {
  const device = typeof positions === "number" ? x.device : sameDevice("rope", x, positions);
  expectDType("rope", "x", x, "f32");
  expectRank("rope", "x", x, 3);
  const [t, h, d] = x.shape;
  const theta = options.theta ?? 10000;
  const r = options.rotaryDim ?? d;
  if (!(Number.isFinite(theta) && theta > 0)) {
    throw new RangeError(`Cannot run rope: theta must be a positive finite number: received ${theta}`);
  }
  if (!Number.isInteger(r) || r < 2 || r % 2 !== 0 || r > d) {
    throw options.rotaryDim === undefined
      ? new TypeError(`Cannot run rope: the head dim D of x [${x.shape}] must be even: received ${d}`)
      : new RangeError(
        `Cannot run rope: rotaryDim must be an even integer in [2, ${d}] (the head dim): received ${r}`,
      );
  }
  if (typeof positions === "number") {
    if (!Number.isInteger(positions) || Math.abs(positions) + Math.max(t - 1, 0) >= MAX_POSITION) {
      throw new RangeError(
        `Cannot run rope: the start offset must be an integer with |offset + T - 1| < 2^24: received ${positions}`,
      );
    }
  } else {
    expectDType("rope", "positions", positions, "i32");
    if (positions.rank !== 1 || positions.shape[0] !== t) {
      throw new TypeError(
        `Cannot run rope: positions must have shape [${t}] (T of x [${x.shape}]): received [${positions.shape}]`,
      );
    }
  }
  const y = Tensor.empty(device, x.shape); // [T, H, D] -> [T, H, D]
  if (x.size === 0) return y;
  if (device.kind === "cpu") {
    const pos = typeof positions === "number"
      ? Int32Array.from({ length: t }, (_, i) => positions + i)
      : positions.host() as Int32Array;
    checkPositions(pos);
    ropeRef(x.host() as Float32Array, pos, y.host(), h, d, theta, r);
    return y;
  }
  // The table is a few hundred bytes; it is freed once the pending work is submitted.
  using freq = Tensor.fromArray(device, turnTable(theta, r), [r / 2, 2]);
  const offset = typeof positions === "number";
  gpuOf(device).dispatch({ name: "rope", code }, {
    bindings: [x.storage, offset ? freq.storage : positions.storage, freq.storage, y.storage],
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
  return y;
}
