/**
 * Folding LoRA adapters into their base weights and back, as PEFT's `LoraLayer.merge` /
 * `unmerge` / `get_delta_weight` do ([LoRA](https://arxiv.org/abs/2106.09685) §4.1: "we can
 * explicitly compute and store W = W0 + BA and perform inference as usual"):
 *
 * ```
 * merge:    W ← W + scaling · B · A        // [out, r] x [r, in] -> [out, in]
 * unmerge:  W ← W − scaling · B · A
 * ```
 *
 * in f32 with the device's `matmul` (the CPU backend runs its TypeScript reference of the same op);
 * for an expert of a stacked `[E, out, in]` tensor only that expert's slice changes. While merged,
 * adapters are detached so the forward does not apply them twice.
 *
 * **Safe merge** (`safeMerge: true`, Ferry's default; PEFT's `safe_merge` defaults to false):
 * every module is checked before any weight changes; when a merged weight would hold NaN or Inf
 * the merge is refused with an error naming the module, and nothing is modified. The check reads
 * back only the factors (`r·(in + out)` values, not the `out·in` merged weight): `W + ΔW` is
 * finite for a finite `W` exactly when `A` and `B` are finite and nothing overflows, and
 * `|ΔW| ≤ |scaling| Σ_k max|B[:, k]| · max|A[k, :]|` bounds every partial sum of the product. Only
 * when that bound exceeds 1e30 is the merged weight itself computed and read back. (Base
 * weights are assumed finite, as loading them leaves them.)
 *
 * Most callers use {@linkcode LoraModel.merge} / `unmerge` / `mergeAndUnload`, which call these.
 *
 * @example The delta of one adapter
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { deltaWeight } from "./merge.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const a = Tensor.fromArray(dev, [1, 2, 3], [1, 3]); // [r=1, in=3]
 * const b = Tensor.fromArray(dev, [1, -1], [2, 1]); // [out=2, r=1]
 * using d = deltaWeight({ a, b, scaling: 2, dropout: 0 }); // [2, 3]
 * assert.ok((await d.toArray()).join() === "2,4,6,-2,-4,-6");
 * ```
 * @module
 */
import type { LoraAdapter } from "../nn/lora_adapter.ts";
import { add, scale } from "../ops/elementwise.ts";
import { matmul } from "../ops/matmul.ts";
import { sliceRows, writeRows } from "../ops/slice.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { attachAdapter, detachAdapter, type LoraSite, siteWeight } from "./hf_names.ts";

/** One module's adapter and where it goes. */
export interface AdapterEntry {
  /** HF module name. */
  readonly name: string;
  readonly site: LoraSite;
  readonly adapter: LoraAdapter;
}

/** Options of {@link mergeAdapters}. */
export interface MergeOptions {
  /**
   * Check every merged weight for NaN/Inf before changing anything, and refuse to merge when one
   * is not finite (PEFT `safe_merge`). Default `true`.
   */
  safeMerge?: boolean;
}

/**
 * PEFT's `get_delta_weight`: `scaling · B · A`.
 *
 * @param adapter `a` `[r, in]`, `b` `[out, r]`
 * @param sign `-1` for the negated delta (what `unmerge` adds)
 * @returns `[out, in]` f32 (the caller disposes it)
 */
export function deltaWeight(adapter: LoraAdapter, sign: 1 | -1 = 1): Tensor<"f32"> {
  using ba = matmul(adapter.b, adapter.a); // [out, r] x [r, in] -> [out, in]
  return scale(ba, sign * adapter.scaling); // [out, in]
}

/**
 * Adds (`sign` 1) or subtracts (`-1`) every entry's delta into its weight and detaches (merge) or
 * re-attaches (unmerge) the adapters.
 *
 * @throws {RangeError} with `safeMerge`, when a merged weight would hold NaN or Inf: names the
 *   module and counts; no weight is modified and no adapter detached
 */
