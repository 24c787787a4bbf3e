/**
 * The key/value cache of one attention layer: `k, v : [Smax, Hkv, D]` f32 tensors in
 * the ledger's `"kv"` category, filled row by row as tokens are processed.
 *
 * {@link kvWrite} is the one op that mutates a tensor in place: it writes rows
 * `pos..pos+T-1`. On WebGPU it records a single buffer copy into the pending batch, so it
 * is ordered with the dispatches around it (the projection that produced `x` before it,
 * the attention that reads the cache after it) without a sync point. No kernel is needed
 * because the rows are contiguous.
 *
 * @example One layer's cache through a prefill and a decode step
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { attention } from "./attention.ts";
 * import { KvCache } from "./kv_cache.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * using cache = new KvCache(dev, { maxSeq: 16, kvHeads: 2, headDim: 8 });
 * const pos = cache.append(Tensor.zeros(dev, [3, 2, 8]), Tensor.zeros(dev, [3, 2, 8])); // prefill 3 tokens
 * const o = attention(Tensor.zeros(dev, [3, 4, 8]), cache.k, cache.v, { pos }); // [3, 4, 8]
 * assert.ok(pos === 0 && cache.length === 3 && o.shape[1] === 4);
 * cache.append(Tensor.zeros(dev, [1, 2, 8]), Tensor.zeros(dev, [1, 2, 8])); // decode: pos 3
 * assert.equal(cache.length, 4);
 * ```
 * @module
 */
import type { Device } from "../device/device.ts";
import { Tensor } from "../tensor/tensor.ts";
import { expectDType, expectRank, gpuOf, sameDevice } from "./_kernel.ts";

function checkWrite(op: string, cache: Tensor, x: Tensor, pos: number): void {
  sameDevice(op, cache, x);
  expectRank(op, "cache", cache, 3);
  expectRank(op, "x", x, 3);
  expectDType(op, "cache", cache, "f32");
  expectDType(op, "x", x, "f32");
  if (x.shape[1] !== cache.shape[1] || x.shape[2] !== cache.shape[2]) {
    throw new TypeError(
      `Cannot run ${op}: x must be [T, ${cache.shape[1]}, ${
        cache.shape[2]
      }] to match the cache: received [${x.shape}]`,
    );
  }
  if (!Number.isInteger(pos) || pos < 0) {
    throw new RangeError(`Cannot run ${op}: pos must be a non-negative integer: received ${pos}`);
  }
  const [smax] = cache.shape;
  if (pos + x.shape[0] > smax) {
    throw new RangeError(
      `Cannot run ${op}: rows ${pos}..${pos + x.shape[0] - 1} do not fit a cache of ${smax} rows ` +
        `(pos ${pos} + T ${x.shape[0]} > Smax ${smax}); create the cache with a larger maxSeq`,
    );
  }
}

function write(cache: Tensor, x: Tensor, pos: number): void {
  const row = cache.shape[1] * cache.shape[2]; // elements per cache row
  if (x.size === 0) return;
  if (cache.device.kind === "cpu") {
    (cache.host() as Float32Array).set(x.host() as Float32Array, pos * row);
  } else {
    gpuOf(cache.device).copy(x.storage, 0, cache.storage, pos * row * 4, x.size * 4);
  }
}

/**
 * Writes `x` into rows `pos..pos+T-1` of `cache`, in place.
 *
 * @param cache `[Smax, Hkv, D]` f32, modified
 * @param x `[T, Hkv, D]` f32, this step's keys or values
 * @param pos first row to write (the absolute position of `x[0]`)
 * @throws {TypeError} when shapes or dtypes do not match
 * @throws {RangeError} when `pos` is not a non-negative integer or `pos + T > Smax`
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { kvWrite } from "./kv_cache.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const cache = Tensor.zeros(dev, [4, 1, 2], { category: "kv" }); // [Smax=4, Hkv=1, D=2]
 * kvWrite(cache, Tensor.fromArray(dev, [5, 6], [1, 1, 2]), 2);
 * assert.ok((await cache.toArray()).join() === "0,0,0,0,5,6,0,0");
 * ```
 */
export function kvWrite(cache: Tensor, x: Tensor, pos: number): void {
  checkWrite("kvWrite", cache, x, pos);
  write(cache, x, pos);
}

/** Sizes of a {@link KvCache}. */
export interface KvCacheOptions {
  /** Rows the cache can hold (the longest sequence, prompt plus generated tokens). */
  maxSeq: number;
  /** Key/value heads `Hkv`. */
  kvHeads: number;
  /** Head dim `D`. */
  headDim: number;
  /** Ledger label prefix, e.g. `"layer3"`. */
  label?: string;
}

/**
 * One layer's key and value cache with a fill pointer. `append` writes at `length` and
 * advances it; pass the returned position to `attention()` as `pos`.
 */
export class KvCache {
  /** Keys `[maxSeq, kvHeads, headDim]`; only rows below `length` are meaningful. */
  readonly k: Tensor<"f32">;
  /** Values `[maxSeq, kvHeads, headDim]`. */
  readonly v: Tensor<"f32">;
  #length = 0;

  /**
   * Allocates both tensors (zeroed) under the `"kv"` ledger category.
   * @throws {RangeError} unless every size is a positive integer
   */
  constructor(device: Device, options: KvCacheOptions) {
    for (const key of ["maxSeq", "kvHeads", "headDim"] as const) {
      const n = options[key];
      if (!Number.isInteger(n) || n <= 0) {
        throw new RangeError(`Cannot create KvCache: ${key} must be a positive integer: received ${n}`);
      }
    }
    const { maxSeq, kvHeads, headDim, label = "kv" } = options;
    const shape = [maxSeq, kvHeads, headDim];
    this.k = Tensor.zeros(device, shape, { category: "kv", label: `${label}.k` });
    try {
      this.v = Tensor.zeros(device, shape, { category: "kv", label: `${label}.v` });
    } catch (e) {
      this.k.dispose();
      throw e;
    }
  }

  /** Rows filled so far (the position the next token gets). */
  get length(): number {
    return this.#length;
  }

  /** Capacity in rows. */
  get maxSeq(): number {
    return this.k.shape[0];
  }

  /**
   * Writes `T` new rows of keys and values at `length` and advances it.
   * Both are validated before either is written.
   * @param k `[T, kvHeads, headDim]` f32
   * @param v `[T, kvHeads, headDim]` f32
   * @returns the position of the first new row (the `pos` for this step's attention)
   * @throws {RangeError} when the cache would overflow
   */
  append(k: Tensor, v: Tensor): number {
    const pos = this.#length;
    if (k.shape[0] !== v.shape[0]) {
      throw new TypeError(
        `Cannot run KvCache.append: k and v must have the same T: received [${k.shape}] and [${v.shape}]`,
      );
    }
    checkWrite("KvCache.append", this.k, k, pos);
    checkWrite("KvCache.append", this.v, v, pos);
    write(this.k, k, pos);
    write(this.v, v, pos);
    this.#length += k.shape[0];
    return pos;
  }

  /** Forgets every row (a new sequence); the memory is kept and overwritten by later appends. */
  reset(): void {
    this.#length = 0;
  }

  /** Returns both tensors to the ledger. */
  dispose(): void {
    this.k.dispose();
    this.v.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
