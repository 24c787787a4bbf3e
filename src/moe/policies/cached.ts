/**
 * `cached`: the mixtral-offloading-like baseline (Eliseev & Mazur 2023,
 * https://arxiv.org/abs/2312.17238; ALGORITHMS.md C.1): whole experts kept in device slots
 * (ledger category `cache`) filling what the budget leaves, with LRU or LFU eviction, and optional
 * speculative prefetch: the runtime applies layer `i+1`'s router to layer `i`'s MoE input and
 * the policy loads the predicted experts ahead of their routing.
 *
 * One pool serves every layer (an entry is a (layer, expert) pair), so the policy runs in any
 * budget that holds the `K` experts of one decode step; experts of the group being computed are
 * never evicted. LRU evicts the least recently used entry, LFU the least often used one (ties: the
 * least recent). Slots hold f32 experts (`bits: 16`) or HQQ-packed ones (`bits: 4 | 2`, quantized once
 * at setup; `QuantSlots` computes them with the packed kernels), as C.1 keeps its experts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../../device/create_device.ts";
 * import { HostExperts } from "../host_experts.ts";
 * import { TransferEngine } from "../transfer.ts";
 * import { CachedPolicy } from "./cached.ts";
 * const device = await createDevice({ backend: "cpu" });
 * const store = await HostExperts.fromCheckpoint("test/fixtures/models/mixtral-top2-f32");
 * const transfers = new TransferEngine(device, store);
 * const policy = new CachedPolicy({ eviction: "lru" });
 * await policy.setup({ device, store, transfers }, 3 * store.expertBytes()); // three slots
 * assert.equal(policy.load(0, [0, 1]).hits, 0);
 * assert.equal(policy.load(1, [2, 0]).hits, 0); // evicts (0, 0), the least recently used
 * assert.equal(policy.load(0, [1]).hits, 1);
 * assert.equal(transfers.stats.count.demand, 4);
 * policy.dispose();
 * ```
 * @module
 */
import type { ExpertPredictor } from "../../predictors/expert_predictor.ts";
import type { HostExperts } from "../host_experts.ts";
import { chunks, type LoadedGroup, type PolicyContext, type WholeExpertPolicy } from "../policy.ts";
import { wordsPerRow } from "../../tensor/quantized_tensor.ts";
import { quantizeHostExperts, QuantSlots } from "../quant_slots.ts";
import { ExpertSlots } from "../slots.ts";
import type { TransferEngine } from "../transfer.ts";

/** Options of {@link CachedPolicy}. */
export interface CachedPolicyOptions {
  /** Eviction order (default `"lru"`). */
  eviction?: "lru" | "lfu";
  /** Load the next layer's experts predicted by its router on this layer's input (default false). */
  prefetch?: boolean;
  /** With `prefetch`: predicts layer `i+1`'s experts from layer `i`'s MoE input (default: its router). */
  predictor?: ExpertPredictor;
  /** Cap on the slots (default: as many as the budget leaves). */
  maxSlots?: number;
  /** Bits of the cached experts: 16 (whole, in the runtime's dtype; default), or HQQ 4 or 2 as mixtral-offloading. */
  bits?: 16 | 4 | 2;
  /** HQQ group size along each matrix's input features (default 64; divides the hidden size and expert width). */
  groupSize?: number;
  /** A folder keeping the HQQ experts between runs (`quant_cache.ts`; default: quantize every run). */
  quantCache?: string;
}

/** Device bytes of one HQQ-packed expert: codes and one `u32` (f16 scale, zero) per group, three matrices. */
export function packedExpertBytes(C: number, F: number, bits: 2 | 4, groupSize: number): number {
  const codes = (rows: number, cols: number) => rows * wordsPerRow(cols, bits) * 4;
  const meta = (C * F / groupSize) * 4;
  return 2 * (codes(F, C) + meta) + codes(C, F) + meta;
}

interface Entry {
  key: string;
  lastUse: number;
  uses: number;
}

/** An LRU/LFU cache of whole experts over the slots the budget leaves. */
export class CachedPolicy implements WholeExpertPolicy {
  readonly name = "cached" as const;
  readonly eviction: "lru" | "lfu";
  readonly prefetchNext: boolean;
  /** The prefetch's expert predictor (undefined: the next layer's router). */
  readonly predictor: ExpertPredictor | undefined;
  readonly bits: 16 | 4 | 2;
  readonly groupSize: number;
  readonly quantCache: string | undefined;
  readonly #maxSlots: number;
  #slots: ExpertSlots | QuantSlots | undefined;
  #transfers: TransferEngine | undefined;
  /** Slot -> entry (undefined: free). */
  #entries: (Entry | undefined)[] = [];
  #where = new Map<string, number>();
  /** Uses of each (layer, expert), kept across evictions (LFU counts). */
  #uses = new Map<string, number>();
  #clock = 0;

  constructor(options: CachedPolicyOptions = {}) {
    this.eviction = options.eviction ?? "lru";
    this.prefetchNext = options.prefetch ?? false;
    this.predictor = options.predictor;
    this.#maxSlots = options.maxSlots ?? Infinity;
    this.bits = options.bits ?? 16;
    this.groupSize = options.groupSize ?? 64;
    this.quantCache = options.quantCache;
  }

  /** Device bytes of one cached expert. */
  slotBytes(store: HostExperts): number {
    return this.bits === 16
      ? store.expertBytes()
      : packedExpertBytes(store.hidden, store.intermediate, this.bits, this.groupSize);
  }

