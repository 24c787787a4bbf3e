/**
 * Mask pruners as objects: the {@link Pruner} interface and the registry `pruneWeight()`,
 * `pruneLinears()` and the sweeps look methods up in. A new method is one file that builds a
 * `Pruner` and calls {@link registerPruner} when it loads; `pruneWeight(w, shape, { method: "<its
 * name>", sparsity })` then checks the sparsity and the input norms it declares and runs it.
 * Magnitude, Wanda and 2:4 register themselves this way (`masks.ts`).
 *
 * @example A toy method: prune the first ⌊S·n⌋ weights (registered once per process)
 * ```ts
 * import assert from "node:assert/strict";
 * import { pruneWeight } from "./masks.ts";
 * import { getPruner, listPruners, registerPruner } from "./pruner.ts";
 * registerPruner({
 *   name: "first-doc-example",
 *   description: "prunes the leading weights (a doc example)",
 *   inputNorms: "unused",
 *   mask(w, shape, { sparsity }) {
 *     const mask = new Uint8Array(w.length).fill(1).fill(0, 0, Math.floor(sparsity * w.length));
 *     return { mask, shape, sparsity: Math.floor(sparsity * w.length) / w.length, method: "first-doc-example" };
 *   },
 * });
 * const r = pruneWeight(Float32Array.of(1, 2, 3, 4), [1, 4], { method: "first-doc-example", sparsity: 0.5 });
 * assert.deepEqual([...r.pruned], [0, 0, 3, 4]);
 * assert.ok(listPruners().includes("wanda") && getPruner("first-doc-example").inputNorms === "unused");
 * ```
 * @module
 */

/** A pruning mask of one weight. */
export interface WeightMask {
  /** `[rows·cols]` row-major: 1 keeps a weight, 0 prunes it. */
  readonly mask: Uint8Array;
  /** `[rows, cols]` (`[out, in]`). */
  readonly shape: readonly [number, number];
  /** Fraction of weights pruned (zeros in `mask`). */
  readonly sparsity: number;
  /** The pruner's name (`"magnitude"`, `"wanda"`, `"2:4"`, …), or another N:M pattern such as `"4:8"`. */
  readonly method: string;
}

/** What a pruner's {@link Pruner.mask} receives, checked by `pruneWeight()`. */
export interface MaskRequest {
  /** Fraction to prune, in [0, 1) (the pruner's `fixedSparsity` when it has one). */
  readonly sparsity: number;
  /** `[cols]` per-input-feature `‖X_j‖₂` from calibration, when given (always, when `inputNorms` is required). */
  readonly inputNorms?: Float32Array;
}

/** An unstructured or semi-structured pruner of one `[rows, cols]` weight (`[out, in]`), on the host. */
export interface Pruner {
  /** The `method` callers pass, e.g. `"wanda"`; also `WeightMask.method`. */
  readonly name: string;
  /** One line for listings and errors. */
  readonly description: string;
  /**
   * Whether it reads calibration input norms: `"required"` (Wanda), `"optional"` (2:4 scores as
   * Wanda when given) or `"unused"` (magnitude; callers then do not pass them).
   */
  readonly inputNorms: "required" | "optional" | "unused";
  /** The sparsity it always prunes (2:4: 0.5); absent when the caller chooses one in [0, 1). */
  readonly fixedSparsity?: number;
  /**
   * Why it cannot prune a weight of `shape`, as a phrase (2:4: `"the 18 input columns are not
   * divisible by 4"`), or null when it can. Its `mask` throws on such a weight too; callers that
   * prune many weights ask first, so that none is written before a bad one is found.
   */
  unfit?(shape: readonly [number, number]): string | null;
  /** The mask of `w` `[rows·cols]` row-major; it must not modify `w`. */
  mask(w: Float32Array, shape: readonly [number, number], request: MaskRequest): WeightMask;
}

const PRUNERS = new Map<string, Pruner>();

/**
 * Adds `pruner` to the methods `pruneWeight()` knows, under `pruner.name`.
 * @throws {TypeError} when the name is empty or taken, or `fixedSparsity` is outside [0, 1)
 */
export function registerPruner(pruner: Pruner): void {
  const { name } = pruner;
  const what = `Cannot register pruner ${JSON.stringify(name)}`;
  if (typeof name !== "string" || name === "") {
    throw new TypeError(`${what}: its name must be a non-empty string`);
  }
  if (PRUNERS.has(name)) {
    throw new TypeError(`${what}: a pruner of that name is already registered; pick another name`);
  }
  const fixed = pruner.fixedSparsity;
  if (fixed !== undefined && !(fixed >= 0 && fixed < 1)) {
    throw new TypeError(`${what}: fixedSparsity must be in [0, 1): received ${fixed}`);
  }
  if (!["required", "optional", "unused"].includes(pruner.inputNorms)) {
    throw new TypeError(
      `${what}: inputNorms must be "required", "optional" or "unused": received ${pruner.inputNorms}`,
    );
  }
  PRUNERS.set(name, pruner);
}

/**
 * The pruner registered as `name`.
 * @throws {TypeError} naming the registered methods when there is none
 */
export function getPruner(name: string): Pruner {
  const p = PRUNERS.get(name);
  if (!p) {
    throw new TypeError(
      `Cannot prune weight: unknown method ${JSON.stringify(name)}: expected one of ${
        listPruners().join(", ")
      } ` +
        `(registerPruner adds one)`,
    );
  }
  return p;
}

/** The names of the registered pruners, in registration order (the built-ins first). */
export function listPruners(): string[] {
  return [...PRUNERS.keys()];
}
