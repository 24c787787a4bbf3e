/**
 * The one path expert bytes take to the device, and the host round trips around it.
 *
 * {@link TransferEngine.uploadExpert} packs one whole expert (gate, up, down, in the device dtype) into
 * a host staging array (the pinned-buffer pack of FloE and mixtral-offloading) and sends it with
 * one `writeBuffer` per projection into a device slot: one transfer per (layer, expert). It counts
 * bytes and transfers by kind (`resident` at setup, `demand` when routing asks for an expert that
 * is not on the device, `prefetch` ahead of routing, `reload` after a misprediction).
 *
 * Time until usable: a WebGPU `writeBuffer` returns once the bytes are copied into the driver's
 * staging memory, long before the device can read them, and only a host round trip proves that it
 * can. So a transfer's usable time is taken from its enqueue to the end of the next sync
 * ({@link SyncClock.read}) after it: an upper bound, the only one Deno's WebGPU can observe without
 * a sync of its own. On the CPU backend an upload is a memcpy and usable when it returns.
 *
 * Staging: every write is followed by a submit (without waiting), so the ledger's upload staging
 * holds one write at most ({@link OffloadPolicy.maxTransferBytes} budgets it).
 *
 * Ordering rule (WebGPU): `writeBuffer` runs on the queue before any command buffer submitted after
 * it, including recorded work that is still pending. The runtime therefore writes a slot only
 * right after a sync (everything recorded before has run) and records the slot's compute after.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { HostExperts } from "./host_experts.ts";
 * import { SyncClock, TransferEngine } from "./transfer.ts";
 * const device = await createDevice({ backend: "cpu" });
 * const store = await HostExperts.fromCheckpoint("test/fixtures/models/mixtral-top2-f32");
 * const [F, C] = [store.intermediate, store.hidden];
 * const slots = { gate: Tensor.zeros(device, [2, F, C]), up: Tensor.zeros(device, [2, F, C]), down: Tensor.zeros(device, [2, C, F]) };
 * const transfers = new TransferEngine(device, store);
 * transfers.uploadExpert(1, 3, slots, 0, "demand"); // layer 1, expert 3 -> slot 0
 * const clock = new SyncClock(transfers);
 * await clock.read(slots.down); // a host round trip: the upload is usable by now
 * assert.equal(transfers.stats.bytes.demand, store.expertBytes());
 * assert.equal(transfers.stats.settled, 1);
 * ```
 * @module
 */
import type { Device } from "../device/device.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { EXPERT_PROJS, type HostExperts, type Staging } from "./host_experts.ts";

/** Why bytes moved. */
export type TransferKind = "resident" | "demand" | "prefetch" | "reload";

/** The device tensors of `S` expert slots: gate `[S, F, C]`, up `[S, F, C]`, down `[S, C, F]`. */
export interface SlotTensors {
  readonly gate: Tensor;
  readonly up: Tensor;
  readonly down: Tensor;
}

/** Counters of a {@link TransferEngine}. */
export interface ExpertTransferStats {
  /** Transfers (one per (layer, expert) sent) by kind. */
  count: Record<TransferKind, number>;
  /** Bytes sent by kind. */
  bytes: Record<TransferKind, number>;
  /** Milliseconds spent packing into the staging array and enqueueing the writes. */
  enqueueMs: number;
  /** Sum over settled transfers of the time from enqueue to the end of the sync that proved them usable. */
  usableMs: number;
  /** Bytes of the settled transfers. */
  settledBytes: number;
  /** Transfers known usable. */
  settled: number;
}

const kinds = (): Record<TransferKind, number> => ({ resident: 0, demand: 0, prefetch: 0, reload: 0 });

/** Packs and uploads whole experts from a {@link HostExperts} into device slots, counting. */
export class TransferEngine {
  readonly device: Device;
  readonly store: HostExperts;
  stats: ExpertTransferStats = TransferEngine.emptyStats();
  readonly #staging: Staging;
  #rows: Staging;
  #pending: { t0: number; bytes: number }[] = [];

  constructor(device: Device, store: HostExperts) {
    this.device = device;
    this.store = store;
    this.#staging = store.staging(store.expertValues()); // [3, F·C]: gate | up | down
    this.#rows = store.staging(0);
  }

  /** Fresh counters. */
  static emptyStats(): ExpertTransferStats {
    return { count: kinds(), bytes: kinds(), enqueueMs: 0, usableMs: 0, settledBytes: 0, settled: 0 };
  }

