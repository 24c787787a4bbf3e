/**
 * `Tensor`: shape, dtype, device and storage. No math here: ops live in `src/ops/`.
 *
 * Tensors are immutable once built; ops return new tensors. A tensor's bytes are
 * allocated through its device's memory ledger under a category and returned by
 * `dispose()` (or at the end of a `using` block). Reshapes share storage.
 *
 * @example Round trip through a device
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "./tensor.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * using t = Tensor.fromArray(dev, new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]);
 * assert.ok(t.size === 6 && (await t.toArray())[5] === 6);
 * ```
 * @module
 */
import type { Device, Storage } from "../device/device.ts";
import type { MemoryCategory } from "../device/ledger.ts";
import {
  checkDType,
  type DType,
  DTYPE_BYTES,
  dtypeOf,
  type HostArray,
  type HostArrayOf,
  hostView,
} from "./dtype.ts";

/** A shape: non-negative integer extents, outermost first. */
export type Shape = readonly number[];

/** Options for building a tensor. */
export interface TensorOptions<D extends DType = DType> {
  dtype?: D;
  /** Ledger category; `"activations"` when left out. */
  category?: MemoryCategory;
  label?: string;
}

/** Number of elements of `shape`. */
export function shapeSize(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Throws a `TypeError` unless `shape` is a list of non-negative integers. */
export function checkShape(shape: Shape, what: string): void {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new TypeError(`Cannot ${what}: shape must be non-negative integers: received [${shape}]`);
  }
}

/** An n-dimensional array on a device. */
export class Tensor<D extends DType = DType> {
  readonly shape: Shape;
  readonly dtype: D;
  readonly device: Device;
  readonly storage: Storage;
  #disposed = false;

  /** Wraps existing storage; prefer `Tensor.fromArray`, `Tensor.empty` or an op. */
  constructor(device: Device, storage: Storage, shape: Shape, dtype: D) {
    this.device = device;
    this.storage = storage;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
  }

  /** Uninitialised (zeroed) tensor of `shape`. */
  static empty<D extends DType = "f32">(
    device: Device,
    shape: Shape,
    options: TensorOptions<D> = {},
  ): Tensor<D> {
    checkShape(shape, "create tensor");
    const dtype = checkDType(options.dtype ?? "f32", "create tensor") as D;
    const storage = device.alloc(shapeSize(shape) * DTYPE_BYTES[dtype], {
      category: options.category ?? "activations",
      label: options.label ?? `${dtype}[${shape}]`,
    });
    return new Tensor(device, storage, shape, dtype);
  }

  /** Tensor of zeros (device memory starts zeroed). */
  static zeros<D extends DType = "f32">(
    device: Device,
    shape: Shape,
    options: TensorOptions<D> = {},
  ): Tensor<D> {
    return Tensor.empty(device, shape, options);
  }

  /**
   * Uploads host data. The dtype follows the array (`Uint16Array` needs `dtype: "f16"` or `"bf16"`,
   * and is read as f16 when left out); `shape` defaults to 1-D.
   */
  static fromArray<D extends DType>(
    device: Device,
    data: HostArray | readonly number[],
    shape?: Shape,
    options: TensorOptions<D> = {},
  ): Tensor<D> {
    const arr = Array.isArray(data) ? new Float32Array(data) : data as HostArray;
    const dtype = options.dtype ?? dtypeOf(arr) as D;
    checkDType(dtype, "create tensor from array");
    const expected = ARRAY_FOR[dtype];
    if (!(arr instanceof expected)) {
      throw new TypeError(
        `Cannot create ${dtype} tensor: data must be a ${expected.name}: received ${arr.constructor.name}`,
      );
    }
    const s = shape ?? [arr.length];
    checkShape(s, "create tensor from array");
    if (shapeSize(s) !== arr.length) {
      throw new TypeError(
        `Cannot create tensor of shape [${s}]: it holds ${shapeSize(s)} elements but data has ${arr.length}`,
      );
    }
    const t = Tensor.empty(device, s, { ...options, dtype: dtype as D });
    if (arr.byteLength > 0) device.upload(t.storage, arr);
    return t;
  }

  /** Number of elements. */
  get size(): number {
    return shapeSize(this.shape);
  }

  /** Bytes of data (without the storage's 4-byte padding). */
  get byteLength(): number {
    return this.size * DTYPE_BYTES[this.dtype];
  }

  /** Number of dimensions. */
  get rank(): number {
    return this.shape.length;
  }

  /** True after `dispose()`. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /** Copies the data to the host (flushing pending device work). */
  async toArray(): Promise<HostArrayOf[D]> {
    this.#check("read");
    const bytes = await this.device.read(this.storage, this.byteLength);
    return hostView(this.dtype, bytes, 0, this.size);
  }

  /** Nested JS arrays, for printing small tensors. */
  async toNested(): Promise<unknown> {
    const flat = Array.from(await this.toArray() as ArrayLike<number>);
    const build = (dim: number, offset: number): unknown => {
      if (dim === this.rank) return flat[offset];
      const stride = shapeSize(this.shape.slice(dim + 1));
      return Array.from({ length: this.shape[dim] }, (_, i) => build(dim + 1, offset + i * stride));
    };
    return build(0, 0);
  }

  /**
   * CPU backend only: a live typed view of the storage (used by the op references).
   * Throws on WebGPU, where the bytes live on the device.
   */
  host(): HostArrayOf[D] {
    this.#check("view");
    if (!this.storage.host) {
      throw new TypeError(
        `Cannot view tensor on the host: it lives on a ${this.device.kind} device; use toArray()`,
      );
    }
    return hostView(this.dtype, this.storage.host, 0, this.size);
  }

  /** Same data, new shape (shares storage; `-1` infers one extent). */
  reshape(shape: Shape): Tensor<D> {
    this.#check("reshape");
    const known = shape.filter((d) => d !== -1);
    const inferred = shape.length - known.length;
    const s = inferred === 1 ? shape.map((d) => d === -1 ? this.size / shapeSize(known) : d) : [...shape];
    if (inferred > 1 || s.some((d) => !Number.isInteger(d) || d < 0) || shapeSize(s) !== this.size) {
      throw new TypeError(`Cannot reshape [${this.shape}] (${this.size} elements) to [${shape}]`);
    }
    this.storage.refs++;
    return new Tensor(this.device, this.storage, s, this.dtype);
  }

  /** Returns the tensor's bytes to the ledger. Disposing twice is a no-op. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.device.free(this.storage);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  toString(): string {
    return `Tensor(${this.dtype}[${this.shape.join(", ")}], ${this.device.kind})`;
  }

  #check(what: string): void {
    if (this.#disposed) {
      throw new TypeError(`Cannot ${what} tensor ${this.dtype}[${this.shape}]: it was disposed`);
    }
  }
}

const ARRAY_FOR = {
  f32: Float32Array,
  f16: Uint16Array,
  bf16: Uint16Array,
  i32: Int32Array,
  u32: Uint32Array,
} as const;
