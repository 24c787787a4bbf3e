/**
 * The memory ledger: every device byte is allocated through it, under a category.
 *
 * It enforces the byte budget (an {@link OutOfBudgetError} with the breakdown when a
 * request would exceed it) and tracks current and peak bytes per category. FloE's
 * "GPU memory" and LoRAM's "training memory" are read from here.
 *
 * @example Budget enforcement
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryLedger } from "./ledger.ts";
 * const ledger = new MemoryLedger({ budgetBytes: 1024 });
 * const a = ledger.allocate(600, "weights", "w0");
 * let refused = false;
 * try { ledger.allocate(600, "activations", "x"); } catch { refused = true; }
 * ledger.release(a);
 * assert.ok(refused && ledger.current() === 0 && ledger.peak() === 600);
 * ```
 * @module
 */
import { OutOfBudgetError } from "../errors.ts";

/**
 * What a device allocation is for: `weights` (dense parameters), `experts` (MoE expert weights, packed
 * or not), `cache` (device copies of host-resident data), `activations` (intermediate tensors),
 * `kv` (KV caches), `grads`, `optimizer` (AdamW moments), `lora` (adapters), `staging` (the device's
 * own transfer memory: readback buffers, upload bytes held by the queue until the next submit, and
 * the WebGPU backend's uniform ring of kernel parameters).
 */
export type MemoryCategory =
  | "weights"
  | "experts"
  | "cache"
  | "activations"
  | "kv"
  | "grads"
  | "optimizer"
  | "lora"
  | "staging";

/** Every category, in report order. */
export const MEMORY_CATEGORIES: readonly MemoryCategory[] = [
  "weights",
  "experts",
  "cache",
  "activations",
  "kv",
  "grads",
  "optimizer",
  "lora",
  "staging",
];

/** One live allocation. Release it exactly once. */
export interface Allocation {
  readonly id: number;
  readonly bytes: number;
  readonly category: MemoryCategory;
  readonly label: string;
}

/** Current and peak bytes for one category. */
export interface CategoryUsage {
  category: MemoryCategory;
  current: number;
  peak: number;
  count: number;
}

/** Formats a byte count as B / KiB / MiB / GiB. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[u]}`;
}

/** Tracks device bytes per category against an optional budget. */
export class MemoryLedger {
  /** Byte budget; `Infinity` when unbounded. */
  readonly budgetBytes: number;
  #current = new Map<MemoryCategory, number>();
  #peak = new Map<MemoryCategory, number>();
  #count = new Map<MemoryCategory, number>();
  #live = new Map<number, Allocation>();
  #total = 0;
  #totalPeak = 0;
  #nextId = 1;

  constructor(options: { budgetBytes?: number } = {}) {
    const budget = options.budgetBytes ?? Infinity;
    if (!(budget > 0)) {
      throw new RangeError(`Cannot create MemoryLedger: budgetBytes must be positive: received ${budget}`);
    }
    this.budgetBytes = budget;
  }

