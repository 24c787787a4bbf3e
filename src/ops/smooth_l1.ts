/**
 * SmoothL1 (Huber with `β`, as `torch.nn.SmoothL1Loss`) of `d = a − b`, element by element, and its
 * derivative times an upstream gradient: the loss FloE trains its expert predictors with (the raw
 * outputs against the multi-hot label of the next layer's experts; ALGORITHMS.md A.5).
 * Kernel: `kernels/smooth_l1.wgsl`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { smoothL1 } from "./smooth_l1.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const y = smoothL1(Tensor.fromArray(dev, [0.5, 3, -2]), Tensor.fromArray(dev, [0, 0, 0])); // β = 1
 * assert.deepEqual(Array.from(await y.toArray()), [0.125, 2.5, 1.5]);
 * ```
 * @module
 */
import code from "../../kernels/smooth_l1.wgsl" with { type: "text" };
import { Tensor } from "../tensor/tensor.ts";
import { expectDType, gpuOf, grid1d, params, sameDevice } from "./_kernel.ts";

const WG = 64;

/** `y = |d| < β ? 0.5·d²/β : |d| − 0.5·β`, `d = a − b`. */
export function smoothL1Ref(a: Float32Array, b: Float32Array, y: Float32Array, beta = 1): void {
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i];
    const m = Math.abs(d);
    y[i] = m < beta ? (0.5 * d * d) / beta : m - 0.5 * beta;
  }
}

/** `y = clamp(d/β, −1, 1) · g`, `d = a − b`. */
export function smoothL1GradRef(
  a: Float32Array,
  b: Float32Array,
  g: Float32Array,
  y: Float32Array,
  beta = 1,
): void {
  for (let i = 0; i < a.length; i++) y[i] = Math.min(1, Math.max(-1, (a[i] - b[i]) / beta)) * g[i];
}

function run(op: string, a: Tensor, b: Tensor, g: Tensor | undefined, beta: number): Tensor<"f32"> {
  const device = sameDevice(op, a, b, ...(g ? [g] : []));
  for (const [n, t] of [["a", a], ["b", b], ...(g ? [["g", g] as const] : [])] as const) {
    expectDType(op, n, t, "f32");
  }
  if (b.size !== a.size || (g && g.size !== a.size)) {
    throw new TypeError(
      `Cannot run ${op}: a [${a.shape}], b [${b.shape}]${
        g ? ` and g [${g.shape}]` : ""
      } must have as many elements`,
    );
  }
  if (!(beta > 0 && Number.isFinite(beta))) {
    throw new RangeError(`Cannot run ${op}: beta must be a finite number > 0: received ${beta}`);
  }
  const y = Tensor.empty(device, a.shape);
  if (a.size === 0) return y;
  if (device.kind === "cpu") {
    const [ah, bh] = [a.host() as Float32Array, b.host() as Float32Array];
    if (g) smoothL1GradRef(ah, bh, g.host() as Float32Array, y.host(), beta);
    else smoothL1Ref(ah, bh, y.host(), beta);
    return y;
  }
  gpuOf(device).dispatch({ name: "smooth_l1", code, entryPoint: g ? "grad" : "value" }, {
    bindings: [a.storage, b.storage, (g ?? a).storage, y.storage],
    params: params(["u32", a.size], ["f32", beta]),
    workgroups: grid1d(Math.ceil(a.size / WG)),
    constants: { WG },
  });
  return y;
}

/**
 * @param a f32, any shape
 * @param b f32, as many elements as `a`
 * @param beta the quadratic zone's half-width (default 1)
 * @returns SmoothL1 of `a − b`, shape of `a`
 */
export function smoothL1(a: Tensor, b: Tensor, beta = 1): Tensor<"f32"> {
  return run("smoothL1", a, b, undefined, beta);
}

/** `clamp((a − b)/β, −1, 1) ⊙ g`: the derivative of {@link smoothL1} in `a`, times `g`. */
export function smoothL1Grad(a: Tensor, b: Tensor, g: Tensor, beta = 1): Tensor<"f32"> {
  return run("smoothL1Grad", a, b, g, beta);
}
