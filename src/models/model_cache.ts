/**
 * `ModelCache`: the KV caches of every layer of a model plus the position of the next token.
 * Create one with `CausalLM.createCache(maxSeq)` and pass it to every `forward` of a sequence:
 * the first call prefills, later calls decode (or extend) at `position`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { ModelCache } from "./model_cache.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * using cache = new ModelCache(dev, { layers: 2, maxSeq: 16, kvHeads: 2, headDim: 8 });
 * assert.ok(cache.position === 0 && cache.layers.length === 2);
 * assert.ok(dev.ledger.current("kv") === 2 * 2 * 16 * 2 * 8 * 4); // layers · (k, v) · Smax · Hkv · D · 4 bytes
 * ```
 * @module
 */
import type { Device } from "../device/device.ts";
import { KvCache } from "../ops/kv_cache.ts";

/** Sizes of a {@link ModelCache}. */
export interface ModelCacheOptions {
  /** Decoder layers. */
  layers: number;
  /** Tokens the cache can hold (prompt plus generated). */
  maxSeq: number;
  /** KV heads of every layer, or one count per layer (a structurally pruned model). */
  kvHeads: number | readonly number[];
  headDim: number;
}

/** One {@link KvCache} per layer (ledger category `"kv"`), filled in step. */
export class ModelCache {
  /** Per-layer caches, `[maxSeq, kvHeads, headDim]` keys and values each. */
  readonly layers: readonly KvCache[];
  /** KV heads of the widest layer (of every layer unless the model is structurally pruned). */
  readonly kvHeads: number;
  /** KV heads of each layer. */
  readonly kvHeadsPerLayer: readonly number[];
  readonly headDim: number;

  /** @throws {RangeError} unless every size is a positive integer and `kvHeads` has one entry per layer */
  constructor(device: Device, options: ModelCacheOptions) {
    const { layers, maxSeq, kvHeads, headDim } = options;
    if (!Number.isInteger(layers) || layers <= 0) {
      throw new RangeError(`Cannot create ModelCache: layers must be a positive integer: received ${layers}`);
    }
    const perLayer = typeof kvHeads === "number" ? new Array<number>(layers).fill(kvHeads) : [...kvHeads];
    if (perLayer.length !== layers) {
      throw new RangeError(
        `Cannot create ModelCache: kvHeads must have one entry per layer (${layers}): received ${perLayer.length}`,
      );
    }
    const caches: KvCache[] = [];
    try {
      for (let i = 0; i < layers; i++) {
        caches.push(new KvCache(device, { maxSeq, kvHeads: perLayer[i], headDim, label: `layer${i}` }));
      }
    } catch (e) {
      for (const c of caches) c.dispose();
      throw e;
    }
    this.layers = caches;
    this.kvHeads = Math.max(...perLayer);
    this.kvHeadsPerLayer = Object.freeze(perLayer);
    this.headDim = headDim;
  }

  /** Tokens processed so far: the position of the next token. */
  get position(): number {
    return this.layers[0].length;
  }

  /** Capacity in tokens. */
  get maxSeq(): number {
    return this.layers[0].maxSeq;
  }

  /** Starts a new sequence (keeps the memory). */
  reset(): void {
    for (const c of this.layers) c.reset();
  }

  /** Returns every layer's keys and values to the ledger. */
  dispose(): void {
    for (const c of this.layers) c.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
