/**
 * Differentiable inverted dropout (Srivastava et al. 2014, https://jmlr.org/papers/v15/srivastava14a.html),
 * as `torch.nn.functional.dropout` in training mode: each element is zeroed with probability `p`
 * and the survivors are scaled by `1 / (1 − p)`, so the expectation is unchanged.
 *
 * The mask is drawn on the host from a seeded uniform stream (a {@link TrainContext}'s `random`),
 * uploaded once, and kept by the tape; the backward multiplies `dy` by the same mask. `p = 0`
 * returns `x` itself (nothing recorded, no mask).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { mulberry32 } from "../tensor/random.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { dropout, sum, Tape } from "./mod.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * using tape = new Tape();
 * const x = tape.param(Tensor.fromArray(dev, new Float32Array(8).fill(1), [2, 4])); // [2, 4]
 * const y = dropout(x, 0.5, mulberry32(1)); // [2, 4]: each element 0 or 2
 * tape.backward(sum(y));
 * const [v, g] = [await y.value.toArray(), await x.grad!.toArray()];
 * assert.ok(v.every((e, i) => (e === 0 || e === 2) && g[i] === e));
 * ```
 * @module
 */
import { Tensor } from "../tensor/tensor.ts";
import { mul } from "./elementwise.ts";
import type { Var } from "./tape.ts";

/**
 * Zeroes each element with probability `p`, scales the rest by `1 / (1 − p)`.
 *
 * @param x `[...]` f32
 * @param p drop probability, `0 ≤ p < 1`
 * @param random uniform `[0, 1)` source (element `i` is dropped when its draw is `< p`, in row-major order)
 * @returns a Var shaped like `x` (`x` itself when `p = 0`)
 * @throws {RangeError} when `p` is outside `[0, 1)`
 */
export function dropout(x: Var, p: number, random: () => number): Var {
  if (!(Number.isFinite(p) && p >= 0 && p < 1)) {
    throw new RangeError(`Cannot run dropout: p must be in [0, 1): received ${p}`);
  }
  if (p === 0) return x;
  const keep = 1 / (1 - p);
  const m = new Float32Array(x.value.size);
  for (let i = 0; i < m.length; i++) m[i] = random() < p ? 0 : keep;
  const mask = x.tape.constant(x.tape.keep(Tensor.fromArray(x.value.device, m, x.shape))); // [...], freed by the tape
  return mul(x, mask); // [...] ⊙ [...]; backward dy ⊙ mask
}
