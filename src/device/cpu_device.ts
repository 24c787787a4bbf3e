/**
 * The CPU backend: plain `ArrayBuffer`s, each op's TypeScript reference, and a BLAS through FFI
 * (when one was loaded, see `blas.ts`) for GEMM-shaped work. Without a BLAS it is slow and exact:
 * the oracle in tests and the fallback where no WebGPU adapter exists (Bun, headless CI without
 * Mesa). `createDevice({ backend: "cpu" })` loads the BLAS; `new CpuDevice()` alone has none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CpuDevice } from "./cpu_device.ts";
 * const dev = new CpuDevice({ budgetBytes: 1 << 20 });
 * const s = dev.alloc(16, { category: "activations" });
 * dev.upload(s, new Float32Array([1, 2, 3, 4]));
 * const back = new Float32Array(await dev.read(s, 16));
 * assert.ok(back[3] === 4 && dev.ledger.current() === 16);
 * dev.free(s);
 * ```
 * @module
 */
import { DeviceLostError } from "../errors.ts";
import {
  align4,
  type AllocOptions,
  type Device,
  type DeviceInfo,
  emptyStats,
  type Storage,
} from "./device.ts";
import type { Blas } from "./blas.ts";
import { MemoryLedger } from "./ledger.ts";

/** Smallest buffer worth keeping for reuse (smaller ones are cheap to create). */
const POOL_MIN_BYTES = 4096;
/** Most bytes of freed buffers kept for reuse. */
const POOL_MAX_BYTES = 256 << 20;

/** Backend that runs every op's TypeScript reference on host memory. */
export class CpuDevice implements Device {
  readonly kind = "cpu" as const;
  readonly info: DeviceInfo;
  readonly ledger: MemoryLedger;
  readonly stats = emptyStats();
  /** The BLAS that GEMM-shaped ops call, or null: those ops then run their TypeScript reference. */
  readonly blas: Blas | null;
  #destroyed = false;
  /**
   * Freed host buffers by size, handed out again (zeroed) by the next allocation of that size: a
   * training step allocates the same activation shapes every step, and a fresh `ArrayBuffer`
   * costs page faults that zeroing a warm one does not. Outside the ledger, which counts what
   * tensors hold; at most {@link POOL_MAX_BYTES}.
   */
  #pool = new Map<number, ArrayBuffer[]>();
  #pooledBytes = 0;

  constructor(options: { budgetBytes?: number; blas?: Blas | null } = {}) {
    this.ledger = new MemoryLedger(options);
    this.blas = options.blas ?? null;
    const b = this.blas?.info;
    this.info = {
      backend: "cpu",
      adapter: b
        ? `cpu (${b.config.split(" ").slice(0, 2).join(" ")}, ${b.threads} thread${
          b.threads === 1 ? "" : "s"
        }, ${b.coreType})`
        : "cpu (TypeScript reference)",
      isFallbackAdapter: false,
      features: [],
      limits: { maxStorageBufferBindingSize: 2 ** 31 - 4, maxBufferSize: 2 ** 31 - 4 },
      ...(b ? { blas: { ...b } } : {}),
    };
  }

  alloc(bytes: number, options: AllocOptions): Storage {
    this.#alive();
    const size = align4(bytes);
    if (size > this.info.limits.maxBufferSize) {
      throw new RangeError(
        `Cannot allocate ${bytes} bytes for ${options.category}: larger than the 2 GiB a single buffer may hold; split the tensor`,
      );
    }
    const allocation = this.ledger.allocate(size, options.category, options.label);
    const reused = this.#pool.get(size)?.pop();
    if (reused) this.#pooledBytes -= size;
    const host = reused ? (new Uint8Array(reused).fill(0), reused) : new ArrayBuffer(size);
    return { bytes: size, allocation, host, refs: 1 };
  }

  upload(storage: Storage, data: ArrayBufferView, byteOffset = 0): void {
    this.#alive();
    const t0 = performance.now();
    new Uint8Array(storage.host!, byteOffset, data.byteLength).set(
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    );
    this.stats.uploads++;
    this.stats.uploadBytes += data.byteLength;
    this.stats.uploadMs += performance.now() - t0;
  }

  read(storage: Storage, byteLength: number, byteOffset = 0): Promise<ArrayBuffer> {
    this.#alive();
    this.stats.readbacks++;
    this.stats.readbackBytes += byteLength;
    return Promise.resolve(storage.host!.slice(byteOffset, byteOffset + byteLength));
  }

  free(storage: Storage): void {
    if (--storage.refs !== 0) return;
    this.ledger.release(storage.allocation);
    const size = storage.bytes;
    if (size >= POOL_MIN_BYTES && this.#pooledBytes + size <= POOL_MAX_BYTES && !this.#destroyed) {
      const list = this.#pool.get(size) ?? [];
      list.push(storage.host!);
      this.#pool.set(size, list);
      this.#pooledBytes += size;
    }
  }

  /** Nothing is pending on the CPU backend. */
  submit(): void {
    this.#alive();
  }

  flush(): Promise<void> {
    this.#alive();
    return Promise.resolve();
  }

  destroy(): void {
    this.#destroyed = true;
    this.#pool.clear();
    this.#pooledBytes = 0;
  }

  #alive(): void {
    if (this.#destroyed) {
      throw new DeviceLostError(
        "Cannot use CPU device: it was destroyed; create a new one with createDevice()",
        "destroyed",
      );
    }
  }
}
