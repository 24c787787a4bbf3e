/**
 * The public kernel API of ops/: what code outside `src/ops/` (a compressor's kernel, a researcher's
 * own) needs to run a WGSL kernel on tensors, without the private helpers of `_kernel.ts` or the
 * WebGPU device class. A kernel launch names its WGSL source and entry point, binds tensors
 * (storage bindings 0..n-1 in order, then the packed uniform `params` at binding n) and records into
 * the device's pending command buffer like every op (one submit at the next readback).
 *
 * Kernels run on the WebGPU backend only: on the CPU backend a caller runs its TypeScript reference.
 *
 * @example Packing uniform parameters and sizing a grid
 * ```ts
 * import assert from "node:assert/strict";
 * import { grid1d, params } from "./kernel.ts";
 * assert.deepEqual(grid1d(70000), [35000, 2]); // more than 65535 workgroups: split over y
 * const p = params(["u32", 3], ["f32", 0.5]);
 * assert.equal(new Float32Array(p.buffer)[1], 0.5);
 * ```
 * @module
 */
import f16 from "../../kernels/f16.wgsl" with { type: "text" };
import type { KernelConstants, KernelSpec } from "../device/pipelines.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { gpuOf, sameDevice } from "./_kernel.ts";

export { grid1d, MAX_GROUPS, type ParamField, params } from "./_kernel.ts";
export type { KernelConstants, KernelSpec };

/**
 * WGSL functions `f16_bits_to_f32(h: u32) -> f32` and `f32_to_f16_bits(v: f32) -> u32` (round to
 * nearest even, subnormals kept, as `Math.f16round`), to prepend to a kernel that stores f16 values
 * in `u32` words (`kernels/f16.wgsl`).
 */
export const F16_WGSL: string = f16;

/** One launch of a kernel. */
export interface KernelLaunch {
  /** Storage bindings 0..n-1, in order; all on one WebGPU device. */
  readonly bindings: readonly Tensor[];
  /** Packed uniform parameters (at most 256 bytes, see `params`), bound at binding n. */
  readonly params?: Uint32Array;
  /** Workgroup counts, each at most 65535 (see `grid1d`). */
  readonly workgroups: readonly [number, number?, number?];
  /** `override` constants of the pipeline, e.g. `{ WG: 64 }`. */
  readonly constants?: KernelConstants;
}

/**
 * Records one dispatch of `kernel` on the device of its bound tensors.
 * @throws {TypeError} when there are no bindings, they live on different devices, or on a device
 *   that runs no kernels (the CPU backend: run the TypeScript reference there)
 */
export function dispatchKernel(kernel: KernelSpec, launch: KernelLaunch): void {
  const what = `kernel "${kernel.name}"`;
  if (launch.bindings.length === 0) throw new TypeError(`Cannot dispatch ${what}: it binds no tensors`);
  const device = sameDevice(what, ...launch.bindings);
  if (device.kind !== "webgpu") {
    throw new TypeError(
      `Cannot dispatch ${what}: its tensors live on the ${device.kind} backend, which runs no WGSL; ` +
        `run the op's TypeScript reference there`,
    );
  }
  gpuOf(device).dispatch(kernel, {
    bindings: launch.bindings.map((t) => t.storage),
    params: launch.params,
    workgroups: launch.workgroups,
    constants: launch.constants,
  });
}
