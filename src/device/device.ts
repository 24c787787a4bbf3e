/**
 * The device contract shared by the WebGPU backend and the CPU reference backend.
 *
 * A {@link Device} owns a {@link MemoryLedger}; every byte a tensor holds is
 * allocated through {@link Device.alloc} under a category. Ops branch on
 * `device.kind`: the CPU backend runs each op's TypeScript reference directly on the
 * storage's `ArrayBuffer`; the WebGPU backend records a kernel dispatch into the
 * pending command buffer (see `webgpu_device.ts`).
 * @module
 */
import type { BlasInfo } from "./blas.ts";
import type { Allocation, MemoryCategory, MemoryLedger } from "./ledger.ts";

/** Which backend runs the ops. */
export type BackendKind = "webgpu" | "cpu";

/** What `createDevice` found: printed by the demo, logged with runs. */
export interface DeviceInfo {
  backend: BackendKind;
  /** Adapter description, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`, or `cpu (TypeScript reference)`. */
  adapter: string;
  /** True for software adapters (llvmpipe, SwiftShader). */
  isFallbackAdapter: boolean;
  features: string[];
  limits: Record<string, number>;
  /** CPU backend: the BLAS that runs GEMM-shaped work; absent when the TypeScript references do. */
  blas?: BlasInfo;
}

/** Host→device transfer counters (one upload path; the offload runtime reads these). */
export interface TransferStats {
  uploads: number;
  uploadBytes: number;
  /**
   * Time until the uploads were usable on the device: on WebGPU from the oldest pending upload's
   * enqueue to the end of the round trip (readback or `flush()`) that proved it, overlapping uploads
   * counted once (an upper bound: the wait includes work queued with them); on the CPU backend the
   * copies themselves.
   */
  uploadMs: number;
  readbacks: number;
  readbackBytes: number;
  /** Time of the readbacks to the host, submit and wait included. */
  readbackMs: number;
  submits: number;
  dispatches: number;
}

/** Device memory behind a tensor. Shared by reshaped views through `refs`. */
export interface Storage {
  readonly bytes: number;
  readonly allocation: Allocation;
  /** CPU backend: the bytes. WebGPU backend: undefined. */
  readonly host?: ArrayBuffer;
  /** WebGPU backend: the buffer. CPU backend: undefined. */
  readonly buffer?: GPUBuffer;
  refs: number;
}

/** Options common to `alloc`. */
export interface AllocOptions {
  category: MemoryCategory;
  label?: string;
}

/** A compute device: the only layer that touches `GPUDevice`. */
export interface Device {
  readonly kind: BackendKind;
  readonly info: DeviceInfo;
  readonly ledger: MemoryLedger;
  readonly stats: TransferStats;
  /** Allocates `bytes` (rounded up to 4) of zeroed device memory. */
  alloc(bytes: number, options: AllocOptions): Storage;
  /** Copies host bytes into `storage` at `byteOffset` (counted as an upload). */
  upload(storage: Storage, data: ArrayBufferView, byteOffset?: number): void;
  /** Reads `byteLength` bytes from `storage`; flushes pending work first. */
  read(storage: Storage, byteLength: number, byteOffset?: number): Promise<ArrayBuffer>;
  /** Drops one reference; memory returns to the ledger when the last goes. */
  free(storage: Storage): void;
  /**
   * Submits pending work (and uploads) without waiting: upload staging is returned to the ledger
   * here. A no-op on the CPU backend.
   */
  submit(): void;
  /** Submits pending work and waits for it to finish. */
  flush(): Promise<void>;
  /** Releases the device; later use throws `DeviceLostError`. */
  destroy(): void;
}

/** Fresh transfer counters. */
export function emptyStats(): TransferStats {
  return {
    uploads: 0,
    uploadBytes: 0,
    uploadMs: 0,
    readbacks: 0,
    readbackBytes: 0,
    readbackMs: 0,
    submits: 0,
    dispatches: 0,
  };
}

/** Rounds a byte count up to a multiple of 4 (WebGPU copy alignment). */
export function align4(bytes: number): number {
  return Math.ceil(bytes / 4) * 4;
}
