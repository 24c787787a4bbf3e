/**
 * Tape-based reverse-mode autodiff, micrograd/tinygrad style, over Ferry's ops.
 *
 * A {@link Tape} records one forward pass. Leaves enter through {@link Tape.param} (gradient
 * wanted) or {@link Tape.constant} (frozen: base weights, inputs, masks); the differentiable
 * functions in `src/autograd/` take and return {@link Var}s and record a backward closure on the
 * tape *only when an input requires a gradient*: a chain through frozen weights records nothing
 * and never allocates gradient memory, and a closure computes only the input gradients that are
 * needed (a frozen `W` in `x·Wᵀ` costs `dx`, never `dW`).
 *
 * {@link Tape.backward} seeds `d(loss) = 1`, walks the records in reverse (recording order is a
 * topological order), accumulates gradients by addition, frees each intermediate gradient as soon
 * as its record has run, and leaves the results on the leaves' {@link Var.grad}. Gradients live in
 * the ledger category `"grads"`. A tape runs backward once; {@link Tape.dispose} then frees every
 * value and gradient it owns (leaf values belong to the caller; take a gradient out with
 * {@link Var.takeGrad} to keep it past `dispose`).
 *
 * @example Gradient of a linear layer's loss
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { crossEntropy, linear, Tape } from "./mod.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * using tape = new Tape();
 * const x = tape.constant(Tensor.fromArray(dev, [1, 2, 3, 4, 5, 6], [2, 3])); // [N, in], frozen
 * const w = tape.param(Tensor.fromArray(dev, new Float32Array(12), [4, 3])); // [out, in]
 * const logits = linear(x, w); // [2, 3] x [4, 3]ᵀ -> [2, 4]
 * const loss = crossEntropy(logits, Tensor.fromArray(dev, new Int32Array([0, 3]))); // []
 * tape.backward(loss);
 * assert.ok(w.grad!.shape.join() === "4,3" && x.grad === null);
 * assert.ok(dev.ledger.current("grads") === 4 * 3 * 4);
 * ```
 * @module
 */
import { add } from "../ops/elementwise.ts";
import { type Shape, Tensor } from "../tensor/tensor.ts";

/**
 * A backward closure: given `dy` (the gradient of the output) and which inputs need a gradient,
 * returns one gradient per input, shaped like that input (`null` where not needed). It must not
 * dispose `dy`; the tape does.
 */
export type BackwardFn = (dy: Tensor, needs: readonly boolean[]) => (Tensor | null)[];

interface Record {
  out: Var;
  inputs: readonly Var[];
  backward: BackwardFn;
  label: string;
}

/** A tensor on a tape: its value, whether it wants a gradient, and the gradient after backward. */
export class Var {
  /** The forward value. Owned by the tape unless this is a leaf. */
  readonly value: Tensor;
  /** True for a param and for every result that depends on one. */
  readonly requiresGrad: boolean;
  /** True for `tape.param` / `tape.constant` values (not produced by a recorded function). */
  readonly isLeaf: boolean;
  readonly tape: Tape;
  #grad: Tensor | null = null;

  /** Use {@link Tape.param}, {@link Tape.constant} or a differentiable function instead. */
  constructor(tape: Tape, value: Tensor, requiresGrad: boolean, isLeaf: boolean) {
    this.tape = tape;
    this.value = value;
    this.requiresGrad = requiresGrad;
    this.isLeaf = isLeaf;
  }

  /** Shape of the value. */
  get shape(): Shape {
    return this.value.shape;
  }

  /** d(loss)/d(this) after {@link Tape.backward}: set on leaves that require a gradient, else null. */
  get grad(): Tensor | null {
    return this.#grad;
  }

  /** Returns the gradient and hands its ownership to the caller (the tape no longer frees it). */
  takeGrad(): Tensor | null {
    const g = this.#grad;
    this.#grad = null;
    return g;
  }

  /** @internal Used by the tape. */
  setGrad(g: Tensor | null): void {
    this.#grad = g;
  }

  toString(): string {
    return `Var(${this.value.dtype}[${this.shape}]${this.requiresGrad ? ", requiresGrad" : ""})`;
  }
}

/** Files a tensor's bytes under the ledger category `"grads"` (bookkeeping only, no copy). */
export function asGrad(t: Tensor): Tensor {
  t.device.ledger.retag(t.storage.allocation, "grads");
  return t;
}

/** Records differentiable functions for one forward pass, then runs backward once. */
export class Tape {
  #records: Record[] = [];
  #owned: Var[] = [];
  #leaves: Var[] = [];
  #kept: Tensor[] = [];
  #state: "recording" | "done" | "disposed" = "recording";

  /** A leaf that wants a gradient (a trainable weight). The caller keeps owning `value`. */
  param(value: Tensor): Var {
    return this.#leaf(value, true);
  }

  /** A leaf without a gradient (a frozen weight, an input). The caller keeps owning `value`. */
  constant(value: Tensor): Var {
    return this.#leaf(value, false);
  }

