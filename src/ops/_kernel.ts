/**
 * Helpers shared by op files: dispatch-grid sizing, uniform parameter packing and
 * the checks every op makes at its boundary. Private to `src/ops/`.
 * @module
 */
import type { Device } from "../device/device.ts";
import type { WebGpuDevice } from "../device/webgpu_device.ts";
import type { DType } from "../tensor/dtype.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** Largest workgroup count per dimension that WebGPU guarantees. */
export const MAX_GROUPS = 65535;

/**
 * Splits `groups` workgroups over x and y so each stays within {@link MAX_GROUPS}.
 * Kernels recover the flat index as `wid.x + wid.y * num_workgroups.x`.
 */
export function grid1d(groups: number): [number, number] {
  if (groups <= MAX_GROUPS) return [Math.max(1, groups), 1];
  const y = Math.ceil(groups / MAX_GROUPS);
  return [Math.ceil(groups / y), y];
}

/** One uniform field: a `u32`, `i32` or `f32` scalar. */
export type ParamField = readonly ["u32" | "i32" | "f32", number];

/** Packs scalar fields, in order, into the bytes of a WGSL uniform struct of 4-byte members. */
export function params(...fields: ParamField[]): Uint32Array {
  const out = new Uint32Array(fields.length);
  const f32 = new Float32Array(out.buffer);
  const i32 = new Int32Array(out.buffer);
  fields.forEach(([type, value], i) => {
    if (type === "f32") f32[i] = value;
    else if (type === "i32") i32[i] = value;
    else out[i] = value;
  });
  return out;
}

/** The WebGPU device behind `device` (ops call this after branching on `kind`). */
export function gpuOf(device: Device): WebGpuDevice {
  return device as WebGpuDevice;
}

/** Throws unless every tensor lives on the same device as the first. */
export function sameDevice(op: string, ...tensors: Tensor[]): Device {
  const device = tensors[0].device;
  for (const t of tensors) {
    if (t.device !== device) throw new TypeError(`Cannot run ${op}: tensors live on different devices`);
  }
  return device;
}

/** Throws a `TypeError` unless `t.dtype` is one of `dtypes`. */
export function expectDType(op: string, name: string, t: Tensor, ...dtypes: DType[]): void {
  if (!dtypes.includes(t.dtype)) {
    throw new TypeError(`Cannot run ${op}: ${name} must be ${dtypes.join(" or ")}: received ${t.dtype}`);
  }
}

/** Throws a `TypeError` unless `t.rank` is at least `min` (and at most `max`). */
export function expectRank(op: string, name: string, t: Tensor, min: number, max = min): void {
  if (t.rank < min || t.rank > max) {
    const want = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
    throw new TypeError(`Cannot run ${op}: ${name} must have rank ${want}: received shape [${t.shape}]`);
  }
}
