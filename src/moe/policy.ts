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
 * budget leaves); see their files.
 * @module
 */
import type { ExpertSlots } from "./slots.ts";
import type { HostExperts } from "./host_experts.ts";
import type { TransferEngine } from "./transfer.ts";
import type { Device } from "../device/device.ts";

/** Policy names, as the command line takes them. */
export const POLICY_NAMES = ["resident", "ondemand", "cached"] as const;

/** A policy name. */
export type PolicyName = typeof POLICY_NAMES[number];

/** What a policy gets at setup. */
export interface PolicyContext {
  readonly device: Device;
  readonly store: HostExperts;
  readonly transfers: TransferEngine;
}

/** The slots that hold one group's experts, and each expert's slot. */
export interface LoadedGroup {
  readonly slots: ExpertSlots;
  /** Slot of each expert of the group. */
  readonly slotOf: ReadonlyMap<number, number>;
  /** Experts of the group that were already on the device (no transfer). */
  readonly hits: number;
}

/** Where expert bytes live and what moves. */
export interface OffloadPolicy {
  readonly name: PolicyName;
  /** The fewest device bytes the policy can run in (slots for one decode step). */
  minimumBytes(store: HostExperts): number;
  /** Device bytes the policy will allocate when `freeBytes` are left for it (≥ the minimum). */
  plannedBytes(store: HostExperts, freeBytes: number): number;
  /** Allocates the slots (and uploads what stays resident). */
  setup(ctx: PolicyContext, freeBytes: number): void;
  /** The needed experts of `layer` (distinct, ascending) in groups that each fit the slots at once. */
  groups(layer: number, needed: readonly number[]): number[][];
  /** Makes one group's experts usable on the device (uploading the missing ones). */
  load(layer: number, group: readonly number[]): LoadedGroup;
  /** A description for tables: slots, cache kind. */
  describe(): Record<string, string | number>;
  dispose(): void;
}

/** Splits `items` into consecutive chunks of at most `n`. */
export function chunks<T>(items: readonly T[], n: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += n) out.push(items.slice(i, i + n));
  return out;
}
