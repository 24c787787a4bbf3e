/**
 * The CPU device's BLAS, for ops that hand GEMM-shaped work to it. Private to `src/ops/`.
 * @module
 */
import type { Blas } from "../device/blas.ts";
import type { CpuDevice } from "../device/cpu_device.ts";
import type { Device } from "../device/device.ts";

/** The BLAS of a CPU device that loaded one; null on WebGPU or without a library. */
export function blasOf(device: Device): Blas | null {
  return device.kind === "cpu" ? (device as CpuDevice).blas : null;
}
