/**
 * `ondemand`: the DeepSpeed-MII-like baseline. Nothing stays on the device: each expert the
 * routing asks for is uploaded whole into one of `K` streaming slots (ledger category `staging`),
 * used, and overwritten by the next; a prefill that needs more than `K` experts in a layer streams
 * them `K` at a time. Bytes per decoded token: `K · (MoE layers) · (bytes of an f32 expert)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OnDemandPolicy } from "./ondemand.ts";
 * import { HostExperts } from "../host_experts.ts";
 * const store = await HostExperts.fromCheckpoint("test/fixtures/models/mixtral-top2-f32");
 * const policy = new OnDemandPolicy();
 * assert.equal(policy.minimumBytes(store), 2 * store.expertBytes()); // top-2: two slots
 * ```
 * @module
 */
import type { HostExperts } from "../host_experts.ts";
import { chunks, type LoadedGroup, type PolicyContext, type WholeExpertPolicy } from "../policy.ts";
import { ExpertSlots } from "../slots.ts";
import type { TransferEngine } from "../transfer.ts";

/** Every routed expert streamed whole, every time. */
export class OnDemandPolicy implements WholeExpertPolicy {
  readonly name = "ondemand" as const;
  #slots: ExpertSlots | undefined;
  #transfers: TransferEngine | undefined;
  #k = 0;

  minimumBytes(store: HostExperts): number {
    return store.config.topK * store.expertBytes();
  }

  plannedBytes(store: HostExperts): number {
    return this.minimumBytes(store);
  }

  /** One projection of a whole expert. */
  maxTransferBytes(store: HostExperts): number {
    return store.matrixValues() * store.bytesPerValue;
  }

  setup({ device, store, transfers }: PolicyContext): void {
    this.#k = store.config.topK;
    this.#transfers = transfers;
    this.#slots = new ExpertSlots(device, {
      slots: this.#k,
      hidden: store.hidden,
      intermediate: store.intermediate,
      dtype: store.deviceDType,
      category: "staging",
    });
  }

  groups(_layer: number, needed: readonly number[]): number[][] {
    return chunks(needed, this.#k); // K slots: a prefill streams K experts at a time
  }

  load(layer: number, group: readonly number[]): LoadedGroup {
    const slotOf = new Map<number, number>();
    group.forEach((e, j) => {
      this.#transfers!.uploadExpert(layer, e, this.#slots!, j, "demand");
      slotOf.set(e, j);
    });
    return { slots: this.#slots!, slotOf, hits: 0 };
  }

  describe(): Record<string, string | number> {
    return { slots: this.#k };
  }

  dispose(): void {
    this.#slots?.dispose();
    this.#slots = undefined;
  }
}
