/**
 * Two toy compression methods, each defined and registered here, outside src/, through Ferry's
 * public API only (`src/mod.ts`), as a researcher adds one: importing this file is all it takes for
 * `quantize`, `pruneWeight`, the sweeps and the packed ops to run them.
 *
 * - `"toy-absmax"` quantizer: symmetric absmax per group along rows, `step = clip·2·max|w| / (2^b − 1)`,
 *   zero-point fixed at `(2^b − 1)/2`; at 2, 4 or 8 bits (not 3), axis 1 only; its own option `clip`.
 * - `"toy-rows"` pruner: prunes the `⌊S·rows⌋` output rows of smallest L2 norm (ties: earlier first).
 */
import { z } from "zod";
import {
  packAffineMeta,
  packCodes,
  type QuantBits,
  type QuantizedTensor,
  registerPruner,
  registerQuantizer,
  Tensor,
  type WeightMask,
} from "../../src/mod.ts";

/** Host reference of the toy quantizer on a row-major weight grouped along rows: stored (f16) step per group and the codes, unpacked. */
export function toyAbsmaxRef(
  w: Float32Array,
  bits: QuantBits,
  groupSize: number,
  clip: number,
): { step: Float32Array; zero: number; codes: Uint8Array } {
  const maxq = 2 ** bits - 1;
  const zero = maxq / 2;
  const groups = w.length / groupSize;
  const step = new Float32Array(groups);
  const codes = new Uint8Array(w.length);
  for (let g = 0; g < groups; g++) {
    let amax = 0;
    for (let j = 0; j < groupSize; j++) amax = Math.max(amax, Math.abs(w[g * groupSize + j]));
    const s = Math.f16round((clip * 2 * amax) / maxq) || 2 ** -24;
    step[g] = s;
    for (let j = 0; j < groupSize; j++) {
      const i = g * groupSize + j;
      codes[i] = Math.min(maxq, Math.max(0, Math.round(w[i] / s + zero)));
    }
  }
  return { step, zero, codes };
}

registerQuantizer<{ clip: number }>({
  name: "toy-absmax",
  description: "symmetric absmax per group (a test's toy method)",
  bits: [2, 4, 8],
  axes: [1],
  options: { clip: z.number().gt(0).max(1).default(1) },
  async quantize(weight, layout, { clip }): Promise<QuantizedTensor> {
    const { shape, bits, groupSize } = layout;
    const w = await weight.toArray() as Float32Array; // [rows, cols]
    const { step, zero, codes } = toyAbsmaxRef(w, bits, groupSize, clip);
    const packed = packCodes(codes, shape[0], shape[1], bits);
    const meta = packAffineMeta(step, new Float32Array(step.length).fill(zero));
    const u32 = (label: string) => ({ dtype: "u32", category: "weights", label } as const);
    return {
      method: "toy-absmax",
      scheme: "affine",
      ...layout,
      codes: Tensor.fromArray(weight.device, packed, [packed.length], u32("quant.codes")),
      meta: Tensor.fromArray(weight.device, meta, [meta.length], u32("quant.meta")),
    };
  },
});

registerPruner({
  name: "toy-rows",
  description: "whole output rows of smallest L2 norm (a test's toy method)",
  inputNorms: "unused",
  mask(w, shape, { sparsity }): WeightMask {
    const [rows, cols] = shape;
    const norms = Array.from({ length: rows }, (_, r) => {
      let s = 0;
      for (let c = 0; c < cols; c++) s += w[r * cols + c] ** 2;
      return s;
    });
    const order = norms.map((_, r) => r).sort((a, b) => norms[a] - norms[b] || a - b);
    const mask = new Uint8Array(w.length).fill(1);
    const k = Math.floor(sparsity * rows);
    for (const r of order.slice(0, k)) mask.fill(0, r * cols, (r + 1) * cols);
    return { mask, shape, sparsity: k / rows, method: "toy-rows" };
  },
});
