/**
 * The WebGPU backend. Ops record kernel dispatches into one pending command encoder
 * (one open compute pass); the work is submitted when a result is read back or on
 * an explicit {@link WebGpuDevice.flush}. On software adapters a submit-and-wait
 * costs ~12 ms while a dispatch inside a batch costs ~0.1 ms, so one forward step
 * is one submit.
 *
 * Uniform parameters of every dispatch in a batch are packed into one host-side
 * ring and uploaded with a single `writeBuffer` just before the submit.
 *
 * @example
 * ```ts ignore
 * import { createDevice } from "./create_device.ts";
 * const dev = await createDevice({ backend: "webgpu" });
 * console.log(dev.info.adapter, dev.ledger.current());
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
import { type Allocation, MemoryLedger } from "./ledger.ts";
import { type KernelConstants, type KernelSpec, PipelineCache } from "./pipelines.ts";

/** One kernel launch: storage bindings 0..n-1 in order, then the uniform `params` at binding n. */
export interface DispatchArgs {
  bindings: readonly Storage[];
  /** Packed uniform parameters (at most 256 bytes), bound after the storage bindings. */
  params?: ArrayBufferView;
  /** Workgroup counts; each at most `maxComputeWorkgroupsPerDimension` (65535). */
  workgroups: readonly [number, number?, number?];
  constants?: KernelConstants;
}

const PARAM_SLOT = 256;
const PARAM_SLOTS = 4096;
const FLUSH_UPLOAD_BYTES = 64 << 20;

/** A WebGPU device with a memory ledger and command batching. Create it with `createDevice`. */
export class WebGpuDevice implements Device {
  readonly kind = "webgpu" as const;
  readonly info: DeviceInfo;
  readonly ledger: MemoryLedger;
  readonly stats = emptyStats();
  /** The underlying `GPUDevice`: for kernels and benchmarks, not for models. */
  readonly gpu: GPUDevice;
  readonly pipelines: PipelineCache;
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #params: GPUBuffer;
  #paramsAllocation: Allocation;
  /** Ledger entries of the bytes `writeBuffer` holds in its staging memory until the next submit. */
  #uploadStaging: Allocation[] = [];
  /** When the oldest upload not yet known to be on the device was enqueued (null: none pending). */
  #uploadPendingSince: number | null = null;
  #paramHost = new Uint8Array(PARAM_SLOT * PARAM_SLOTS);
  #paramSlot = 0;
  #slotAlign: number;
  #retired: GPUBuffer[] = [];
  #uploadedSinceSubmit = 0;
  #lost: GPUDeviceLostInfo | null = null;
  #destroyed = false;
  #uncaptured: GPUError | null = null;

