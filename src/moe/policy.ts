/**
 * The interface every offload policy implements, so one runtime decodes the same model under each:
 * where expert bytes live on the device, and what moves when routing asks for experts.
 *
 * Per MoE layer and forward, the runtime reads the routing back (one sync), collects the distinct
 * experts it needs, and asks the policy for {@link OffloadPolicy.groups}: the needed experts split
 * into groups that each fit the policy's slots at once. For each group it calls
 * {@link OffloadPolicy.load} (which uploads what is missing and says which were already there) and
 * runs the group's share of the expert compute from the returned slots. Between two groups of one
 * layer the runtime waits for the device (a sync), since the next group's uploads may overwrite
 * slots the previous group's compute reads.
 *
 * Policies: `resident` (every expert on the device), `ondemand` (each routed expert uploaded whole
 * when needed and dropped after), `cached` (an LRU or LFU cache of whole experts in the slots the
 * budget leaves) move whole experts ({@link WholeExpertPolicy}); `floe` runs each MoE layer itself
 * ({@link StepPolicy}: resident quantized up projections, streamed rows, prediction, reloads).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { chunks, POLICY_NAMES } from "./policy.ts";
 * assert.deepEqual(chunks([0, 2, 5], 2), [[0, 2], [5]]); // three needed experts, two slots: two groups
 * assert.ok(POLICY_NAMES.includes("floe"));
 * ```
 * @module
 */
import type { Device } from "../device/device.ts";
import type { SparseMoE } from "../nn/sparse_moe.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { HostExperts } from "./host_experts.ts";
import type { SyncClock, TransferEngine } from "./transfer.ts";

/** Policy names, as the command line takes them. */
export const POLICY_NAMES = ["resident", "ondemand", "cached", "floe"] as const;

/** A policy name. */
export type PolicyName = typeof POLICY_NAMES[number];

/** What a policy gets at setup. */
export interface PolicyContext {
  readonly device: Device;
  readonly store: HostExperts;
  readonly transfers: TransferEngine;
}

/** Device slots of whole experts that compute the routed experts (`ExpertSlots`, `QuantSlots`). */
export interface SlotCompute {
  /** `[T, C]`: `Σ_k weights[t,k] · expert in slot slotIdx[t,k] (x_t)` over the pairs `mask` covers. */
  forward(x: Tensor, slotIdx: Int32Array, weights: Tensor<"f32">, mask?: Float32Array): Tensor<"f32">;
}

/** The slots that hold one group's experts, and each expert's slot. */
export interface LoadedGroup {
  readonly slots: SlotCompute;
  /** Slot of each expert of the group. */
  readonly slotOf: ReadonlyMap<number, number>;
  /** Experts of the group that were already on the device (no transfer). */
  readonly hits: number;
}

/** What every policy provides. */
interface PolicyBase {
  readonly name: PolicyName;
  /** The fewest device bytes the policy can run in (slots for one decode step, resident parts). */
  minimumBytes(store: HostExperts): number;
  /** Device bytes the setup uses only while it runs (quantizing experts; freed before any forward). */
  setupScratchBytes?(store: HostExperts): number;
  /**
   * The largest upload one step sends before its submit: upload staging that lives next to the
   * step's activations (the transfer path submits after every write).
   */
  maxTransferBytes?(store: HostExperts): number;
  /** Device bytes the policy will allocate when `freeBytes` are left for it (≥ the minimum). */
  plannedBytes(store: HostExperts, freeBytes: number): number;
  /** Allocates the slots and uploads what stays resident. */
  setup(ctx: PolicyContext, freeBytes: number): void | Promise<void>;
  /** A description for tables: slots, cache kind, bits. */
  describe(): Record<string, string | number>;
  dispose(): void;
}

/** A policy that moves whole experts; the runtime computes from its slots. */
export interface WholeExpertPolicy extends PolicyBase {
  /** The needed experts of `layer` (distinct, ascending) in groups that each fit the slots at once. */
  groups(layer: number, needed: readonly number[]): number[][];
  /** Makes one group's experts usable on the device (uploading the missing ones). */
  load(layer: number, group: readonly number[]): LoadedGroup;
}

/** One MoE layer handed to a {@link StepPolicy}. */
export interface MoeStep {
  readonly layer: number;
  readonly moe: SparseMoE;
  /** `[T, C]` the MoE input. */
  readonly x: Tensor;
  /** The next decoder layer when it is a MoE layer (for prefetch). */
  readonly next: { readonly layer: number; readonly moe: SparseMoE } | undefined;
  /** Every host round trip goes through it (counted). */
  readonly clock: SyncClock;
  /** Records that `needed` experts were asked for, `hits` of them already on the device. */
  count(needed: number, hits: number): void;
}

/** A policy that runs each MoE layer itself (FloE: sparse rows, prediction, reloads). */
export interface StepPolicy extends PolicyBase {
  /** `[T, C]` the layer's routed expert output; at most one sync unless the policy must wait. */
  step(s: MoeStep): Promise<Tensor<"f32">>;
}

/** Where expert bytes live and what moves. */
export type OffloadPolicy = WholeExpertPolicy | StepPolicy;

/** Splits `items` into consecutive chunks of at most `n`. */
export function chunks<T>(items: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += n) out.push(items.slice(i, i + n));
  return out;
}
