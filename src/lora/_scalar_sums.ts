/**
 * Weighted sums of one-element tensors kept on the device, so a step's loss and extra metrics
 * cost one readback each at the end of the step instead of one sync per micro-batch.
 * @module
 */
import { add, scale } from "../ops/elementwise.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** Σ wᵢ·xᵢ per name, for device scalars and host numbers; `read()` returns Σ wᵢ·xᵢ / Σ wᵢ. */
export class ScalarSums implements Disposable {
  #device = new Map<string, Tensor>();
  #host = new Map<string, number>();
  #weights = new Map<string, number>();

  /** Adds `w · x` to `name`; `x` is a one-element tensor (copied) or a number. */
  add(name: string, x: Tensor | number, w: number): void {
    this.#weights.set(name, (this.#weights.get(name) ?? 0) + w);
    if (typeof x === "number") {
      this.#host.set(name, (this.#host.get(name) ?? 0) + w * x);
      return;
    }
    if (x.size !== 1) {
      throw new TypeError(`Cannot log "${name}": expected a one-element value: received shape [${x.shape}]`);
    }
    using flat = x.reshape([1]);
    const term = scale(flat, w); // [1]
    const prev = this.#device.get(name);
    if (prev === undefined) this.#device.set(name, term);
    else {
      this.#device.set(name, add(prev, term)); // [1] + [1] -> [1]
      prev.dispose();
      term.dispose();
    }
  }

  /** The weighted means by name (NaN where the weights sum to 0); frees the device sums. */
  async read(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const [name, w] of this.#weights) {
      const t = this.#device.get(name);
      const sum = (t ? (await t.toArray())[0] as number : 0) + (this.#host.get(name) ?? 0);
      out[name] = w === 0 ? NaN : sum / w;
    }
    this.dispose();
    return out;
  }

  /** Frees the device sums and forgets everything. */
  dispose(): void {
    for (const t of this.#device.values()) t.dispose();
    this.#device.clear();
    this.#host.clear();
    this.#weights.clear();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
