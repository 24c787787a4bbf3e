/**
 * `TrainContext`: one forward pass's view of a model's weights on a {@link Tape}.
 *
 * Modules do not know which of their tensors are being trained. A training forward asks the
 * context for each weight with {@link TrainContext.v}: a tensor in the trainable set becomes a
 * `tape.param` (it gets a gradient), any other a `tape.constant` (frozen, no gradient memory).
 * The same tensor always maps to the same {@link Var} within one context, so a tied embedding
 * used by the input and the head accumulates one gradient.
 *
 * `training` switches dropout on; {@link TrainContext.random} is the seeded stream dropout masks
 * draw from, so a step is reproducible from `(seed, step)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { linear, sum, Tape } from "./mod.ts";
 * import { TrainContext } from "./train_context.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const w = Tensor.fromArray(dev, [1, 2, 3, 4], [2, 2]); // [out, in], trainable
 * const x = Tensor.fromArray(dev, [1, 1], [1, 2]); // [T, in], an input
 * using tape = new Tape();
 * const ctx = new TrainContext(tape, new Set([w]));
 * tape.backward(sum(linear(ctx.v(x), ctx.v(w)))); // [1, 2] x [2, 2]ᵀ -> [1, 2] -> []
 * assert.ok(ctx.v(w) === ctx.v(w) && ctx.grad(w)!.shape.join() === "2,2" && ctx.grad(x) === null);
 * ```
 * @module
 */
import { mulberry32 } from "../tensor/random.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { Tape, Var } from "./tape.ts";

/** Options of a {@link TrainContext}. */
export interface TrainContextOptions {
  /** Dropout on (default `true`). Evaluation passes use `false`. */
  training?: boolean;
  /** Seed of the dropout stream (default 0). */
  seed?: number;
}

/** Maps weights to tape leaves for one training forward pass. */
export class TrainContext {
  readonly tape: Tape;
  readonly trainable: ReadonlySet<Tensor>;
  readonly training: boolean;
  /** Uniform [0, 1) numbers for dropout masks, seeded. */
  readonly random: () => number;
  #vars = new Map<Tensor, Var>();

  constructor(tape: Tape, trainable: ReadonlySet<Tensor>, options: TrainContextOptions = {}) {
    this.tape = tape;
    this.trainable = trainable;
    this.training = options.training ?? true;
    this.random = mulberry32(options.seed ?? 0);
  }

  /** The Var of `t` on this tape: a param when `t` is trainable, else a constant (memoized). */
  v(t: Tensor): Var {
    let v = this.#vars.get(t);
    if (!v) {
      v = this.trainable.has(t) ? this.tape.param(t) : this.tape.constant(t);
      this.#vars.set(t, v);
    }
    return v;
  }

  /** After `tape.backward`: the gradient of trainable `t` (owned by the tape), or null. */
  grad(t: Tensor): Tensor | null {
    return this.#vars.get(t)?.grad ?? null;
  }

  /** After `tape.backward`: takes the gradient of `t` out of the tape (the caller owns it). */
  takeGrad(t: Tensor): Tensor | null {
    return this.#vars.get(t)?.takeGrad() ?? null;
  }
}
