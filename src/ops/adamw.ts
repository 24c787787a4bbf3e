/**
 * One AdamW step ([Loshchilov & Hutter, arXiv:1711.05101](https://arxiv.org/abs/1711.05101)) with
 * PyTorch `torch.optim.AdamW` semantics: decoupled weight decay `p ← p·(1 − lr·wd)` first, then
 * Adam with bias correction. Kernel: `kernels/adamw.wgsl`.
 *
 * Two forms:
 * - {@linkcode adamwStep}: functional. Returns new `param`, `m`, `v` tensors (each in its input's
 *   ledger category); the inputs are untouched and the caller disposes them.
 * - {@linkcode adamwStepInPlace}: overwrites the storage of `param`, `m` and `v`. This is the one
 *   deliberate exception to tensor immutability: the optimizer uses it so that modules keep
 *   holding the same parameter tensors across steps, and no second copy of the weights and
 *   moments is ever allocated. Views made with `reshape` see the update (shared storage).
 *
 * Not implemented (torch options off by default): `amsgrad`, `maximize`, complex parameters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { adamwStep } from "./adamw.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const p = Tensor.fromArray(dev, [1, -2, 3]);
 * const g = Tensor.fromArray(dev, [0.5, 0.5, -1]);
 * const m = Tensor.zeros(dev, [3]);
 * const v = Tensor.zeros(dev, [3]);
 * const next = adamwStep(p, g, m, v, { lr: 0.1, weightDecay: 0, step: 1 });
 * // The first bias-corrected step moves every element by lr against the sign of its gradient.
 * assert.ok(Math.abs((await next.param.toArray())[0] - 0.9) < 1e-6);
 * ```
 * @module
 */
import code from "../../kernels/adamw.wgsl" with { type: "text" };
import { Tensor } from "../tensor/tensor.ts";
import { expectDType, gpuOf, grid1d, params, sameDevice } from "./_kernel.ts";

const WG = 64;
const PER_THREAD = 4;

/** Hyperparameters of one step; defaults are torch's. */
export interface AdamWStepOptions {
  /** Learning rate. Default `1e-3`. */
  lr?: number;
  /** Default `0.9`. */
  beta1?: number;
  /** Default `0.999`. */
  beta2?: number;
  /** Default `1e-8`. */
  eps?: number;
  /** Decoupled weight decay. Default `1e-2`. */
  weightDecay?: number;
  /** 1-based step count `t` after this update (torch increments `state["step"]` before using it). */
  step: number;
  /** Multiplies the gradient first (clip coefficient, 1/accumulation steps). Default `1`. */
  gradScale?: number;
}

/** The scalars the kernel consumes, computed in float64. */
export interface AdamWScalars {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** `1 − lr·weightDecay` */
  decay: number;
  /** `lr / (1 − β1^t)` */
  stepSize: number;
  /** `sqrt(1 − β2^t)` */
  bc2Sqrt: number;
  gradScale: number;
}

/** Validates options and derives the kernel's scalars. */
export function adamwScalars(options: AdamWStepOptions): AdamWScalars {
  const { lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 1e-2, step, gradScale = 1 } =
    options;
  const bad = (what: string, value: number) =>
    new RangeError(`Cannot run adamwStep: ${what}: received ${value}`);
  if (!(lr >= 0) || !Number.isFinite(lr)) throw bad("lr must be a finite number ≥ 0", lr);
  if (!(beta1 >= 0 && beta1 < 1)) throw bad("beta1 must be in [0, 1)", beta1);
  if (!(beta2 >= 0 && beta2 < 1)) throw bad("beta2 must be in [0, 1)", beta2);
  if (!(eps >= 0)) throw bad("eps must be ≥ 0", eps);
  if (!(weightDecay >= 0)) throw bad("weightDecay must be ≥ 0", weightDecay);
  if (!Number.isInteger(step) || step < 1) throw bad("step must be an integer ≥ 1", step);
  if (!Number.isFinite(gradScale)) throw bad("gradScale must be finite", gradScale);
  return {
    lr,
    beta1,
    beta2,
    eps,
    decay: 1 - lr * weightDecay,
    stepSize: lr / (1 - beta1 ** step),
    bc2Sqrt: Math.sqrt(1 - beta2 ** step),
    gradScale,
  };
}

/**
 * Reference step, in place on the given arrays, computing each element in float64 (then
 * rounding to f32 on store). The CPU backend runs this; so does the test oracle's f32 path.
 */
export function adamwRef(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  s: AdamWScalars,
): void {
  const { gradScale, decay, beta1, beta2, stepSize, bc2Sqrt, eps } = s;
  const a1 = 1 - beta1;
  const a2 = 1 - beta2;
  // stepSize · m / (√v / bc2 + eps) = (stepSize · bc2) · m / (√v + eps · bc2): one division
  const step = stepSize * bc2Sqrt;
  const epsB = eps * bc2Sqrt;
  const n = p.length;
  for (let i = 0; i < n; i++) {
    const gi = g[i] * gradScale;
    const m0 = m[i];
    const mi = m0 + (gi - m0) * a1;
    const vi = v[i] * beta2 + a2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - step * mi / (Math.sqrt(vi) + epsB);
  }
}

function check(op: string, param: Tensor, grad: Tensor, m: Tensor, v: Tensor): void {
  sameDevice(op, param, grad, m, v);
  for (const [name, t] of [["param", param], ["grad", grad], ["m", m], ["v", v]] as const) {
    expectDType(op, name, t, "f32");
    if (t.size !== param.size || t.shape.join() !== param.shape.join()) {
      throw new TypeError(
        `Cannot run ${op}: ${name} must have shape [${param.shape}]: received [${t.shape}]`,
      );
    }
  }
}

