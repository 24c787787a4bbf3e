/**
 * Unstructured and semi-structured pruning masks of one `[rows, cols]` weight (`rows` outputs,
 * `cols` inputs, as `Linear.weight`), computed on the host:
 *
 * - **magnitude**: the `⌊S·rows·cols⌋` smallest `|W_ij|` of the whole matrix are pruned
 *   (layer-wise, as the magnitude baseline of Wanda and SparseGPT).
 * - **Wanda** ([Sun et al. 2023](https://arxiv.org/abs/2306.11695)): score `|W_ij| · ‖X_j‖₂`, with
 *   `‖X_j‖₂` the norm of input feature `j` over the calibration tokens; the `⌊S·cols⌋` lowest scores
 *   of **each output row** are pruned, as the paper does.
 * - **2:4** (N:M semi-structured, [Mishra et al. 2021](https://arxiv.org/abs/2104.08378)): in every
 *   run of 4 consecutive inputs of a row the 2 highest scores are kept, by magnitude or, given input
 *   norms, by the Wanda score. Sparsity is exactly 0.5.
 *
 * Ties are broken by position: among equal scores the earlier weight is pruned first (within a
 * 2:4 group, the earlier one is kept first). A mask holds 1 for a kept weight and 0 for a pruned one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pruneWeight } from "./masks.ts";
 * const w = Float32Array.of(0.1, -4, 3, 0.2, 5, -0.3, 0.4, 1); // [rows=2, cols=4]
 * const { pruned, mask, sparsity } = pruneWeight(w, [2, 4], { method: "2:4" });
 * assert.deepEqual([...mask], [0, 1, 1, 0, 1, 0, 0, 1]);
 * assert.equal(sparsity, 0.5);
 * assert.deepEqual([...pruned], [0, -4, 3, 0, 5, 0, 0, 1]);
 * ```
 * @module
 */

import { getPruner, type Pruner, registerPruner, type WeightMask } from "./pruner.ts";

export {
  getPruner,
  listPruners,
  type MaskRequest,
  type Pruner,
  registerPruner,
  type WeightMask,
} from "./pruner.ts";

/** How to pick the pruned weights: a registered pruner's name (built in: magnitude, wanda, 2:4). */
export type MaskMethod = string;

/** Options of {@link pruneWeight}. */
export interface PruneWeightOptions {
  /** A registered pruner's name (see `listPruners`). */
  method: MaskMethod;
  /** Fraction to prune, in [0, 1). Required unless the pruner fixes it (2:4 is always 0.5: leave it out or pass 0.5). */
  sparsity?: number;
  /** `[cols]` per-input-feature `‖X_j‖₂` (required by Wanda; optional for 2:4, which then scores as Wanda). */
  inputNorms?: Float32Array;
}

/** What {@link pruneWeight} returns. */
export interface PruneWeightResult {
  /** The weight with pruned entries set to 0 (a new array). */
  pruned: Float32Array;
  /** 1 keeps, 0 prunes (row-major). */
  mask: Uint8Array;
  /** Fraction of weights pruned. */
  sparsity: number;
}

/**
 * Prunes one weight: the registered pruner `method`'s mask and the weight with the mask applied.
 * The plain-function entry point of the CLI and the sweeps.
 *
 * @param w `[rows·cols]` row-major weight (`[out, in]`)
 * @param shape `[rows, cols]`
 * @throws {RangeError} on a sparsity outside [0, 1), Wanda without `inputNorms`, 2:4 with `cols` not
 *   divisible by 4 or a sparsity other than 0.5, norms of the wrong length or negative, a non-finite weight
 * @throws {TypeError} on a shape that does not match `w` or an unknown method (naming the registered ones)
 */
export function pruneWeight(
  w: Float32Array,
  shape: readonly [number, number],
  options: PruneWeightOptions,
): PruneWeightResult {
  const { method, sparsity, inputNorms } = options;
  const pruner = getPruner(method);
  const m = pruner.mask(w, shape, {
    sparsity: checkedSparsity(pruner, sparsity),
    inputNorms: pruner.inputNorms === "unused" ? undefined : requireNorms(pruner, inputNorms),
  });
  return { pruned: applyMask(w, m), mask: m.mask, sparsity: m.sparsity };
}

