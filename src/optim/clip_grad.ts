/**
 * Global gradient-norm clipping with `torch.nn.utils.clip_grad_norm_` semantics:
 * `norm = ‖concat(grads)‖₂`, `scale = min(1, maxNorm / (norm + 1e-6))`.
 *
 * The norm is reduced on the device (`sumSquaresAll`, `add`) and read back once. Ferry tensors
 * are immutable, so instead of scaling the gradients in place as torch does,
 * {@linkcode clipGradNorm} returns the `scale`; pass it to `AdamW.step(params, { gradScale })`,
 * which folds it into the update kernel (no extra pass or copy). {@linkcode scaleGrads} returns
 * scaled copies when explicit gradients are wanted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { clipGradNorm } from "./clip_grad.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const g1 = Tensor.fromArray(dev, [3, 0]);
 * const g2 = Tensor.fromArray(dev, [0, 4], [1, 2]);
 * const { norm, scale } = await clipGradNorm([g1, g2], 1);
 * assert.ok(norm === 5 && Math.abs(scale - 1 / (5 + 1e-6)) < 1e-12);
 * ```
 * @module
 */
import { add, scale as scaleOp } from "../ops/elementwise.ts";
import { sumSquaresAll } from "../ops/reduce.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** What {@link clipGradNorm} measured. */
export interface ClipResult {
  /** Global L2 norm of all gradients before clipping (`NaN`/`Infinity` pass through, as in torch). */
  norm: number;
  /** Factor to multiply every gradient by: `min(1, maxNorm / (norm + 1e-6))`. */
  scale: number;
}

/**
 * The global L2 norm of `grads`, with one readback.
 *
 * @throws {TypeError} When the gradients are not f32 or live on different devices.
 */
export async function gradNorm(grads: readonly Tensor[]): Promise<number> {
  if (grads.length === 0) return 0;
  let total: Tensor | undefined;
  for (const g of grads) {
    if (g.device !== grads[0].device) {
      throw new TypeError("Cannot compute gradient norm: gradients live on different devices");
    }
    if (g.size === 0) continue;
    const s = sumSquaresAll(g); // [...] -> []
    if (total === undefined) total = s;
    else {
      const next = add(total, s); // [] + [] -> []
      total.dispose();
      s.dispose();
      total = next;
    }
  }
  if (total === undefined) return 0;
  try {
    return Math.sqrt((await total.toArray())[0] as number);
  } finally {
    total.dispose();
  }
}

/**
 * Measures the global gradient norm and the clip coefficient for `maxNorm`; the gradients are
 * not modified (see the module doc).
 *
 * @param grads Gradients of every trainable parameter.
 * @param maxNorm Largest allowed global norm (> 0).
 * @throws {RangeError} When `maxNorm` is not a positive number.
 */
export async function clipGradNorm(grads: readonly Tensor[], maxNorm: number): Promise<ClipResult> {
  if (!(maxNorm > 0)) {
    throw new RangeError(`Cannot clip gradients: maxNorm must be a positive number: received ${maxNorm}`);
  }
  const norm = await gradNorm(grads);
  return { norm, scale: Math.min(1, maxNorm / (norm + 1e-6)) };
}

/** New tensors `g · scale` (the inputs are left as they are; the caller owns both). */
export function scaleGrads(grads: readonly Tensor[], scale: number): Tensor<"f32">[] {
  return grads.map((g) => scaleOp(g, scale));
}