  constructor(gpu: GPUDevice, info: DeviceInfo, options: { budgetBytes?: number } = {}) {
    this.gpu = gpu;
    this.info = info;
    this.ledger = new MemoryLedger(options);
    this.pipelines = new PipelineCache(gpu);
    this.#slotAlign = Math.max(PARAM_SLOT, gpu.limits.minUniformBufferOffsetAlignment);
    // The uniform ring of kernel parameters is device memory too: category "staging".
    this.#paramsAllocation = this.ledger.allocate(this.#slotAlign * PARAM_SLOTS, "staging", "params ring");
    this.#params = gpu.createBuffer({
      label: "ferry.params",
      size: this.#slotAlign * PARAM_SLOTS,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    gpu.lost.then((info) => {
      this.#lost = info;
    });
    gpu.addEventListener("uncapturederror", (e) => {
      this.#uncaptured ??= (e as GPUUncapturedErrorEvent).error;
    });
  }

  alloc(bytes: number, options: AllocOptions): Storage {
    this.#alive();
    const size = Math.max(4, align4(bytes));
    const limit = this.gpu.limits.maxStorageBufferBindingSize;
    if (size > limit) {
      throw new RangeError(
        `Cannot allocate ${size} bytes for ${options.category}${
          options.label ? ` ("${options.label}")` : ""
        }: ` +
          `a kernel can bind at most maxStorageBufferBindingSize = ${limit} bytes on this adapter; ` +
          `split the tensor along its first axis (e.g. per layer or per expert)`,
      );
    }
    const allocation = this.ledger.allocate(size, options.category, options.label);
    const buffer = this.gpu.createBuffer({
      label: options.label,
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    return { bytes: size, allocation, buffer, refs: 1 };
  }

  upload(storage: Storage, data: ArrayBufferView, byteOffset = 0): void {
    this.#alive();
    this.#uploadPendingSince ??= performance.now();
    // writeBuffer needs a 4-byte multiple; pad the tail through a copy when needed.
    let src = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
    if (src.byteLength % 4 !== 0) {
      const padded = new Uint8Array(align4(src.byteLength));
      padded.set(src);
      src = padded;
    }
    // writeBuffer copies into staging memory that lives until the submit: counted until then.
    this.#uploadStaging.push(this.ledger.allocate(src.byteLength, "staging", "upload staging"));
    this.gpu.queue.writeBuffer(storage.buffer!, byteOffset, src);
    this.stats.uploads++;
    this.stats.uploadBytes += data.byteLength;
    // A writeBuffer never followed by a submit is never flushed (and its memory never returned).
    this.#uploadedSinceSubmit += src.byteLength;
    if (this.#uploadedSinceSubmit >= FLUSH_UPLOAD_BYTES) this.submit();
  }

  /** Records one kernel launch into the pending compute pass. */
  dispatch(spec: KernelSpec, args: DispatchArgs): void {
    this.#alive();
    const pipeline = this.pipelines.get(spec, args.constants);
    const entries: GPUBindGroupEntry[] = args.bindings.map((s, i) => ({
      binding: i,
      resource: { buffer: s.buffer! },
    }));
    if (args.params) {
      if (this.#paramSlot === PARAM_SLOTS) this.submit();
      const bytes = new Uint8Array(args.params.buffer, args.params.byteOffset, args.params.byteLength);
      if (bytes.byteLength > PARAM_SLOT) {
        throw new RangeError(`Kernel "${spec.name}" params exceed ${PARAM_SLOT} bytes`);
      }
      this.#paramHost.set(bytes, this.#paramSlot * PARAM_SLOT);
      entries.push({
        binding: args.bindings.length,
        resource: { buffer: this.#params, offset: this.#paramSlot * this.#slotAlign, size: PARAM_SLOT },
      });
      this.#paramSlot++;
    }
    const bindGroup = this.gpu.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    const pass = this.#computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    const [x, y = 1, z = 1] = args.workgroups;
    pass.dispatchWorkgroups(x, y, z);
    this.stats.dispatches++;
  }

  /** Records a buffer-to-buffer copy into the pending command buffer. */
  copy(src: Storage, srcOffset: number, dst: Storage, dstOffset: number, bytes: number): void {
    this.#alive();
    this.#endPass();
    this.#commandEncoder().copyBufferToBuffer(src.buffer!, srcOffset, dst.buffer!, dstOffset, bytes);
  }

  async read(storage: Storage, byteLength: number, byteOffset = 0): Promise<ArrayBuffer> {
    this.#alive();
    const size = align4(byteLength);
    const t0 = performance.now();
    const alloc = this.ledger.allocate(size, "staging", "readback");
    const staging = this.gpu.createBuffer({
      label: "ferry.readback",
      size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    try {
      this.#endPass();
      this.#commandEncoder().copyBufferToBuffer(storage.buffer!, byteOffset, staging, 0, size);
      this.submit();
      await this.#checkErrors();
      await staging.mapAsync(GPUMapMode.READ);
      this.#alive();
      this.#uploadsSettled();
      // Deno's getMappedRange already returns a copy; take it once.
      const out = staging.getMappedRange(0, size).slice(0, byteLength);
      staging.unmap();
      this.stats.readbacks++;
      this.stats.readbackBytes += byteLength;
      this.stats.readbackMs += performance.now() - t0;
      return out;
    } finally {
      staging.destroy();
      this.ledger.release(alloc);
    }
  }

  free(storage: Storage): void {
    if (--storage.refs > 0) return;
    this.ledger.release(storage.allocation);
    // Pending commands may still reference the buffer: destroy it after the next submit.
    if (this.#encoder) this.#retired.push(storage.buffer!);
    else storage.buffer!.destroy();
  }

  /** Submits the pending command buffer without waiting. */
  submit(): void {
    this.#alive();
    this.#endPass();
    if (!this.#encoder && this.#uploadedSinceSubmit === 0) return;
    if (this.#paramSlot > 0) {
      // Slots are PARAM_SLOT bytes on the host and #slotAlign bytes apart on the device.
      if (this.#slotAlign === PARAM_SLOT) {
        this.gpu.queue.writeBuffer(this.#params, 0, this.#paramHost, 0, this.#paramSlot * PARAM_SLOT);
      } else {
        for (let i = 0; i < this.#paramSlot; i++) {
          this.gpu.queue.writeBuffer(
            this.#params,
            i * this.#slotAlign,
            this.#paramHost,
            i * PARAM_SLOT,
            PARAM_SLOT,
          );
        }
      }
      this.#paramSlot = 0;
    }
    this.gpu.queue.submit(this.#encoder ? [this.#encoder.finish()] : []);
    this.#encoder = null;
    this.#uploadedSinceSubmit = 0;
    for (const a of this.#uploadStaging) this.ledger.release(a);
    this.#uploadStaging = [];
    this.stats.submits++;
    for (const b of this.#retired) b.destroy();
    this.#retired = [];
  }

  async flush(): Promise<void> {
    this.submit();
    await this.#checkErrors();
    await this.gpu.queue.onSubmittedWorkDone();
    this.#alive();
    this.#uploadsSettled();
  }

  /**
   * After a completed round trip every upload enqueued before it is on the device: `uploadMs` gains
   * the time from the oldest such enqueue to now (an upper bound of the transfer time, the only one
   * observable without a sync of its own; overlapping uploads count once).
   */
  #uploadsSettled(): void {
    if (this.#uploadPendingSince === null) return;
    this.stats.uploadMs += performance.now() - this.#uploadPendingSince;
    this.#uploadPendingSince = null;
  }

  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const a of this.#uploadStaging) this.ledger.release(a);
    this.#uploadStaging = [];
    this.ledger.release(this.#paramsAllocation);
    this.#params.destroy();
    this.gpu.destroy();
  }

  /** True once the device was lost or destroyed. */
  get lost(): boolean {
    return this.#destroyed || this.#lost !== null;
  }

  async #checkErrors(): Promise<void> {
    await this.pipelines.check();
    if (this.#uncaptured) {
      const err = this.#uncaptured;
      this.#uncaptured = null;
      throw new Error(`WebGPU reported an error in recorded work: ${err.message}`);
    }
  }

  #commandEncoder(): GPUCommandEncoder {
    return this.#encoder ??= this.gpu.createCommandEncoder({ label: "ferry.batch" });
  }

  #computePass(): GPUComputePassEncoder {
    return this.#pass ??= this.#commandEncoder().beginComputePass();
  }

  #endPass(): void {
    if (this.#pass) {
      this.#pass.end();
      this.#pass = null;
    }
  }

  #alive(): void {
    if (this.#destroyed) {
      throw new DeviceLostError(
        "Cannot use WebGPU device: it was destroyed; create a new one with createDevice()",
        "destroyed",
      );
    }
    if (this.#lost) {
      throw new DeviceLostError(
        `Cannot use WebGPU device: the device was lost (${this.#lost.reason}: ${this.#lost.message}). ` +
          `This usually means the GPU ran out of memory or the driver reset; create a new device with ` +
          `createDevice(), and try a smaller budget, batch or expert cache`,
        this.#lost.reason,
      );
    }
  }
}
