/**
 * Offload policies by name, as the command line and the benchmarks name them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPolicy } from "./create_policy.ts";
 * assert.equal(createPolicy("cached", { cached: { bits: 4 } }).name, "cached");
 * assert.throws(() => createPolicy("lru"), /Unknown offload policy "lru"/);
 * ```
 * @module
 */
import { CachedPolicy, type CachedPolicyOptions } from "./policies/cached.ts";
import { FloePolicy, type FloePolicyOptions } from "./policies/floe.ts";
import { OnDemandPolicy } from "./policies/ondemand.ts";
import { ResidentPolicy } from "./policies/resident.ts";
import { type OffloadPolicy, POLICY_NAMES } from "./policy.ts";

/** Settings of the policies {@link createPolicy} builds by name. */
export interface PolicySettings {
  /** `cached` (default: LRU, f32 experts, no prefetch). */
  cached?: CachedPolicyOptions;
  /** `floe` (default: 2-bit up, sparsity 0.8). */
  floe?: Partial<FloePolicyOptions>;
}

/**
 * A policy object from its name.
 *
 * @throws {TypeError} for a name that is not a policy
 */
export function createPolicy(name: string, settings: PolicySettings = {}): OffloadPolicy {
  if (name === "resident") return new ResidentPolicy();
  if (name === "ondemand") return new OnDemandPolicy();
  if (name === "cached") return new CachedPolicy(settings.cached);
  if (name === "floe") return new FloePolicy({ sparsity: 0.8, ...settings.floe });
  throw new TypeError(`Unknown offload policy "${name}": expected one of ${POLICY_NAMES.join(", ")}`);
}
