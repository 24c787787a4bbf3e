/**
 * Launch shape of the row kernels (`rmsnorm`, `softmax`, `reduce`): each row of `C` values is
 * handled by `LANES` invocations (a power of two) and a workgroup holds `ROWS` rows. Private to
 * `src/ops/`.
 *
 * Measured on llvmpipe (2 cores, `bench` of rmsnorm): a loaded address that differs across lanes
 * is a scalar loop there, so more lanes per row buy nothing but barriers. One invocation per row
 * wins once there are ≥ 16 rows ([512, 4096]: 8.6 ms with LANES 1 vs 15 ms with 32; [70000, 7]:
 * 3 ms vs 67 ms); 16 lanes help only a handful of long rows ([1, 4096]: 0.08 ms vs 0.2 ms).
 * Hardware GPUs want coalesced lanes instead; that branch is a conventional choice, not measured.
 * @module
 */
import type { Device } from "../device/device.ts";
import { grid1d } from "./_kernel.ts";

/** `override` constants and workgroup grid of one row-kernel launch. */
export interface RowLaunch {
  constants: { LANES: number; ROWS: number };
  workgroups: [number, number];
}

/** True for software adapters (llvmpipe, lavapipe, SwiftShader), where the measured policy applies. */
export function isSoftware(device: Device): boolean {
  return device.info.isFallbackAdapter || /llvmpipe|lavapipe|swiftshader/i.test(device.info.adapter);
}

/** Chooses LANES × ROWS (≤ 256 invocations, the size of the kernels' workgroup arrays) for `rows` rows of `cols`. */
export function rowLaunch(device: Device, rows: number, cols: number): RowLaunch {
  let lanes: number;
  let rowsPerGroup: number;
  if (isSoftware(device)) {
    lanes = rows < 16 && cols >= 128 ? 16 : 1;
    rowsPerGroup = lanes > 1 ? 1 : rows >= 512 ? 64 : 8;
  } else {
    lanes = Math.min(64, 2 ** Math.ceil(Math.log2(Math.max(1, cols))));
    rowsPerGroup = 64 / lanes;
  }
  return {
    constants: { LANES: lanes, ROWS: rowsPerGroup },
    workgroups: grid1d(Math.ceil(rows / rowsPerGroup)),
  };
}
