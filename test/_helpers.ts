/**
 * Shared test helpers: seeded random data, closeness checks, and the devices to run
 * every op on (the CPU reference always; WebGPU when an adapter exists, llvmpipe in CI).
 * @module
 */
import assert from "node:assert/strict";
import { createDevice, hasWebGpu } from "../src/device/create_device.ts";
import type { Device } from "../src/device/device.ts";

export { mulberry32 as rng, randn } from "../src/tensor/random.ts";
import { mulberry32 as rng } from "../src/tensor/random.ts";

/** `n` uniform samples in [lo, hi). */
export function uniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const u = rng(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * u());
}

/** Asserts |a - e| <= atol + rtol·|e| elementwise, reporting the worst element. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { rtol = 1e-5, atol = 1e-6, what = "values" }: { rtol?: number; atol?: number; what?: string } = {},
): void {
  assert.equal(actual.length, expected.length, `${what}: length ${actual.length} != ${expected.length}`);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || !(excess <= worstExcess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    assert.fail(
      `${what}: element ${worst} is ${actual[worst]}, expected ${expected[worst]} ` +
        `(rtol ${rtol}, atol ${atol}; ${actual.length} elements)`,
    );
  }
}

/**
 * Why this run cannot exercise WebGPU, or null when it can: FERRY_TEST_WEBGPU=0 turns it off,
 * and a machine without an adapter cannot (install mesa-vulkan-drivers and run with
 * DENO_WEBGPU_BACKEND=vulkan for the software one).
 */
export const WEBGPU_SKIP_REASON: string | null = Deno.env.get("FERRY_TEST_WEBGPU") === "0"
  ? "FERRY_TEST_WEBGPU=0"
  : (await hasWebGpu())
  ? null
  : "no WebGPU adapter";

/** True when this run should exercise WebGPU (an adapter exists and FERRY_TEST_WEBGPU is not "0"). */
export const HAS_WEBGPU: boolean = WEBGPU_SKIP_REASON === null;

/** Devices every op test runs on: the CPU reference, then WebGPU when available. */
export const DEVICES: Device[] = [await createDevice({ backend: "cpu" })];
if (HAS_WEBGPU) DEVICES.push(await createDevice({ backend: "webgpu" }));

/**
 * Registers `fn` once per device kind as `"<name> [cpu]"` / `"<name> [webgpu]"`. The WebGPU
 * variant is always registered: where it cannot run it is ignored, with the reason in its
 * name, so the summary counts it as ignored instead of dropping it.
 * GPU resources outlive single tests (shared device), so resource sanitizers are off.
 */
export function testOnDevices(name: string, fn: (device: Device) => Promise<void> | void): void {
  for (const device of DEVICES) {
    Deno.test({
      name: `${name} [${device.kind}]`,
      sanitizeResources: false,
      sanitizeOps: false,
      fn: () => fn(device),
    });
  }
  if (!HAS_WEBGPU) webGpuTest(`${name} [webgpu]`, () => {});
}

/**
 * Registers a test that needs WebGPU (it opens its own device or compares against `DEVICES[1]`);
 * ignored, with the reason in its name, where this run has no WebGPU.
 */
export function webGpuTest(name: string, fn: () => Promise<void> | void): void {
  Deno.test({
    name: WEBGPU_SKIP_REASON === null ? name : `${name} (ignored: ${WEBGPU_SKIP_REASON})`,
    ignore: WEBGPU_SKIP_REASON !== null,
    sanitizeResources: false,
    sanitizeOps: false,
    fn,
  });
}
