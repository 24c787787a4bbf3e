/**
 * What every `nn` module shares: named parameters and explicit disposal. Modules are plain
 * classes holding tensors (no base class); this file holds the few helpers they use.
 *
 * @example Count a module's parameters
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { Linear } from "./linear.ts";
 * import { countParameters } from "./module.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * using lin = new Linear(Tensor.zeros(dev, [3, 4]), Tensor.zeros(dev, [3])); // [out, in], [out]
 * assert.ok(countParameters(lin.parameters()) === 15);
 * ```
 * @module
 */
import type { Tensor } from "../tensor/tensor.ts";

/** Parameters by dotted name, in a stable order (HF `state_dict` style). */
export type NamedParameters = Map<string, Tensor>;

/** A module: it owns tensors, names them, and returns them to the ledger on `dispose()`. */
export interface Module {
  /** Parameters by local dotted name (e.g. `q_proj.weight`). */
  parameters(): NamedParameters;
  /** Disposes every tensor the module owns. */
  dispose(): void;
}

/** Copies `params` into `into` with `prefix.` before every name. */
export function addPrefixed(into: NamedParameters, prefix: string, params: NamedParameters): void {
  for (const [name, t] of params) into.set(prefix ? `${prefix}.${name}` : name, t);
}

/** Total number of elements over `params`. */
export function countParameters(params: NamedParameters | Iterable<Tensor>): number {
  let n = 0;
  for (const t of params instanceof Map ? params.values() : params) n += t.size;
  return n;
}

/** Throws a `TypeError` unless `t` is f32 of exactly `shape`. */
export function expectParameter(what: string, name: string, t: Tensor, shape: readonly number[]): void {
  if (t.dtype !== "f32" || t.rank !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new TypeError(
      `Cannot create ${what}: ${name} must be f32 of shape [${shape}]: received ${t.dtype}[${t.shape}]`,
    );
  }
}
