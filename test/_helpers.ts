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

/** True when this run should exercise WebGPU (an adapter exists and FERRY_TEST_WEBGPU is not "0"). */
export const HAS_WEBGPU: boolean = Deno.env.get("FERRY_TEST_WEBGPU") !== "0" && await hasWebGpu();

/** Devices every op test runs on: the CPU reference, then WebGPU when available. */
export const DEVICES: Device[] = [await createDevice({ backend: "cpu" })];
if (HAS_WEBGPU) DEVICES.push(await createDevice({ backend: "webgpu" }));

/**
 * Registers `fn` once per device as `"<name> [cpu]"` / `"<name> [webgpu]"`.
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
}
