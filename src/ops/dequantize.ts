/**
 * Dequantisation: `dequantize(q)` turns a {@link QuantizedTensor} (packed 2/3/4/8-bit codes with
 * affine groups along either axis, or NF4 with or without double-quantised absmax values) back into
 * the f32 weight `Ŵ [rows, cols]`. The CPU backend runs `dequantizeRef` after unpacking the
 * metadata on the host; WebGPU runs `kernels/dequantize.wgsl`, bit-identical to the reference.
 * Packed GEMV and matmul
 * (`qgemv`, `qmatmul`) never materialise Ŵ; this op is for checks, merges and export.
 *
 * @example Two-bit codes, one affine group
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { packCodes } from "../tensor/quantized_tensor.ts";
 * import { dequantize } from "./dequantize.ts";
 * import { packAffineMeta } from "./dequantize_ref.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const u32 = { dtype: "u32", category: "weights" } as const;
 * const w = dequantize({
 *   method: "rtn", scheme: "affine", bits: 2, groupSize: 4, axis: 1, shape: [1, 4],
 *   codes: Tensor.fromArray(dev, packCodes([0, 1, 2, 3], 1, 4, 2), [1], u32),
 *   meta: Tensor.fromArray(dev, packAffineMeta(new Float32Array([0.5]), new Float32Array([1.5])), [1], u32),
 * }); // [1, 4]: (q - 1.5) * 0.5
 * assert.deepEqual(Array.from(await w.toArray()), [-0.75, -0.25, 0.25, 0.75]);
 * ```
 * @module
 */
import code from "../../kernels/dequantize.wgsl" with { type: "text" };
import type { QuantizedTensor } from "../tensor/quantized_tensor.ts";
import { Tensor } from "../tensor/tensor.ts";
import { dequantizeRef } from "./dequantize_ref.ts";
import { gpuOf, grid1d, params } from "./_kernel.ts";
import { checkQuantized, dynamic8Table, hostQuantized, NF4_PARAMS } from "./_quant.ts";

/** Kernel configuration: invocations per workgroup. */
export const DEQUANTIZE_KERNEL = { WG: 64 } as const;

/**
 * `Ŵ [rows, cols]` of `q`: `(q − zero)·scale` per affine group, `NF4[q]·absmax` for NF4.
 * f32 arithmetic, the same operations as `dequantizeRef`.
 *
 * @param q packed weight `[rows, cols]`; see `src/tensor/quantized_tensor.ts` for the layout.
 * @returns a new f32 tensor `[rows, cols]` (category "activations") on `q`'s device.
 * @throws {TypeError | RangeError} when `q`'s layout, tensor sizes or dtypes do not match its shape.
 * @see https://arxiv.org/abs/2305.14314 (QLoRA: NF4 and double quantisation)
 */
export function dequantize(q: QuantizedTensor): Tensor<"f32"> {
  const s = checkQuantized("dequantize", q);
  const device = q.codes.device;
  const out = Tensor.empty(device, [s.rows, s.cols]);
  if (out.size === 0) return out;
  if (device.kind === "cpu") {
    out.host().set(dequantizeRef(hostQuantized(q, s)));
    return out;
  }
  const absmax = q.scheme === "nf4" ? nf4Absmax(q) : undefined;
  const { WG } = DEQUANTIZE_KERNEL;
  gpuOf(device).dispatch({ name: "dequantize", code, entryPoint: q.scheme }, {
    bindings: [q.codes.storage, (absmax ?? q.meta).storage, out.storage],
    params: params(
      ["u32", s.rows],
      ["u32", s.cols],
      ["u32", s.W],
      ["u32", s.n],
      ["u32", q.bits],
      ["u32", q.groupSize],
      ["u32", q.axis],
      ["u32", 0],
      ...NF4_PARAMS,
    ),
    workgroups: grid1d(Math.ceil((s.rows * s.W) / WG)),
    constants: { WG },
  });
  if (absmax !== q.meta) absmax?.dispose(); // freed after the pending submit
  return out;
}

/**
 * NF4 absmax per group as f32 `[groups]`: `q.meta` itself without double quantisation, else a new
 * tensor decoded on the device (`DYNAMIC8[code]·meta2[⌊g/256⌋] + metaOffset`, category
 * "activations") that the caller disposes. WebGPU only; `q` must have passed `checkQuantized`.
 */
export function nf4Absmax(q: QuantizedTensor): Tensor<"f32"> {
  if (q.meta2 === undefined) return q.meta as Tensor<"f32">;
  const device = q.codes.device;
  const groups = (q.shape[0] * q.shape[1]) / q.groupSize;
  const absmax = Tensor.empty(device, [groups], { label: "nf4 absmax" });
  const { WG } = DEQUANTIZE_KERNEL;
  gpuOf(device).dispatch({ name: "dequantize", code, entryPoint: "decodeAbsmax" }, {
    bindings: [q.meta.storage, q.meta2.storage, dynamic8Table(device).storage, absmax.storage],
    params: params(["u32", groups], ["f32", q.metaOffset!], ["u32", 0]),
    workgroups: grid1d(Math.ceil(groups / WG)),
    constants: { WG },
  });
  return absmax;
}
