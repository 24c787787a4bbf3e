/**
 * `resident`: every expert of every MoE layer on the device (ledger category `experts`), uploaded
 * once at setup; nothing moves while decoding. The upper bound of every offloading policy, when
 * the budget holds the whole model.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ResidentPolicy } from "./resident.ts";
 * import { HostExperts } from "../host_experts.ts";
 * const store = await HostExperts.fromCheckpoint("test/fixtures/models/mixtral-top2-f32");
 * const policy = new ResidentPolicy();
 * assert.equal(policy.minimumBytes(store), store.totalDeviceBytes());
 * ```
 * @module
 */
import type { HostExperts } from "../host_experts.ts";
import type { LoadedGroup, PolicyContext, WholeExpertPolicy } from "../policy.ts";
import { ExpertSlots } from "../slots.ts";

/** Every expert resident. */
export class ResidentPolicy implements WholeExpertPolicy {
  readonly name = "resident" as const;
  #layers = new Map<number, ExpertSlots>();
  #identity = new Map<number, number>();

  minimumBytes(store: HostExperts): number {
    return store.totalDeviceBytes();
  }

  plannedBytes(store: HostExperts): number {
    return store.totalDeviceBytes();
  }

  /** One projection, staged while the experts are uploaded at setup. */
  setupScratchBytes(store: HostExperts): number {
    return store.matrixValues() * store.bytesPerValue;
  }

  setup({ device, store, transfers }: PolicyContext): void {
    for (const l of store.layers) {
      const slots = new ExpertSlots(device, {
        slots: store.numExperts,
        hidden: store.hidden,
        intermediate: store.intermediate,
        dtype: store.deviceDType,
        category: "experts",
      });
      this.#layers.set(l, slots);
      for (let e = 0; e < store.numExperts; e++) transfers.uploadExpert(l, e, slots, e, "resident");
    }
    for (let e = 0; e < store.numExperts; e++) this.#identity.set(e, e);
  }

  groups(_layer: number, needed: readonly number[]): number[][] {
    return [[...needed]];
  }

  load(layer: number, group: readonly number[]): LoadedGroup {
    return { slots: this.#layers.get(layer)!, slotOf: this.#identity, hits: group.length };
  }

  describe(): Record<string, string | number> {
    return { slots: this.#layers.size * (this.#identity.size) };
  }

  dispose(): void {
    for (const s of this.#layers.values()) s.dispose();
    this.#layers.clear();
  }
}
