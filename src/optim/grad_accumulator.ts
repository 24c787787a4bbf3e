/**
 * Gradient accumulation over micro-batches: sums each parameter's gradient into a device
 * buffer (ledger category `"grads"`) and reports the factor that turns the sum into a mean.
 *
 * `transformers.Trainer` divides each micro-batch loss by the number of accumulation steps;
 * passing `accumulator.meanScale` as `gradScale` to `AdamW.step` is the same update.
 *
 * @example Two micro-batches, then one optimizer step
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { GradAccumulator } from "./grad_accumulator.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * using acc = new GradAccumulator();
 * for (const x of [1, 3]) {
 *   using g = Tensor.fromArray(dev, [x, 2 * x]);
 *   acc.add([{ name: "w", grad: g }]);
 * }
 * const [{ grad }] = acc.grads();
 * assert.ok(acc.microSteps === 2 && acc.meanScale === 0.5);
 * assert.ok((await grad.toArray())[1] === 8); // 2 + 6
 * acc.reset();
 * ```
 * @module
 */
import { axpyInPlace } from "../ops/adamw.ts";
import { Tensor } from "../tensor/tensor.ts";

/** One parameter's gradient, by name. */
export interface NamedGrad {
  readonly name: string;
  readonly grad: Tensor;
}

/** Sums gradients across micro-batches; `reset()` after each optimizer step. */
export class GradAccumulator implements Disposable {
  #sums = new Map<string, Tensor<"f32">>();
  #micro = 0;

  /** Number of `add` calls since the last reset. */
  get microSteps(): number {
    return this.#micro;
  }

  /** `1 / microSteps` (1 before the first add): the `gradScale` that averages the sums. */
  get meanScale(): number {
    return this.#micro === 0 ? 1 : 1 / this.#micro;
  }

  /**
   * Adds one micro-batch's gradients (the caller still owns and disposes `grads`). A name seen
   * for the first time gets a zeroed buffer, so parameters may skip micro-batches.
   *
   * @throws {TypeError} When a gradient's shape differs from its buffer's.
   */
  add(grads: readonly NamedGrad[]): void {
    for (const { name, grad } of grads) this.#accumulate(name, grad);
    this.#micro++;
  }

  #accumulate(name: string, grad: Tensor): void {
    let sum = this.#sums.get(name);
    if (sum === undefined) {
      sum = Tensor.zeros(grad.device, grad.shape, { category: "grads", label: `grad_sum ${name}` });
      this.#sums.set(name, sum);
    }
    axpyInPlace(sum, grad, 1);
  }

  /**
   * As {@link add}, but the accumulator takes ownership of `grads` (f32, ledger category `grads`,
   * e.g. from `TrainContext.takeGrad`): a name seen for the first time keeps its gradient as the
   * sum (no zero-fill, no copy); otherwise the gradient is added and freed.
   *
   * @throws {TypeError} When a gradient's shape differs from its buffer's.
   */
  addOwned(grads: readonly NamedGrad[]): void {
    for (const { name, grad } of grads) {
      const sum = this.#sums.get(name);
      if (sum === undefined && grad.dtype === "f32") {
        this.#sums.set(name, grad as Tensor<"f32">);
        continue;
      }
      try {
        this.#accumulate(name, grad);
      } finally {
        grad.dispose();
      }
    }
    this.#micro++;
  }

  /** The summed gradients (owned by the accumulator: valid until `reset()`). */
  grads(): NamedGrad[] {
    return [...this.#sums].map(([name, grad]) => ({ name, grad }));
  }

  /** The summed gradient of `name`, if any. */
  get(name: string): Tensor<"f32"> | undefined {
    return this.#sums.get(name);
  }

  /** Frees the buffers and starts a new accumulation. */
  reset(): void {
    for (const t of this.#sums.values()) t.dispose();
    this.#sums.clear();
    this.#micro = 0;
  }

  /** Same as `reset()`. */
  [Symbol.dispose](): void {
    this.reset();
  }
}
