/**
 * `DetachedExperts`: the place of a MoE layer's experts when their weights are not on the device
 * (`loadModel(dir, { device, experts: "skip" })`): it knows the layer's sizes, holds no tensors,
 * and refuses to run. Code that keeps the experts elsewhere (an offloading runtime) computes the
 * experts itself, or swaps an implementation in with `SparseMoE.replaceExperts`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DetachedExperts } from "./detached_experts.ts";
 * const experts = new DetachedExperts(3, { numExperts: 8, hidden: 16, intermediate: 24 });
 * assert.equal(experts.parameters().size, 0);
 * assert.throws(() => experts.forward(), /experts of layer 3 are not on the device/);
 * ```
 * @module
 */
import type { NamedParameters } from "./module.ts";
import type { Experts } from "./moe_types.ts";

/** Sizes of a layer's experts. */
export interface ExpertSizes {
  numExperts: number;
  hidden: number;
  intermediate: number;
}

/** A MoE layer's experts whose weights were not loaded. */
export class DetachedExperts implements Experts {
  readonly layer: number;
  readonly numExperts: number;
  readonly hidden: number;
  readonly intermediate: number;

  constructor(layer: number, sizes: ExpertSizes) {
    this.layer = layer;
    this.numExperts = sizes.numExperts;
    this.hidden = sizes.hidden;
    this.intermediate = sizes.intermediate;
  }

  /** @throws {Error} always: there are no weights to compute with */
  forward(): never {
    throw new Error(
      `Cannot run the experts of layer ${this.layer}: the experts of layer ${this.layer} are not on the device ` +
        `(the model was loaded with experts: "skip"); run it through an offload runtime (src/moe/) or load ` +
        `it with experts: "load"`,
    );
  }

  /** No parameters: nothing is held. */
  parameters(): NamedParameters {
    return new Map();
  }

  dispose(): void {}

  [Symbol.dispose](): void {}
}