function uniform(s: AdamWScalars, n: number): Uint32Array {
  return params(
    ["u32", n],
    ["f32", s.lr],
    ["f32", s.beta1],
    ["f32", s.beta2],
    ["f32", s.eps],
    ["f32", s.decay],
    ["f32", s.stepSize],
    ["f32", s.bc2Sqrt],
    ["f32", s.gradScale],
  );
}

/** The three tensors after a step. */
export interface AdamWState {
  param: Tensor<"f32">;
  m: Tensor<"f32">;
  v: Tensor<"f32">;
}

/**
 * Functional AdamW step: returns new `param`, `m` (exp_avg) and `v` (exp_avg_sq); the inputs are
 * left as they were. All four inputs are f32 of one shape `[...]`.
 *
 * @throws {TypeError} On mismatched shapes, dtypes or devices.
 * @throws {RangeError} On out-of-range hyperparameters.
 */
export function adamwStep(
  param: Tensor,
  grad: Tensor,
  m: Tensor,
  v: Tensor,
  options: AdamWStepOptions,
): AdamWState {
  check("adamwStep", param, grad, m, v);
  const s = adamwScalars(options);
  const like = (t: Tensor, what: string) =>
    Tensor.empty(t.device, t.shape, { category: t.storage.allocation.category, label: what });
  const out = { param: like(param, "adamw.param"), m: like(m, "adamw.m"), v: like(v, "adamw.v") };
  if (param.size === 0) return out;
  if (param.device.kind === "cpu") {
    out.param.host().set(param.host() as Float32Array);
    out.m.host().set(m.host() as Float32Array);
    out.v.host().set(v.host() as Float32Array);
    adamwRef(out.param.host(), grad.host() as Float32Array, out.m.host(), out.v.host(), s);
  } else {
    gpuOf(param.device).dispatch({ name: "adamw", code, entryPoint: "adamw" }, {
      bindings: [
        param.storage,
        grad.storage,
        m.storage,
        v.storage,
        out.param.storage,
        out.m.storage,
        out.v.storage,
      ],
      params: uniform(s, param.size),
      workgroups: grid1d(Math.ceil(param.size / (WG * PER_THREAD))),
      constants: { WG },
    });
  }
  return out;
}

/**
 * In-place AdamW step: overwrites the storage of `param`, `m` and `v` (see the module doc for
 * why this exception to immutability exists). `grad` is only read.
 *
 * @throws {TypeError} On mismatched shapes, dtypes or devices, or when `grad` shares storage
 *   with one of the written tensors.
 */
export function adamwStepInPlace(
  param: Tensor,
  grad: Tensor,
  m: Tensor,
  v: Tensor,
  options: AdamWStepOptions,
): void {
  check("adamwStepInPlace", param, grad, m, v);
  const written = [param.storage, m.storage, v.storage];
  if (new Set([...written, grad.storage]).size !== 4) {
    throw new TypeError("Cannot run adamwStepInPlace: param, grad, m and v must not share storage");
  }
  const s = adamwScalars(options);
  if (param.size === 0) return;
  if (param.device.kind === "cpu") {
    adamwRef(
      param.host() as Float32Array,
      grad.host() as Float32Array,
      m.host() as Float32Array,
      v.host() as Float32Array,
      s,
    );
  } else {
    gpuOf(param.device).dispatch({ name: "adamw", code, entryPoint: "adamw_inplace" }, {
      bindings: [param.storage, grad.storage, m.storage, v.storage],
      params: uniform(s, param.size),
      workgroups: grid1d(Math.ceil(param.size / (WG * PER_THREAD))),
      constants: { WG },
    });
  }
}

/**
 * `y ← y + alpha·x`, overwriting `y`'s storage (gradient accumulation buffers use this).
 *
 * @throws {TypeError} On mismatched shapes, dtypes or devices.
 */
export function axpyInPlace(y: Tensor, x: Tensor, alpha = 1): void {
  sameDevice("axpyInPlace", y, x);
  expectDType("axpyInPlace", "y", y, "f32");
  expectDType("axpyInPlace", "x", x, "f32");
  if (x.size !== y.size || x.shape.join() !== y.shape.join()) {
    throw new TypeError(`Cannot run axpyInPlace: x must have shape [${y.shape}]: received [${x.shape}]`);
  }
  if (x.storage === y.storage) throw new TypeError("Cannot run axpyInPlace: x and y must not share storage");
  if (y.size === 0) return;
  if (y.device.kind === "cpu") {
    const yh = y.host() as Float32Array;
    const xh = x.host() as Float32Array;
    for (let i = 0; i < yh.length; i++) yh[i] = yh[i] + alpha * xh[i];
  } else {
    gpuOf(y.device).dispatch({ name: "adamw", code, entryPoint: "axpy_inplace" }, {
      bindings: [y.storage, x.storage],
      params: params(
        ["u32", y.size],
        ["f32", alpha],
        ["f32", 0],
        ["f32", 0],
        ["f32", 0],
        ["f32", 0],
        [
          "f32",
          0,
        ],
        ["f32", 0],
        ["f32", 0],
      ),
      workgroups: grid1d(Math.ceil(y.size / (WG * PER_THREAD))),
      constants: { WG },
    });
  }
}