  /**
   * Hands `t` to the tape, which frees it on {@link Tape.dispose}: for tensors a backward closure
   * reads that no Var holds (gather indices, masks, targets). Returns `t`.
   */
  keep<T extends Tensor>(t: T): T {
    this.#check("keep a tensor");
    this.#kept.push(t);
    return t;
  }

  /** Number of recorded backward closures (functions of a frozen-only chain record nothing). */
  get size(): number {
    return this.#records.length;
  }

  /**
   * Records the result of a differentiable function. Called by the functions in `src/autograd/`;
   * call it to add your own: `backward` runs only if some input requires a gradient.
   *
   * @param label Name shown in errors, e.g. `"matmul"`.
   * @param inputs The function's Var inputs (on this tape).
   * @param value The forward result; the tape owns it from now on.
   */
  record(label: string, inputs: readonly Var[], value: Tensor, backward: BackwardFn): Var {
    this.#check(`record ${label}`);
    for (const v of inputs) {
      if (v.tape !== this) {
        throw new TypeError(`Cannot record ${label}: an input Var belongs to another tape`);
      }
    }
    const requiresGrad = inputs.some((v) => v.requiresGrad);
    const out = new Var(this, value, requiresGrad, false);
    this.#owned.push(out);
    if (requiresGrad) this.#records.push({ out, inputs, backward, label });
    return out;
  }

  /**
   * Reverse pass from a scalar `loss`: fills `grad` on every param the loss depends on
   * (accumulated over every use). Intermediate gradients are freed as soon as they are consumed.
   *
   * @param loss A Var of one element (shape `[]` or `[1]`) on this tape.
   * @throws {TypeError} when `loss` is not a scalar of this tape or depends on no param.
   * @throws {Error} when the tape already ran backward or was disposed.
   */
  backward(loss: Var): void {
    this.#check("run backward");
    if (loss.tape !== this) throw new TypeError("Cannot run backward: loss belongs to another tape");
    if (loss.value.size !== 1) {
      throw new TypeError(`Cannot run backward: loss must be a scalar: received shape [${loss.shape}]`);
    }
    if (!loss.requiresGrad) {
      throw new TypeError(
        "Cannot run backward: loss does not depend on any param; wrap trainable tensors with tape.param()",
      );
    }
    this.#state = "done";
    const pending = new Map<Var, Tensor>();
    const seed = Tensor.fromArray(loss.value.device, new Float32Array([1]), loss.shape, {
      category: "grads",
    });
    pending.set(loss, seed);
    for (let i = this.#records.length - 1; i >= 0; i--) {
      const { out, inputs, backward, label } = this.#records[i];
      const dy = pending.get(out);
      if (!dy) continue; // not on the loss's path
      pending.delete(out);
      const needs = inputs.map((v) => v.requiresGrad);
      const grads = backward(dy, needs);
      dy.dispose();
      inputs.forEach((v, j) => {
        const g = grads[j];
        if (!needs[j] || !g) {
          g?.dispose();
          return;
        }
        if (g.shape.length !== v.shape.length || g.shape.some((d, k) => d !== v.shape[k])) {
          throw new Error(`Backward of ${label} returned a gradient of shape [${g.shape}] for [${v.shape}]`);
        }
        const prev = pending.get(v);
        if (!prev) pending.set(v, asGrad(g));
        else {
          pending.set(v, asGrad(add(prev, g)));
          prev.dispose();
          g.dispose();
        }
      });
    }
    for (const [v, g] of pending) {
      if (v.isLeaf) v.setGrad(g); // a tape runs backward once, so leaves hold no gradient yet
      else g.dispose();
    }
    this.#records = []; // drop closures (and what they capture)
  }

  /** Frees every value the tape produced and every gradient still on its Vars. Idempotent. */
  dispose(): void {
    if (this.#state === "disposed") return;
    this.#state = "disposed";
    for (const v of this.#owned) v.value.dispose();
    for (const v of this.#leaves) v.takeGrad()?.dispose();
    for (const t of this.#kept) t.dispose();
    this.#kept = [];
    this.#owned = [];
    this.#leaves = [];
    this.#records = [];
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #leaf(value: Tensor, requiresGrad: boolean): Var {
    this.#check(requiresGrad ? "add a param" : "add a constant");
    if (value.disposed) throw new TypeError(`Cannot add ${value} to the tape: it was disposed`);
    if (requiresGrad && value.dtype !== "f32") {
      throw new TypeError(`Cannot add a param to the tape: it must be f32: received ${value.dtype}`);
    }
    const v = new Var(this, value, requiresGrad, true);
    this.#leaves.push(v);
    return v;
  }

  #check(what: string): void {
    if (this.#state === "disposed") throw new Error(`Cannot ${what}: the tape was disposed`);
    if (this.#state === "done") {
      throw new Error(
        `Cannot ${what}: the tape already ran backward (its records are freed); record a new tape per step`,
      );
    }
  }
}
