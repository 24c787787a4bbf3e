/**
 * RTN: round-to-nearest asymmetric (min/max) group quantisation at 2, 3, 4 or 8 bits, plus the
 * affine packing stage HQQ shares. Layout: `src/tensor/quantized_tensor.ts` (scheme `"affine"`,
 * `Ŵ = (q − zero)·step`, step and zero stored as f16).
 *
 * Per group of `groupSize` values (along a row for `axis: 1`, down a column for `axis: 0`):
 * - `step = max((max − min)/(2^b − 1), max(|min|, |max|)/1024)`, stored as `ŝ = f16(step)`
 *   (`2^-24`, the smallest f16, if that rounds to 0: an all-zero group);
 * - `zero = −min/ŝ` in code units, NOT rounded (HQQ rounds its initial zero at 4 bits; RTN keeps the
 *   exact offset), stored as `ẑ = f16(zero)`;
 * - `q = clamp(round(w/ŝ + ẑ), 0, 2^b − 1)`, round half to even, from the STORED `ŝ, ẑ`, so that
 *   dequantising the stored tensor is what the codes were chosen for.
 *
 * The floor `max|w|/1024` never binds on a group that straddles zero (there `max − min ≥ max|w|`);
 * on a narrow group far from zero it widens the step so that `|zero| ≤ 1024`, where f16 still
 * resolves the zero-point to half a code (unbounded, `zero` overflows f16 or loses whole codes).
 *
 * **Error bound** (asserted by test/compressors/rtn_test.ts). Let `ε = 2^-10` (one f16 ulp relative:
 * round-to-nearest gives half that; the slack covers the f32 division). Then `min/ŝ + ẑ ≥ −|ẑ|ε`
 * and `max/ŝ + ẑ ≤ (2^b − 1) + (2^b − 1 + |ẑ|)ε`, so clamping removes at most `(|ẑ| + 2^b)ε` codes:
 * `|w − ŵ| ≤ ŝ · max(1/2, (|ẑ| + 2^b)·ε) + 2^-20·(|w| + ŝ·(|ẑ| + 2^b))`, the last term the f32
 * arithmetic. For a group straddling zero `|ẑ| ≤ 2^b − 1`, so the bound is `ŝ/2` plus f32 slack.
 *
 * On WebGPU both stages run in `kernels/rtn.wgsl`; on the CPU backend the references below.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { affineCodesRef, rtnMetaRef } from "./rtn.ts";
 * import { dequantizeRef } from "../../ops/dequantize_ref.ts";
 * const w = new Float32Array([0, 1, 2, 3, -1, 0, 1, 2]); // [1, 8], two groups of 4
 * const { scale, zero } = rtnMetaRef(w, [1, 8], 2, 4, 1); // steps 1, 1; zeros 0, 1
 * const codes = affineCodesRef(w, [1, 8], 2, 4, 1, scale, zero);
 * const back = dequantizeRef({ scheme: "affine", bits: 2, groupSize: 4, axis: 1, shape: [1, 8], codes, scale, zero });
 * assert.ok(back.join() === w.join());
 * ```
 * @module
 */
import kernel from "../../../kernels/rtn.wgsl" with { type: "text" };
import { groupSpan, packAffineMeta } from "../../ops/dequantize_ref.ts";
import { dispatchKernel, F16_WGSL, grid1d, params } from "../../ops/kernel.ts";
import {
  codesPerWord,
  packCodes,
  type QuantBits,
  type QuantizedTensor,
  wordsPerRow,
} from "../../tensor/quantized_tensor.ts";
import type { Device } from "../../device/device.ts";
import { Tensor } from "../../tensor/tensor.ts";
import { type QuantLayout, registerQuantizer } from "./quantizer.ts";

/** rtn.wgsl with the shared f16 bit conversions. */
const code = F16_WGSL + kernel;

/** Invocations per workgroup of the `rtn.wgsl` and `hqq.wgsl` kernels. */
export const AFFINE_WG = 64;

/** Per-group affine metadata as f32 arrays (values already f16-representable once stored). */
export interface AffineMeta {
  /** Step per group (`Ŵ = (q − zero)·scale`). */
  scale: Float32Array;
  /** Zero-point per group, in code units. */
  zero: Float32Array;
}

/** Shape, bits and grouping of one quantisation: the fields every quantizer stage needs. */
export type AffineLayout = QuantLayout;

/** `Math.round` with ties to even, as `torch.round` and WGSL `round`. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Flat index of element 0 of group `g` of a `[rows, cols]` weight (layout doc; `groupSpan`). */
export function groupStart(g: number, rows: number, cols: number, groupSize: number, axis: 0 | 1): number {
  return groupSpan(g, rows, cols, groupSize, axis).start;
}

/**
 * RTN metadata of `w` `[rows, cols]`: f16-rounded step and unrounded zero per group (module doc).
 * @throws {RangeError} When a step overflows f16 (|w| beyond about 6.5e4).
 */
