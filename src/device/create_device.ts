/**
 * `createDevice`: the one entry point to a compute device.
 *
 * @example CPU reference device with a budget
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "./create_device.ts";
 * const dev = await createDevice({ backend: "cpu", budgetBytes: 64 << 20 });
 * assert.ok(dev.kind === "cpu" && dev.ledger.budgetBytes === 64 << 20);
 * ```
 * @module
 */
import process from "node:process";
import { readEnv } from "../host/env.ts";
import { loadBlas } from "./blas.ts";
import { CpuDevice } from "./cpu_device.ts";
import type { BackendKind, Device, DeviceInfo } from "./device.ts";
import { WebGpuDevice } from "./webgpu_device.ts";

/** Options for {@link createDevice}. */
export interface CreateDeviceOptions {
  /** `"auto"` (default) picks WebGPU when an adapter exists, else the CPU reference. `FERRY_BACKEND` overrides `"auto"`. */
  backend?: "auto" | BackendKind;
  /** Byte budget the memory ledger enforces; unbounded when left out. */
  budgetBytes?: number;
  powerPreference?: GPUPowerPreference;
  /**
   * CPU backend: the BLAS for GEMM-shaped work. `true` (default) finds one (`FERRY_BLAS`, else
   * OpenBLAS) and falls back to the TypeScript references with a notice; a path loads that library
   * (an error if it fails); `false` runs the references only.
   */
  blas?: boolean | string;
}

/** Optional WebGPU features requested when the adapter offers them. */
export const OPTIONAL_FEATURES: readonly GPUFeatureName[] = ["shader-f16", "subgroups", "timestamp-query"];

const NO_ADAPTER_HINT =
  "No WebGPU adapter was found. On Linux without a GPU, install Mesa's software Vulkan driver " +
  '(apt-get install mesa-vulkan-drivers) and run with DENO_WEBGPU_BACKEND=vulkan, or pass backend: "cpu"';

/** Opens a compute device: WebGPU (largest limits, optional features) or the CPU reference. */
export async function createDevice(options: CreateDeviceOptions = {}): Promise<Device> {
  let backend = options.backend ?? "auto";
  if (!["auto", "webgpu", "cpu"].includes(backend)) {
    throw new TypeError(
      `Cannot create device: unknown backend "${backend}": expected one of auto, webgpu, cpu`,
    );
  }
  if (backend === "auto") backend = envBackend() ?? "auto";
  if (backend === "cpu") return await cpuDevice(options);
  const adapter = await requestAdapter(options.powerPreference);
  if (!adapter) {
    if (backend === "auto") return await cpuDevice(options);
    throw new Error(`Cannot create WebGPU device: ${NO_ADAPTER_HINT}`);
  }
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  const requiredLimits: Record<string, number> = {};
  for (const key of LIMIT_KEYS) {
    const v = (adapter.limits as unknown as Record<string, number>)[key];
    if (typeof v === "number") requiredLimits[key] = v;
  }
  const gpu = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  const limits: Record<string, number> = {};
  for (const key of LIMIT_KEYS) limits[key] = (gpu.limits as unknown as Record<string, number>)[key];
  const info: DeviceInfo = {
    backend: "webgpu",
    adapter: adapter.info.description || `${adapter.info.vendor} ${adapter.info.device}`.trim(),
    isFallbackAdapter: adapter.info.isFallbackAdapter ?? false,
    features: [...gpu.features].filter((f) => OPTIONAL_FEATURES.includes(f as GPUFeatureName)).sort(),
    limits,
  };
  return new WebGpuDevice(gpu, info, options);
}

async function cpuDevice(options: CreateDeviceOptions): Promise<CpuDevice> {
  const b = options.blas ?? true;
  if (b !== true && b !== false && typeof b !== "string") {
    throw new TypeError(
      `Cannot create CPU device: blas must be true, false or a library path; got ${String(b)}`,
    );
  }
  const blas = b === false ? null : await loadBlas(typeof b === "string" ? { path: b } : {});
  return new CpuDevice({ budgetBytes: options.budgetBytes, blas });
}

/** True when a WebGPU adapter can be opened here. */
export async function hasWebGpu(): Promise<boolean> {
  return (await requestAdapter()) !== null;
}

async function requestAdapter(powerPreference?: GPUPowerPreference): Promise<GPUAdapter | null> {
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) return null;
  quietEglProbe();
  let adapter: GPUAdapter | null;
  try {
    adapter = await gpu.requestAdapter(powerPreference ? { powerPreference } : {});
  } catch {
    return null;
  }
  // Dawn's Null backend (what bun-webgpu falls back to when its Vulkan adapter fails, e.g. on Mesa's
  // lavapipe) accepts every call and computes nothing: treat it as no adapter.
  if (adapter && adapter.info.device === "null-backend") {
    console.error(
      "ferry: the WebGPU adapter is Dawn's null backend (it computes nothing); using the CPU backend",
    );
    return null;
  }
  return adapter;
}

/**
 * Mesa's EGL probe (run while wgpu enumerates adapters on Linux) prints "XDG_RUNTIME_DIR is
 * invalid" on headless machines where the variable is unset. It only reads the variable, so
 * point it at the temp folder when it is missing. Without env permission, leave it alone.
 */
function quietEglProbe(): void {
  try {
    if (process.platform === "linux" && !process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = "/tmp";
  } catch {
    // no --allow-env: the message is harmless
  }
}

function envBackend(): "auto" | BackendKind | undefined {
  try {
    const v = readEnv("FERRY_BACKEND");
    if (v === "cpu" || v === "webgpu" || v === "auto") return v;
    if (v) {
      throw new TypeError(
        `Cannot read FERRY_BACKEND: unknown backend "${v}": expected one of auto, webgpu, cpu`,
      );
    }
  } catch (e) {
    if (e instanceof TypeError) throw e;
  }
  return undefined;
}

const LIMIT_KEYS = [
  "maxBufferSize",
  "maxStorageBufferBindingSize",
  "maxUniformBufferBindingSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
  "maxBindGroups",
  "minUniformBufferOffsetAlignment",
  "minStorageBufferOffsetAlignment",
] as const;