export async function mergeAdapters(
  entries: readonly AdapterEntry[],
  options: MergeOptions = {},
): Promise<void> {
  if (options.safeMerge ?? true) {
    for (const entry of entries) {
      const problem = await mergeProblem(entry);
      if (problem) {
        throw new RangeError(
          `Cannot merge LoRA adapter into "${entry.name}": ${problem}; the adapter seems broken. ` +
            `Nothing was merged: check its training (e.g. the loss), or merge with safeMerge: false to see the result`,
        );
      }
    }
  }
  for (const entry of entries) {
    commit(entry, 1);
    detachAdapter(entry.site);
  }
}

/** Subtracts every entry's delta from its weight again and re-attaches the adapters. */
export function unmergeAdapters(entries: readonly AdapterEntry[]): void {
  for (const entry of entries) {
    commit(entry, -1);
    attachAdapter(entry.site, entry.adapter);
  }
}

/** Above this bound on `|ΔW|`, the safe merge checks the merged weight itself. */
const DELTA_BOUND = 1e30;

/** Why merging `entry` would leave a non-finite weight, or undefined (see the module doc). */
async function mergeProblem(entry: AdapterEntry): Promise<string | undefined> {
  const { a, b, scaling } = entry.adapter;
  const A = await a.toArray() as Float32Array; // [r, in]
  const B = await b.toArray() as Float32Array; // [out, r]
  const bad = [describe(countNonFinite(A), "lora_A"), describe(countNonFinite(B), "lora_B")].filter(Boolean);
  if (bad.length > 0) return bad.join(" and ");
  const [r, inF] = a.shape;
  let bound = 0;
  for (let k = 0; k < r; k++) {
    let maxA = 0;
    let maxB = 0;
    for (let j = 0; j < inF; j++) maxA = Math.max(maxA, Math.abs(A[k * inF + j]));
    for (let i = k; i < B.length; i += r) maxB = Math.max(maxB, Math.abs(B[i]));
    bound += maxA * maxB; // in f64
  }
  if (Math.abs(scaling) * bound <= DELTA_BOUND) return undefined;
  using merged = updatedWeight(entry, 1); // [out, in]
  return describe(countNonFinite(await merged.toArray() as Float32Array), "the merged weight", merged.size);
}

function describe(c: { nan: number; inf: number }, what: string, of?: number): string | undefined {
  if (c.nan + c.inf === 0) return undefined;
  return `${what} ${of ? "would hold" : "holds"} ${c.nan} NaN and ${c.inf} infinite values` +
    (of ? ` (of ${of})` : "");
}

/** `W ± ΔW` for the entry's weight (or expert slice), as a new `[out, in]` tensor. */
function updatedWeight(entry: AdapterEntry, sign: 1 | -1): Tensor<"f32"> {
  const { tensor, index } = siteWeight(entry.site);
  using delta = deltaWeight(entry.adapter, sign); // [out, in]
  if (index === undefined) return add(tensor, delta); // [out, in] + [out, in]
  const { outFeatures: out, inFeatures: inp } = entry.site;
  using slice = sliceRows(tensor, index, 1); // [E, out, in] -> [1, out, in]
  using w = slice.reshape([out, inp]); // [out, in]
  return add(w, delta); // [out, in]
}

/** Writes `W ± ΔW` into the weight in place. */
function commit(entry: AdapterEntry, sign: 1 | -1): void {
  const { tensor, index } = siteWeight(entry.site);
  using merged = updatedWeight(entry, sign); // [out, in]
  if (index === undefined) {
    writeRows(tensor, merged, 0); // [out, in] -> rows 0..out-1 of [out, in]
  } else {
    using m3 = merged.reshape([1, ...merged.shape]); // [1, out, in]
    writeRows(tensor, m3, index); // -> expert `index` of [E, out, in]
  }
}

function countNonFinite(values: Float32Array): { nan: number; inf: number } {
  let nan = 0;
  let inf = 0;
  for (const v of values) {
    if (Number.isNaN(v)) nan++;
    else if (!Number.isFinite(v)) inf++;
  }
  return { nan, inf };
}
