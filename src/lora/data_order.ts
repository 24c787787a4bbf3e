/**
 * Deterministic, resumable data order for training: which examples micro-batch `g` holds is a
 * pure function of `(seed, g)`, so step `s` always sees the same examples and a resumed run
 * needs nothing but the step number to continue where it stopped.
 *
 * Epoch `e` is a seeded Fisher–Yates permutation of all example indices (or the identity when
 * `shuffle` is off) cut into `floor(n / batch)` micro-batches; the last `n mod batch` examples of
 * each epoch are dropped (PyTorch's `drop_last=True`), so every micro-batch has exactly `batch`
 * examples and a different permutation next epoch covers them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DataOrder } from "./data_order.ts";
 * const order = new DataOrder(10, 4, { seed: 1 });
 * assert.equal(order.batchesPerEpoch, 2); // 2 examples dropped per epoch
 * assert.deepEqual(order.indices(3), new DataOrder(10, 4, { seed: 1 }).indices(3)); // reproducible
 * assert.equal(order.epochOf(3), 1);
 * ```
 * @module
 */
import { mulberry32 } from "../tensor/random.ts";

/**
 * Mixes integers into one 32-bit seed (a murmur3-style finaliser over each part), so that
 * `(seed, step, micro)` triples give unrelated streams.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deriveSeed } from "./data_order.ts";
 * assert.equal(deriveSeed(0, 1, 2), deriveSeed(0, 1, 2));
 * assert.notEqual(deriveSeed(0, 1, 2), deriveSeed(0, 2, 1));
 * ```
 */
export function deriveSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

/** Options of {@linkcode DataOrder}. */
export interface DataOrderOptions {
  /** Seed of the per-epoch permutations (default 0). */
  seed?: number;
  /** Shuffle each epoch (default true); false keeps the examples' order. */
  shuffle?: boolean;
}

/** Maps a global micro-batch number to example indices; see the module doc. */
export class DataOrder {
  /** Number of examples. */
  readonly examples: number;
  /** Examples per micro-batch. */
  readonly batch: number;
  /** Micro-batches per epoch: `floor(examples / batch)`. */
  readonly batchesPerEpoch: number;
  readonly seed: number;
  readonly shuffle: boolean;
  #epoch = -1;
  #perm: Uint32Array = new Uint32Array(0);

  /**
   * @throws {RangeError} When `batch` is not a positive integer or there are fewer examples
   *   than one micro-batch.
   */
  constructor(examples: number, batch: number, options: DataOrderOptions = {}) {
    if (!Number.isInteger(batch) || batch < 1) {
      throw new RangeError(`Cannot order training data: batch must be a positive integer: received ${batch}`);
    }
    if (!Number.isInteger(examples) || examples < batch) {
      throw new RangeError(
        `Cannot order training data: ${examples} examples do not fill one micro-batch of ${batch}; ` +
          `pass more examples or a smaller batch`,
      );
    }
    this.examples = examples;
    this.batch = batch;
    this.batchesPerEpoch = Math.floor(examples / batch);
    this.seed = options.seed ?? 0;
    this.shuffle = options.shuffle ?? true;
  }

  /** The 0-based epoch micro-batch `g` belongs to. */
  epochOf(g: number): number {
    return Math.floor(g / this.batchesPerEpoch);
  }

  /** Example indices of global micro-batch `g` (0-based, across epochs). */
  indices(g: number): number[] {
    if (!Number.isInteger(g) || g < 0) {
      throw new RangeError(`Cannot pick micro-batch: index must be a non-negative integer: received ${g}`);
    }
    const perm = this.#permutation(this.epochOf(g));
    const start = (g % this.batchesPerEpoch) * this.batch;
    return Array.from(perm.subarray(start, start + this.batch));
  }

  /** The examples of micro-batch `g`. */
  pick<E>(data: readonly E[], g: number): E[] {
    return this.indices(g).map((i) => data[i]);
  }

  #permutation(epoch: number): Uint32Array {
    if (epoch === this.#epoch) return this.#perm;
    const perm = new Uint32Array(this.examples);
    for (let i = 0; i < perm.length; i++) perm[i] = i;
    if (this.shuffle) {
      const u = mulberry32(deriveSeed(this.seed, epoch));
      for (let i = perm.length - 1; i > 0; i--) {
        const j = Math.floor(u() * (i + 1));
        const t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
      }
    }
    this.#epoch = epoch;
    this.#perm = perm;
    return perm;
  }
}