  /** Device bytes held only while the experts are quantized at setup (one f32 matrix and its codes). */
  setupScratchBytes(store: HostExperts): number {
    return this.bits === 16 ? 0 : 2 * store.matrixValues() * 4;
  }

  minimumBytes(store: HostExperts): number {
    return store.config.topK * this.slotBytes(store);
  }

  /** One projection of a cached expert (its packed codes when quantized). */
  maxTransferBytes(store: HostExperts): number {
    const { hidden: C, intermediate: F } = store;
    if (this.bits === 16) return store.matrixValues() * store.bytesPerValue;
    return Math.max(F * wordsPerRow(C, this.bits), C * wordsPerRow(F, this.bits)) * 4;
  }

  plannedBytes(store: HostExperts, freeBytes: number): number {
    return this.#slotCount(store, freeBytes) * this.slotBytes(store);
  }

  async setup({ device, store, transfers }: PolicyContext, freeBytes: number): Promise<void> {
    const S = this.#slotCount(store, freeBytes);
    this.#transfers = transfers;
    if (this.bits === 16) {
      this.#slots = new ExpertSlots(device, {
        slots: S,
        hidden: store.hidden,
        intermediate: store.intermediate,
        dtype: store.deviceDType,
        category: "cache",
      });
    } else {
      const q = await quantizeHostExperts(device, store, this.bits, this.groupSize, {
        cacheDir: this.quantCache,
      });
      this.#slots = new QuantSlots(device, q, S, store);
    }
    this.#entries = new Array(S).fill(undefined);
  }

  groups(_layer: number, needed: readonly number[]): number[][] {
    return chunks(needed, this.#entries.length);
  }

  load(layer: number, group: readonly number[]): LoadedGroup {
    const pinned = new Set(group.map((e) => `${layer}.${e}`));
    const slotOf = new Map<number, number>();
    let hits = 0;
    for (const e of group) {
      const key = `${layer}.${e}`;
      this.#uses.set(key, (this.#uses.get(key) ?? 0) + 1);
      let slot = this.#where.get(key);
      if (slot !== undefined) hits++;
      else slot = this.#insert(layer, e, pinned, "demand");
      const entry = this.#entries[slot]!;
      entry.lastUse = ++this.#clock;
      entry.uses = this.#uses.get(key)!;
      slotOf.set(e, slot);
    }
    return { slots: this.#slots!, slotOf, hits };
  }

  /**
   * Loads the predicted experts of `layer` that are not cached, never evicting `pinned` entries
   * (the group being computed).
   *
   * @returns the experts uploaded
   */
  prefetch(layer: number, experts: readonly number[], pinned: ReadonlySet<string>): number {
    let n = 0;
    const keep = new Set([...pinned, ...experts.map((e) => `${layer}.${e}`)]);
    for (const e of experts) {
      if (this.#where.has(`${layer}.${e}`)) continue;
      if (this.#victim(keep) === undefined) break;
      const slot = this.#insert(layer, e, keep, "prefetch");
      this.#entries[slot]!.lastUse = ++this.#clock;
      n++;
    }
    return n;
  }

  describe(): Record<string, string | number> {
    return {
      slots: this.#entries.length,
      bits: this.bits,
      eviction: this.eviction,
      prefetch: this.prefetchNext ? this.predictor?.kind ?? "router-reuse" : "none",
    };
  }

  dispose(): void {
    this.#slots?.dispose();
    this.#slots = undefined;
  }

  #slotCount(store: HostExperts, freeBytes: number): number {
    const all = store.layers.length * store.numExperts;
    const fit = Math.floor(freeBytes / this.slotBytes(store)); // slots of this cache's bits (setup scratch: in the transient room)
    return Math.max(store.config.topK, Math.min(all, this.#maxSlots, fit));
  }

  /** Uploads (layer, e) into a free or evicted slot; returns the slot. */
  #insert(layer: number, e: number, pinned: ReadonlySet<string>, kind: "demand" | "prefetch"): number {
    const slot = this.#victim(pinned);
    if (slot === undefined) {
      throw new RangeError(
        `Cannot cache expert ${e} of layer ${layer}: all ${this.#entries.length} slots hold experts in use; ` +
          "give the cache more slots than experts per group",
      );
    }
    const old = this.#entries[slot];
    if (old) this.#where.delete(old.key);
    const key = `${layer}.${e}`;
    const slots = this.#slots!;
    if (slots instanceof ExpertSlots) this.#transfers!.uploadExpert(layer, e, slots, slot, kind);
    else this.#transfers!.uploadWrites(kind, slots.writes(layer, e, slot));
    this.#entries[slot] = { key, lastUse: 0, uses: this.#uses.get(key) ?? 0 };
    this.#where.set(key, slot);
    return slot;
  }

  /** A free slot, else the entry to evict (not pinned), else undefined. */
  #victim(pinned: ReadonlySet<string>): number | undefined {
    let best: number | undefined;
    for (let s = 0; s < this.#entries.length; s++) {
      const en = this.#entries[s];
      if (!en) return s;
      if (pinned.has(en.key)) continue;
      if (best === undefined) {
        best = s;
        continue;
      }
      const b = this.#entries[best]!;
      const worse = this.eviction === "lfu"
        ? en.uses < b.uses || (en.uses === b.uses && en.lastUse < b.lastUse)
        : en.lastUse < b.lastUse;
      if (worse) best = s;
    }
    return best;
  }
}