/** The sparsity `pruner` runs at, given the caller's (`undefined`: left out). */
function checkedSparsity(pruner: Pruner, s: number | undefined): number {
  const fixed = pruner.fixedSparsity;
  if (fixed === undefined) {
    if (s === undefined) {
      throw new RangeError(`Cannot prune with ${pruner.name}: sparsity is required, in [0, 1)`);
    }
    return s;
  }
  if (s !== undefined && s !== fixed) {
    const part = fixed === 0.5 ? "exactly half" : `exactly ${fixed}`;
    throw new RangeError(
      `Cannot prune with ${pruner.name}: it prunes ${part}: sparsity must be ${fixed} or left out: received ${s}`,
    );
  }
  return fixed;
}

function requireNorms(pruner: Pruner, norms: Float32Array | undefined): Float32Array | undefined {
  if (pruner.inputNorms === "required" && !norms) {
    throw new RangeError(
      `Cannot prune with ${pruner.name}: inputNorms is required (per-input-feature ‖X_j‖₂ from calibration; ` +
        "see collectInputNorms)",
    );
  }
  return norms;
}

/**
 * Layer-wise magnitude mask: prunes the `⌊S·rows·cols⌋` smallest `|W_ij|`.
 * @throws as {@link pruneWeight}
 */
export function magnitudeMask(
  w: Float32Array,
  shape: readonly [number, number],
  sparsity: number,
): WeightMask {
  checkWeight("magnitude", w, shape);
  checkSparsity("magnitude", sparsity);
  const scores = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) scores[i] = Math.abs(w[i]);
  const mask = new Uint8Array(w.length).fill(1);
  pruneLowest(scores, mask, 0, w.length, Math.floor(sparsity * w.length));
  return result("magnitude", mask, shape);
}

/**
 * Wanda mask: score `|W_ij|·‖X_j‖₂`, the `⌊S·cols⌋` lowest of each output row pruned.
 * @param inputNorms `[cols]` `‖X_j‖₂` over the calibration tokens
 * @throws as {@link pruneWeight}
 */
export function wandaMask(
  w: Float32Array,
  shape: readonly [number, number],
  inputNorms: Float32Array,
  sparsity: number,
): WeightMask {
  checkWeight("wanda", w, shape);
  checkSparsity("wanda", sparsity);
  const [rows, cols] = shape;
  const scores = wandaScores(w, shape, inputNorms, "wanda");
  const mask = new Uint8Array(w.length).fill(1);
  const k = Math.floor(sparsity * cols);
  for (let r = 0; r < rows; r++) pruneLowest(scores, mask, r * cols, cols, k);
  return result("wanda", mask, shape);
}

/**
 * N:M mask (default 2:4): in each run of `m` consecutive inputs of a row, the `n` highest scores are
 * kept; scores are `|W_ij|`, or the Wanda score when `inputNorms` is given.
 * @throws {RangeError} when `cols` is not divisible by `m`, `n` is not in `1..m-1`, and as {@link pruneWeight}
 */
export function semiStructuredMask(
  w: Float32Array,
  shape: readonly [number, number],
  { inputNorms, n = 2, m = 4 }: { inputNorms?: Float32Array; n?: number; m?: number } = {},
): WeightMask {
  const name = `${n}:${m}`;
  checkWeight(name, w, shape);
  if (!(Number.isInteger(m) && Number.isInteger(n) && n >= 1 && n < m)) {
    throw new RangeError(`Cannot prune with ${name}: need integers 1 ≤ n < m`);
  }
  const unfit = nmUnfit(m, shape);
  if (unfit) throw new RangeError(`Cannot prune with ${name}: ${unfit}; use magnitude or wanda`);
  const scores = inputNorms ? wandaScores(w, shape, inputNorms, name) : Float32Array.from(w, Math.abs);
  const mask = new Uint8Array(w.length);
  const order = Array.from({ length: m }, (_, j) => j);
  for (let g = 0; g < w.length; g += m) {
    // Highest scores first; equal scores keep the earlier weight.
    order.sort((a, b) => scores[g + b] - scores[g + a] || a - b);
    for (let j = 0; j < n; j++) mask[g + order[j]] = 1;
  }
  return result(`${n}:${m}`, mask, shape);
}

/**
 * `weight ⊙ mask` as a new array.
 * @throws {TypeError} when the lengths differ
 */
