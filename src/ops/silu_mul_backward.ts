/**
 * Backward of the SwiGLU gate `y = silu(a) ⊙ b` in one pass: with `s = σ(a)`,
 * `da = dy ⊙ b ⊙ s ⊙ (1 + a ⊙ (1 − s))` and `db = dy ⊙ silu(a) = dy ⊙ a ⊙ s`. Composed from
 * elementwise ops the same gradients take ten passes and two exponentials per element; here one
 * of each. Kernel: `kernels/silu_mul_backward.wgsl`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { siluMulBackward } from "./silu_mul_backward.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const a = Tensor.fromArray(dev, [0, 0], [1, 2]); // silu'(0) = 1/2, silu(0) = 0
 * const b = Tensor.fromArray(dev, [2, 4], [1, 2]);
 * const dy = Tensor.fromArray(dev, [1, 1], [1, 2]);
 * const { da, db } = siluMulBackward(a, b, dy); // [1, 2] each
 * assert.deepEqual([...await da.toArray()], [1, 2]);
 * assert.deepEqual([...await db.toArray()], [0, 0]);
 * ```
 * @module
 */
import { exp } from "./_exp.ts";
import code from "../../kernels/silu_mul_backward.wgsl" with { type: "text" };
import { Tensor } from "../tensor/tensor.ts";
import { expectDType, gpuOf, grid1d, params, sameDevice } from "./_kernel.ts";

const WG = 64;
const PER_THREAD = 4;

/** Reference, in float64 per element, rounded once to f32. All arrays have the same length. */
export function siluMulBackwardRef(
  a: Float32Array,
  b: Float32Array,
  dy: Float32Array,
  da: Float32Array,
  db: Float32Array,
): void {
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const s = 1 / (1 + exp(-x));
    const g = dy[i];
    da[i] = g * b[i] * s * (1 + x * (1 - s));
    db[i] = g * x * s;
  }
}

/**
 * Gradients of `silu(a) ⊙ b` for `a`, `b`, `dy` of one shape (f32).
 * @throws {TypeError} when the shapes differ (a broadcast `b` takes the composed path).
 */
export function siluMulBackward(a: Tensor, b: Tensor, dy: Tensor): { da: Tensor<"f32">; db: Tensor<"f32"> } {
  const op = "siluMulBackward";
  const device = sameDevice(op, a, b, dy);
  for (const [name, t] of [["a", a], ["b", b], ["dy", dy]] as const) expectDType(op, name, t, "f32");
  if (
    b.size !== a.size || dy.size !== a.size || b.rank !== a.rank || b.shape.some((d, i) => d !== a.shape[i])
  ) {
    throw new TypeError(
      `Cannot run ${op}: a [${a.shape}], b [${b.shape}] and dy [${dy.shape}] must have one shape`,
    );
  }
  const da = Tensor.empty(device, a.shape);
  const db = Tensor.empty(device, a.shape);
  if (a.size === 0) return { da, db };
  if (device.kind === "cpu") {
    const h = (t: Tensor) => t.host() as Float32Array;
    siluMulBackwardRef(h(a), h(b), h(dy), da.host(), db.host());
    return { da, db };
  }
  gpuOf(device).dispatch({ name: "silu_mul_backward", code }, {
    bindings: [a.storage, b.storage, dy.storage, da.storage, db.storage],
    params: params(["u32", a.size]),
    workgroups: grid1d(Math.ceil(a.size / (WG * PER_THREAD))),
    constants: { WG },
  });
  return { da, db };
}