export function rtnMetaRef(
  w: Float32Array,
  shape: readonly [number, number],
  bits: QuantBits,
  groupSize: number,
  axis: 0 | 1,
): AffineMeta {
  const f = Math.fround;
  const groups = (shape[0] * shape[1]) / groupSize;
  const { stride } = groupSpan(0, shape[0], shape[1], groupSize, axis);
  const maxq = 2 ** bits - 1;
  const scale = new Float32Array(groups);
  const zero = new Float32Array(groups);
  for (let g = 0; g < groups; g++) {
    const start = groupStart(g, shape[0], shape[1], groupSize, axis);
    let mn = w[start];
    let mx = mn;
    for (let j = 1; j < groupSize; j++) {
      const v = w[start + j * stride];
      if (v < mn) mn = v;
      if (v > mx) mx = v;
    }
    const step = Math.max(f(f(mx - mn) / maxq), f(Math.max(Math.abs(mn), Math.abs(mx)) / 1024));
    let s = Math.f16round(step);
    if (s === 0) s = 2 ** -24;
    if (!Number.isFinite(s)) {
      throw new RangeError(
        `Cannot quantize with RTN: group ${g} spans [${mn}, ${mx}], whose step ${step} overflows the f16 ` +
          `metadata; rescale the weight or use a larger group`,
      );
    }
    scale[g] = s;
    zero[g] = Math.f16round(f(-mn / s));
  }
  return { scale, zero };
}

/**
 * Packed codes `q = clamp(round(w/scale + zero), 0, 2^b − 1)` (ties to even) of `w` `[rows, cols]`
 * for the given per-group metadata (pass the stored, f16-rounded values).
 */
export function affineCodesRef(
  w: Float32Array,
  shape: readonly [number, number],
  bits: QuantBits,
  groupSize: number,
  axis: 0 | 1,
  scale: Float32Array,
  zero: Float32Array,
): Uint32Array {
  const [rows, cols] = shape;
  const f = Math.fround;
  const maxq = 2 ** bits - 1;
  const q = new Uint8Array(rows * cols);
  const perRow = cols / groupSize;
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const g = axis === 1 ? r * perRow + Math.floor(c / groupSize) : (r % (rows / groupSize)) * cols + c;
      const x = roundHalfEven(f(f(w[r * cols + c] / scale[g]) + zero[g]));
      q[r * cols + c] = x < 0 ? 0 : x > maxq ? maxq : x; // NaN weights give code 0
    }
  }
  return packCodes(q, rows, cols, bits);
}

function affineParams(layout: AffineLayout): Uint32Array {
  const [rows, cols] = layout.shape;
  return params(
    ["u32", rows],
    ["u32", cols],
    ["u32", layout.groupSize],
    ["u32", layout.axis],
    ["u32", layout.bits],
    ["u32", (rows * cols) / layout.groupSize],
    ["u32", wordsPerRow(cols, layout.bits)],
    ["u32", codesPerWord(layout.bits)],
  );
}

/** WebGPU: records `affine_pack` (codes from the stored `meta`) and returns the codes tensor. */
export function affinePackGpu(
  weight: Tensor<"f32">,
  meta: Tensor<"u32">,
  layout: AffineLayout,
): Tensor<"u32"> {
  const [rows, cols] = layout.shape;
  const words = rows * wordsPerRow(cols, layout.bits);
  const codes = Tensor.empty(weight.device, [words], {
    dtype: "u32",
    category: "weights",
    label: "quant.codes",
  });
  dispatchKernel({ name: "rtn", code, entryPoint: "affine_pack" }, {
    bindings: [weight, meta, codes],
    params: affineParams(layout),
    workgroups: grid1d(Math.ceil(words / AFFINE_WG)),
    constants: { WG: AFFINE_WG },
  });
  return codes;
}

/** The fields every affine result shares. */
export function affineBase(method: string, layout: AffineLayout) {
  const { shape, bits, groupSize, axis } = layout;
  return { method, scheme: "affine", bits, groupSize, axis, shape: [shape[0], shape[1]] } as const;
}

/** An affine QuantizedTensor on `device` from host codes and f32 step/zero (packed as f16 pairs). */
export function affineFromHost(
  device: Device,
  method: string,
  layout: AffineLayout,
  codes: Uint32Array,
  scale: Float32Array,
  zero: Float32Array,
): QuantizedTensor {
  const opts = (label: string) => ({ dtype: "u32", category: "weights", label } as const);
  return {
    ...affineBase(method, layout),
    codes: Tensor.fromArray(device, codes, [codes.length], opts("quant.codes")),
    meta: Tensor.fromArray(device, packAffineMeta(scale, zero), [scale.length], opts("quant.meta")),
  };
}

/**
 * RTN-quantizes a 2-D f32 weight on its own device (validated by `quantize()`, the public entry).
 * Returns codes `u32[rows · wordsPerRow]` and meta `u32[groups]` in the `"weights"` category.
 */
export function quantizeRtn(weight: Tensor<"f32">, layout: AffineLayout): QuantizedTensor {
  const { shape, bits, groupSize, axis } = layout;
  const groups = (shape[0] * shape[1]) / groupSize;
  const device = weight.device;
  if (device.kind === "cpu") {
    const w = weight.host();
    const { scale, zero } = rtnMetaRef(w, shape, bits, groupSize, axis);
    const codes = affineCodesRef(w, shape, bits, groupSize, axis, scale, zero);
    return affineFromHost(device, "rtn", layout, codes, scale, zero);
  }
  const meta = Tensor.empty(device, [groups], { dtype: "u32", category: "weights", label: "quant.meta" });
  dispatchKernel({ name: "rtn", code, entryPoint: "rtn_meta" }, {
    bindings: [weight, meta],
    params: affineParams(layout),
    workgroups: grid1d(Math.ceil(groups / AFFINE_WG)),
    constants: { WG: AFFINE_WG },
  });
  return { ...affineBase("rtn", layout), codes: affinePackGpu(weight, meta, layout), meta };
}

registerQuantizer({
  name: "rtn",
  description: "round to nearest, asymmetric min/max per group",
  quantize: (weight, layout) => quantizeRtn(weight, layout),
});