export function applyMask(weight: Float32Array, mask: WeightMask | Uint8Array): Float32Array {
  const bits = mask instanceof Uint8Array ? mask : mask.mask;
  if (bits.length !== weight.length) {
    throw new TypeError(
      `Cannot apply mask: it has ${bits.length} entries but the weight has ${weight.length}`,
    );
  }
  const out = new Float32Array(weight.length);
  for (let i = 0; i < weight.length; i++) out[i] = bits[i] ? weight[i] : 0;
  return out;
}

/** Prunes the `k` lowest of `scores[start .. start+len)` in `mask` (ties: earlier first). */
function pruneLowest(scores: Float32Array, mask: Uint8Array, start: number, len: number, k: number): void {
  if (k <= 0) return;
  const seg = scores.subarray(start, start + len);
  const threshold = Float32Array.from(seg).sort()[k - 1]; // the k-th smallest score
  let pruned = 0;
  for (let i = 0; i < len; i++) {
    if (seg[i] < threshold) {
      mask[start + i] = 0;
      pruned++;
    }
  }
  for (let i = 0; i < len && pruned < k; i++) {
    if (seg[i] === threshold) {
      mask[start + i] = 0;
      pruned++;
    }
  }
}

function wandaScores(
  w: Float32Array,
  shape: readonly [number, number],
  norms: Float32Array,
  what: string,
): Float32Array {
  const [rows, cols] = shape;
  if (!(norms instanceof Float32Array) || norms.length !== cols) {
    throw new RangeError(
      `Cannot prune with ${what}: inputNorms must be a Float32Array of the ${cols} input columns: received ${
        norms instanceof Float32Array ? `length ${norms.length}` : Object.prototype.toString.call(norms)
      }`,
    );
  }
  const bad = norms.findIndex((v) => !(v >= 0 && Number.isFinite(v)));
  if (bad >= 0) {
    throw new RangeError(
      `Cannot prune with ${what}: inputNorms[${bad}] = ${norms[bad]} is not a finite norm ≥ 0`,
    );
  }
  const scores = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) scores[r * cols + c] = Math.abs(w[r * cols + c]) * norms[c];
  }
  return scores;
}

function checkWeight(what: string, w: Float32Array, shape: readonly [number, number]): void {
  const ok = Array.isArray(shape) && shape.length === 2 && shape.every((d) => Number.isInteger(d) && d > 0);
  if (!(w instanceof Float32Array) || !ok || shape[0] * shape[1] !== w.length) {
    throw new TypeError(
      `Cannot prune with ${what}: expected a Float32Array of shape [rows, cols] (positive integers): received ` +
        `${
          w instanceof Float32Array ? `${w.length} values` : Object.prototype.toString.call(w)
        } and shape [${shape}]`,
    );
  }
  const bad = w.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new RangeError(`Cannot prune with ${what}: weight[${bad}] = ${w[bad]} is not finite`);
}

function checkSparsity(what: string, s: number): void {
  if (!(typeof s === "number" && s >= 0 && s < 1)) {
    throw new RangeError(`Cannot prune with ${what}: sparsity must be in [0, 1): received ${s}`);
  }
}

function result(
  method: string,
  mask: Uint8Array,
  shape: readonly [number, number],
): WeightMask {
  let zeros = 0;
  for (const b of mask) zeros += b === 0 ? 1 : 0;
  return { mask, shape: [shape[0], shape[1]], sparsity: zeros / mask.length, method };
}

/** Why an N:M pattern of run length `m` cannot prune a weight of `shape`, or null. */
function nmUnfit(m: number, shape: readonly [number, number]): string | null {
  return shape[1] % m === 0 ? null : `the ${shape[1]} input columns are not divisible by ${m}`;
}

registerPruner({
  name: "magnitude",
  description: "the smallest |W| of the whole matrix (layer-wise)",
  inputNorms: "unused",
  mask: (w, shape, { sparsity }) => magnitudeMask(w, shape, sparsity),
});

registerPruner({
  name: "wanda",
  description: "the lowest |W|·‖X‖ of each output row (Wanda)",
  inputNorms: "required",
  mask: (w, shape, { sparsity, inputNorms }) => wandaMask(w, shape, inputNorms!, sparsity),
});

registerPruner({
  name: "2:4",
  description: "the 2 highest of every 4 consecutive inputs (by |W|, or the Wanda score given norms)",
  inputNorms: "optional",
  fixedSparsity: 0.5,
  unfit: (shape) => nmUnfit(4, shape),
  mask: (w, shape, { inputNorms }) => semiStructuredMask(w, shape, { inputNorms }),
});
