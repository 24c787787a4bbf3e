/**
 * Elementwise ops: `add`, `mul` (with suffix broadcasting of `b`), `scale`, `silu`,
 * `sigmoid`, `gelu` (erf form, HF `"gelu"`), `geluTanh` (HF `"gelu_pytorch_tanh"`) and the fused
 * SwiGLU gate `siluMul(a, b) = silu(a) ⊙ b`. Kernel: `kernels/elementwise.wgsl`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { add } from "./elementwise.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const x = Tensor.fromArray(dev, [1, 2, 3, 4], [2, 2]);
 * const bias = Tensor.fromArray(dev, [10, 20]);
 * assert.ok((await add(x, bias).toArray())[3] === 24); // [2, 2] + [2] -> [2, 2]
 * ```
 * @module
 */
import { exp } from "./_exp.ts";
import code from "../../kernels/elementwise.wgsl" with { type: "text" };
import { Tensor } from "../tensor/tensor.ts";
import { expectDType, gpuOf, grid1d, params, sameDevice } from "./_kernel.ts";

const WG = 64;
const PER_THREAD = 4;

// ---------------------------------------------------------------------------------------
// References (the CPU backend and the test oracle)

/** y[i] = a[i] + b[i % b.length] (b repeats along a: row by row, without a modulo per element) */
export function addRef(a: Float32Array, b: Float32Array, y: Float32Array): void {
  const nb = b.length;
  if (nb === 1) {
    const v = b[0];
    for (let i = 0; i < a.length; i++) y[i] = a[i] + v;
    return;
  }
  for (let o = 0; o < a.length; o += nb) {
    const n = Math.min(nb, a.length - o);
    for (let j = 0; j < n; j++) y[o + j] = a[o + j] + b[j];
  }
}

/** y[i] = a[i] * b[i % b.length] (b repeats along a: row by row, without a modulo per element) */
export function mulRef(a: Float32Array, b: Float32Array, y: Float32Array): void {
  const nb = b.length;
  if (nb === 1) {
    const v = b[0];
    for (let i = 0; i < a.length; i++) y[i] = a[i] * v;
    return;
  }
  for (let o = 0; o < a.length; o += nb) {
    const n = Math.min(nb, a.length - o);
    for (let j = 0; j < n; j++) y[o + j] = a[o + j] * b[j];
  }
}

/** y[i] = silu(a[i]) * b[i % b.length] */
export function siluMulRef(a: Float32Array, b: Float32Array, y: Float32Array): void {
  const nb = b.length;
  for (let o = 0; o < a.length; o += nb) {
    const n = Math.min(nb, a.length - o);
    for (let j = 0; j < n; j++) {
      const x = a[o + j];
      y[o + j] = x / (1 + exp(-x)) * b[j];
    }
  }
}

/** y[i] = a[i] * alpha + beta */
export function scaleRef(a: Float32Array, y: Float32Array, alpha: number, beta = 0): void {
  for (let i = 0; i < a.length; i++) y[i] = a[i] * alpha + beta;
}

/** SiLU (swish): x · σ(x). */
export function siluScalar(x: number): number {
  return x / (1 + exp(-x));
}

/** Logistic sigmoid: 1 / (1 + e^-x). */
export function sigmoidScalar(x: number): number {
  return 1 / (1 + exp(-x));
}

/** GELU, exact erf form. */
export function geluScalar(x: number): number {
  return 0.5 * x * (1 + erf(x * Math.SQRT1_2));
}