  /**
   * Sends expert `expert` of `layer` into slot `slot` of `slots`: one pack into the staging array,
   * then one write per projection.
   *
   * @returns the bytes sent
   * @throws {RangeError} when `slot` is outside the slots' first axis
   */
  uploadExpert(layer: number, expert: number, slots: SlotTensors, slot: number, kind: TransferKind): number {
    const S = slots.gate.shape[0];
    if (!(Number.isInteger(slot) && slot >= 0 && slot < S)) {
      throw new RangeError(
        `Cannot upload expert ${expert} of layer ${layer}: slot ${slot} is outside 0..${S - 1}`,
      );
    }
    const t0 = performance.now();
    const n = this.store.matrixValues();
    const b = this.store.bytesPerValue;
    EXPERT_PROJS.forEach((p, i) => this.store.pack(layer, expert, p, this.#staging, i * n));
    EXPERT_PROJS.forEach((p, i) => {
      this.device.upload(slots[p].storage, this.#staging.subarray(i * n, (i + 1) * n), slot * n * b);
      this.device.submit(); // upload staging lives for one projection at most
    });
    return this.#count(t0, 3 * n * b, kind);
  }

  /**
   * Sends the gate and transposed-down rows of `channels` of one expert into row `row` of
   * `gate`/`downT` (`[R, C]` each): one pack of both into the staging array, one write per matrix.
   *
   * @returns the bytes sent (`2 · channels · C · bytes per value`)
   * @throws {RangeError} when the rows do not fit below `R`
   */
  uploadRows(
    layer: number,
    expert: number,
    channels: ArrayLike<number>,
    target: { gate: Tensor; downT: Tensor },
    row: number,
    kind: TransferKind,
  ): number {
    const C = this.store.hidden;
    const n = channels.length;
    const R = target.gate.shape[0];
    if (row + n > R) {
      throw new RangeError(
        `Cannot upload ${n} rows of expert ${expert} at row ${row}: the buffer holds ${R} rows`,
      );
    }
    if (n === 0) return 0;
    const t0 = performance.now();
    const b = this.store.bytesPerValue;
    if (this.#rows.length < 2 * n * C) this.#rows = this.store.staging(2 * n * C);
    this.store.packRows(layer, expert, "gate", channels, this.#rows, 0);
    this.store.packRows(layer, expert, "downT", channels, this.#rows, n * C);
    this.device.upload(target.gate.storage, this.#rows.subarray(0, n * C), row * C * b);
    this.device.upload(target.downT.storage, this.#rows.subarray(n * C, 2 * n * C), row * C * b);
    this.device.submit(); // upload staging lives for one expert's rows at most
    return this.#count(t0, 2 * n * C * b, kind);
  }

  /**
   * Sends prepared bytes (an expert's packed codes and metadata, say) as one transfer: one write
   * per entry.
   *
   * @returns the bytes sent
   */
  uploadWrites(
    kind: TransferKind,
    writes: readonly { storage: Tensor["storage"]; data: ArrayBufferView }[],
  ): number {
    const t0 = performance.now();
    let bytes = 0;
    for (const w of writes) {
      this.device.upload(w.storage, w.data);
      this.device.submit(); // upload staging lives for one write at most
      bytes += w.data.byteLength;
    }
    return this.#count(t0, bytes, kind);
  }

  #count(t0: number, bytes: number, kind: TransferKind): number {
    const t1 = performance.now();
    this.stats.enqueueMs += t1 - t0;
    this.stats.count[kind]++;
    this.stats.bytes[kind] += bytes;
    if (this.device.kind === "cpu") this.#settle1(t0, t1, bytes);
    else this.#pending.push({ t0, bytes });
    return bytes;
  }

  /** Marks every pending transfer usable as of `now` (the end of a sync). */
  settle(now: number): void {
    for (const p of this.#pending) this.#settle1(p.t0, now, p.bytes);
    this.#pending = [];
  }

  #settle1(t0: number, t1: number, bytes: number): void {
    this.stats.usableMs += t1 - t0;
    this.stats.settledBytes += bytes;
    this.stats.settled++;
  }
}

/** Host round trips: counts them, times them, and settles the transfers they prove usable. */
export class SyncClock {
  /** Syncs so far. */
  syncs = 0;
  /** Milliseconds spent in them (submit, wait, copy back). */
  syncMs = 0;
  readonly #transfers: TransferEngine;

  constructor(transfers: TransferEngine) {
    this.#transfers = transfers;
  }

  /** Reads `t` back to the host: one sync. */
  async read<T extends Tensor>(t: T): Promise<Awaited<ReturnType<T["toArray"]>>> {
    const t0 = performance.now();
    const out = await t.toArray();
    const t1 = performance.now();
    this.syncs++;
    this.syncMs += t1 - t0;
    this.#transfers.settle(t1);
    return out as Awaited<ReturnType<T["toArray"]>>;
  }

  /** Waits for all recorded work without reading anything: one sync. */
  async flush(): Promise<void> {
    const t0 = performance.now();
    await this.#transfers.device.flush();
    const t1 = performance.now();
    this.syncs++;
    this.syncMs += t1 - t0;
    this.#transfers.settle(t1);
  }
}