  /** Records an allocation of `bytes` under `category`; throws {@link OutOfBudgetError} if over budget. */
  allocate(bytes: number, category: MemoryCategory, label = ""): Allocation {
    if (!Number.isInteger(bytes) || bytes < 0) {
      throw new RangeError(
        `Cannot allocate "${label}": bytes must be a non-negative integer: received ${bytes}`,
      );
    }
    if (!MEMORY_CATEGORIES.includes(category)) {
      throw new TypeError(
        `Cannot allocate "${label}": unknown memory category "${category}": expected one of ${
          MEMORY_CATEGORIES.join(", ")
        }`,
      );
    }
    if (this.#total + bytes > this.budgetBytes) {
      throw new OutOfBudgetError(
        `Cannot allocate ${formatBytes(bytes)} for ${category}${label ? ` ("${label}")` : ""}: ` +
          `budget is ${formatBytes(this.budgetBytes)}, ${formatBytes(this.#total)} in use ` +
          `(${this.#breakdown()}). Free tensors with dispose(), lower the batch or cache size, ` +
          `or raise budgetBytes`,
      );
    }
    const alloc: Allocation = { id: this.#nextId++, bytes, category, label };
    this.#live.set(alloc.id, alloc);
    const cur = (this.#current.get(category) ?? 0) + bytes;
    this.#current.set(category, cur);
    this.#count.set(category, (this.#count.get(category) ?? 0) + 1);
    if (cur > (this.#peak.get(category) ?? 0)) this.#peak.set(category, cur);
    this.#total += bytes;
    if (this.#total > this.#totalPeak) this.#totalPeak = this.#total;
    return alloc;
  }

  /** Returns an allocation's bytes. Releasing twice is an error. */
  release(alloc: Allocation): void {
    if (!this.#live.delete(alloc.id)) {
      throw new Error(`Cannot release allocation ${alloc.id} ("${alloc.label}"): it was already released`);
    }
    this.#current.set(alloc.category, (this.#current.get(alloc.category) ?? 0) - alloc.bytes);
    this.#count.set(alloc.category, (this.#count.get(alloc.category) ?? 0) - 1);
    this.#total -= alloc.bytes;
  }

  /**
   * Files a live allocation's bytes under another category, in place (no copy, total unchanged).
   * Used when an op's output changes role, e.g. an activation-sized result kept as a gradient.
   */
  retag(alloc: Allocation, category: MemoryCategory): void {
    if (!this.#live.has(alloc.id)) {
      throw new Error(`Cannot retag allocation ${alloc.id} ("${alloc.label}"): it was already released`);
    }
    if (!MEMORY_CATEGORIES.includes(category)) {
      throw new TypeError(`Cannot retag "${alloc.label}": unknown memory category "${category}"`);
    }
    if (alloc.category === category) return;
    const from = alloc.category;
    this.#current.set(from, (this.#current.get(from) ?? 0) - alloc.bytes);
    this.#count.set(from, (this.#count.get(from) ?? 0) - 1);
    const cur = (this.#current.get(category) ?? 0) + alloc.bytes;
    this.#current.set(category, cur);
    this.#count.set(category, (this.#count.get(category) ?? 0) + 1);
    if (cur > (this.#peak.get(category) ?? 0)) this.#peak.set(category, cur);
    (alloc as { category: MemoryCategory }).category = category;
  }

  /** Bytes in use, in total or for one category. */
  current(category?: MemoryCategory): number {
    return category ? this.#current.get(category) ?? 0 : this.#total;
  }

  /** Peak bytes, in total or for one category (each category's own peak). */
  peak(category?: MemoryCategory): number {
    return category ? this.#peak.get(category) ?? 0 : this.#totalPeak;
  }

  /** Starts a new peak window: peaks become the current values. */
  resetPeak(): void {
    this.#totalPeak = this.#total;
    for (const c of MEMORY_CATEGORIES) this.#peak.set(c, this.#current.get(c) ?? 0);
  }

  /** Number of live allocations. */
  get liveCount(): number {
    return this.#live.size;
  }

  /** Per-category usage rows (categories never used are left out). */
  usage(): CategoryUsage[] {
    return MEMORY_CATEGORIES.filter((c) => this.#peak.has(c)).map((category) => ({
      category,
      current: this.#current.get(category) ?? 0,
      peak: this.#peak.get(category) ?? 0,
      count: this.#count.get(category) ?? 0,
    }));
  }

  /** A flat record for metric logs: `mem_<category>_bytes`, `mem_<category>_peak_bytes`, totals. */
  snapshot(): Record<string, number> {
    const row: Record<string, number> = { mem_bytes: this.#total, mem_peak_bytes: this.#totalPeak };
    for (const u of this.usage()) {
      row[`mem_${u.category}_bytes`] = u.current;
      row[`mem_${u.category}_peak_bytes`] = u.peak;
    }
    return row;
  }

  #breakdown(): string {
    const parts = this.usage().filter((u) => u.current > 0).map((u) =>
      `${u.category} ${formatBytes(u.current)}`
    );
    return parts.length ? parts.join(", ") : "nothing allocated";
  }
}