/** GELU, tanh approximation. */
export function geluTanhScalar(x: number): number {
  return 0.5 * x * (1 + Math.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

/** erf via its series / continued fraction: accurate to ~1e-12 in float64. */
export function erf(x: number): number {
  const z = Math.abs(x);
  let r: number;
  if (z < 2.5) {
    // Maclaurin series: erf(z) = 2/√π Σ (-1)^n z^(2n+1) / (n! (2n+1))
    let term = z;
    let sum = z;
    for (let n = 1; n < 60; n++) {
      term *= -z * z / n;
      sum += term / (2 * n + 1);
      if (Math.abs(term) < 1e-17) break;
    }
    r = sum * 2 / Math.sqrt(Math.PI);
  } else {
    // Continued fraction for erfc, converges fast for z ≥ 2.5.
    let f = 0;
    for (let n = 60; n >= 1; n--) f = n / 2 / (z + f);
    r = 1 - Math.exp(-z * z) / Math.sqrt(Math.PI) / (z + f);
  }
  return x < 0 ? -r : r;
}

function unaryRef(f: (x: number) => number) {
  return (a: Float32Array, y: Float32Array) => {
    for (let i = 0; i < a.length; i++) y[i] = f(a[i]);
  };
}

/** y = silu(a) (the formula inlined: a call per element costs as much as the exp) */
export function siluRef(a: Float32Array, y: Float32Array): void {
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    y[i] = x / (1 + exp(-x));
  }
}
/** y = sigmoid(a) */
export function sigmoidRef(a: Float32Array, y: Float32Array): void {
  for (let i = 0; i < a.length; i++) y[i] = 1 / (1 + exp(-a[i]));
}
/** y = gelu(a), erf form */
export const geluRef: (a: Float32Array, y: Float32Array) => void = unaryRef(geluScalar);
/** y = gelu(a), tanh form */
export const geluTanhRef: (a: Float32Array, y: Float32Array) => void = unaryRef(geluTanhScalar);

// ---------------------------------------------------------------------------------------
// Ops

function checkBroadcast(op: string, a: Tensor, b: Tensor): void {
  const tail = a.shape.slice(a.rank - b.rank);
  const ok = b.size === 1 || (b.rank <= a.rank && tail.every((d, i) => d === b.shape[i]));
  if (!ok) {
    throw new TypeError(
      `Cannot run ${op}: b of shape [${b.shape}] does not broadcast to a of shape [${a.shape}]; ` +
        `b must be a scalar or match a's trailing dimensions`,
    );
  }
}

function binary(op: "add" | "mul" | "silu_mul", a: Tensor, b: Tensor, ref: typeof addRef): Tensor<"f32"> {
  const device = sameDevice(op, a, b);
  expectDType(op, "a", a, "f32");
  expectDType(op, "b", b, "f32");
  checkBroadcast(op, a, b);
  const y = Tensor.empty(device, a.shape);
  if (a.size === 0) return y;
  if (device.kind === "cpu") {
    ref(a.host() as Float32Array, b.host() as Float32Array, y.host());
  } else {
    gpuOf(device).dispatch({ name: "elementwise", code, entryPoint: op }, {
      bindings: [a.storage, b.storage, y.storage],
      params: params(["u32", a.size], ["u32", b.size], ["f32", 0], ["f32", 0]),
      workgroups: grid1d(Math.ceil(a.size / (WG * PER_THREAD))),
      constants: { WG },
    });
  }
  return y;
}

function unary(
  op: "scale" | "silu" | "sigmoid" | "gelu" | "gelu_tanh",
  a: Tensor,
  ref: (a: Float32Array, y: Float32Array) => void,
  alpha = 0,
  beta = 0,
): Tensor<"f32"> {
  expectDType(op, "a", a, "f32");
  const y = Tensor.empty(a.device, a.shape);
  if (a.size === 0) return y;
  if (a.device.kind === "cpu") {
    ref(a.host() as Float32Array, y.host());
  } else {
    gpuOf(a.device).dispatch({ name: "elementwise", code, entryPoint: op }, {
      bindings: [a.storage, y.storage],
      params: params(["u32", a.size], ["u32", 1], ["f32", alpha], ["f32", beta]),
      workgroups: grid1d(Math.ceil(a.size / (WG * PER_THREAD))),
      constants: { WG },
    });
  }
  return y;
}

/** a + b, with b a scalar or matching a's trailing dims. `[..., C] + [C] -> [..., C]` */
export function add(a: Tensor, b: Tensor): Tensor<"f32"> {
  return binary("add", a, b, addRef);
}

/** a ⊙ b, with b a scalar or matching a's trailing dims. */
export function mul(a: Tensor, b: Tensor): Tensor<"f32"> {
  return binary("mul", a, b, mulRef);
}

/** silu(a) ⊙ b: the SwiGLU gate in one pass. */
export function siluMul(a: Tensor, b: Tensor): Tensor<"f32"> {
  return binary("silu_mul", a, b, siluMulRef);
}

/** a · alpha + beta */
export function scale(a: Tensor, alpha: number, beta = 0): Tensor<"f32"> {
  return unary("scale", a, (x, y) => scaleRef(x, y, alpha, beta), alpha, beta);
}

/** SiLU: x · σ(x). */
export function silu(a: Tensor): Tensor<"f32"> {
  return unary("silu", a, siluRef);
}

/** Logistic sigmoid `1 / (1 + e^-x)` (the Qwen2-MoE shared-expert gate). */
export function sigmoid(a: Tensor): Tensor<"f32"> {
  return unary("sigmoid", a, sigmoidRef);
}

/** GELU, exact (erf) form as HF `"gelu"`; the kernel's erf is accurate to 1.5e-7. */
export function gelu(a: Tensor): Tensor<"f32"> {
  return unary("gelu", a, geluRef);
}

/** GELU, tanh approximation as HF `"gelu_pytorch_tanh"`. */
export function geluTanh(a: Tensor): Tensor<"f32"> {
  return unary("gelu_tanh", a, geluTanhRef);
}
