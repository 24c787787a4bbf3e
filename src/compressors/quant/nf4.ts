/**
 * NF4 (QLoRA's 4-bit NormalFloat, Dettmers et al. 2023, https://arxiv.org/abs/2305.14314) with
 * bitsandbytes' blockwise absmax and optional double quantisation, following bitsandbytes' torch
 * definitions (`backends/default/ops.py`, `functional.quantize_4bit`):
 *
 * - blocks of `groupSize` (default 64) consecutive values of the flat row-major tensor (axis 1);
 *   `absmax = max|x|`; `scaled = clamp(x · f32(1/absmax), −1, 1)`; code = the nearest NF4 entry,
 *   the lower index on an exact tie (bitsandbytes' `argmin`);
 * - double quantisation (`compress_statistics=True`): `offset = mean(absmax)` (f32), then the centred
 *   `absmax − offset` values go through `quantize_blockwise` with blocks of 256 and the signed dynamic
 *   map: `absmax2 = max|x|` per block, code = nearest DYNAMIC8 entry to `clamp(x · f32(1/absmax2), −1, 1)`.
 *   As in bitsandbytes, the weight codes are chosen against the ORIGINAL absmax (quantised first);
 *   only dequantisation sees the double-quantised one, `DYNAMIC8[c]·absmax2 + offset`.
 *
 * One deviation: a block (or 256-block) whose absmax is 0 gets the code of 0.0 (NF4 index 7,
 * DYNAMIC8 index 127) where bitsandbytes' `0·(1/0) = NaN` makes `argmin` pick index 0; both
 * dequantise to the same value (0, resp. `offset`).
 *
 * Quantisation runs on the host (on WebGPU the weight is read back and the result uploaded; there is
 * no NF4 quantisation kernel: it is a one-off, and the GPU-side consumer is the NF4 GEMV).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nf4DoubleQuantRef, nf4Ref } from "./nf4.ts";
 * import { NF4 } from "../../tensor/codebooks.ts";
 * const { codes, absmax } = nf4Ref(new Float32Array([0.5, -1, 0, 0.25]), 4); // one block
 * assert.ok(absmax[0] === 1 && codes[1] === 0 && NF4[codes[2]] === 0);
 * const dq = nf4DoubleQuantRef(new Float32Array([1, 2, 3])); // offset 2, values -1, 0, 1
 * assert.ok(dq.offset === 2 && dq.absmax2[0] === 1);
 * ```
 * @module
 */
import { z } from "zod";
import { nf4AbsmaxRef } from "../../ops/dequantize_ref.ts";
import { DYNAMIC8, nearestCode, NF4 } from "../../tensor/codebooks.ts";
import { packCodes, type QuantizedTensor } from "../../tensor/quantized_tensor.ts";
import { Tensor } from "../../tensor/tensor.ts";
import { registerQuantizer } from "./quantizer.ts";

/** bitsandbytes' block of absmax values for double quantisation. */
export const NF4_DQ_BLOCK = 256;

const NF4_ZERO = 7;
const DYNAMIC8_ZERO = DYNAMIC8.indexOf(0);

/** Codes against `table` of the flat `x` in blocks of `block` (the last may be short), with absmax. */
function blockwise(x: Float32Array, block: number, table: Float32Array, zeroCode: number) {
  const f = Math.fround;
  const blocks = Math.ceil(x.length / block);
  const codes = new Uint8Array(x.length);
  const absmax = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    const end = Math.min(x.length, (b + 1) * block);
    let m = 0;
    for (let i = b * block; i < end; i++) m = Math.max(m, Math.abs(x[i]));
    absmax[b] = m;
    const inv = f(1 / m);
    for (let i = b * block; i < end; i++) {
      if (m === 0) codes[i] = zeroCode;
      else {
        const scaled = Number.isFinite(inv) ? f(x[i] * inv) : x[i] / m; // subnormal absmax: 1/m overflows f32
        codes[i] = nearestCode(table, Math.min(1, Math.max(-1, scaled)));
      }
    }
  }
  return { codes, absmax };
}

/** NF4 codes (one per value, row-major) and f32 absmax per block of `blockSize` of the flat `w`. */
export function nf4Ref(w: Float32Array, blockSize: number): { codes: Uint8Array; absmax: Float32Array } {
  return blockwise(w, blockSize, NF4, NF4_ZERO);
}

/**
 * bitsandbytes' double quantisation of NF4 absmax values: `offset` = their f32 mean, 8-bit DYNAMIC8
 * codes of `absmax − offset` in blocks of 256, and one f32 `absmax2` per block.
 */
export function nf4DoubleQuantRef(
  absmax: Float32Array,
): { codes: Uint8Array; absmax2: Float32Array; offset: number } {
  const f = Math.fround;
  let sum = 0;
  for (const a of absmax) sum += a;
  const offset = f(sum / absmax.length);
  const centred = absmax.map((a) => f(a - offset));
  const { codes, absmax: absmax2 } = blockwise(centred, NF4_DQ_BLOCK, DYNAMIC8, DYNAMIC8_ZERO);
  return { codes, absmax2, offset };
}

/** Four 8-bit codes per `u32`, code `g` in bits `8·(g mod 4)` of word `⌊g/4⌋`. */
export function packBytes(codes: Uint8Array): Uint32Array {
  const out = new Uint32Array(Math.ceil(codes.length / 4));
  for (let g = 0; g < codes.length; g++) out[g >> 2] |= codes[g] << ((g & 3) * 8);
  return out;
}

/**
 * NF4-quantizes a 2-D f32 weight (validated by `quantize()`, the public entry); tensors are created
 * on the weight's device in the `"weights"` category.
 * @see https://arxiv.org/abs/2305.14314
 */
export async function quantizeNf4(
  weight: Tensor<"f32">,
  groupSize: number,
  doubleQuant: boolean,
): Promise<QuantizedTensor> {
  const [rows, cols] = weight.shape as [number, number];
  const device = weight.device;
  const w = device.kind === "cpu" ? weight.host() : await weight.toArray();
  const { codes, absmax } = nf4Ref(w, groupSize);
  const packed = packCodes(codes, rows, cols, 4);
  const opts = { category: "weights", label: "quant.codes" } as const;
  const base = {
    method: "nf4",
    scheme: "nf4",
    bits: 4,
    groupSize,
    axis: 1,
    shape: [rows, cols],
    codes: Tensor.fromArray(device, packed, [packed.length], { dtype: "u32", ...opts }),
  } as const;
  if (!doubleQuant) {
    return {
      ...base,
      meta: Tensor.fromArray(device, absmax, [absmax.length], { dtype: "f32", ...opts, label: "quant.meta" }),
    };
  }
  const dq = nf4DoubleQuantRef(absmax);
  const metaCodes = packBytes(dq.codes);
  return {
    ...base,
    meta: Tensor.fromArray(device, metaCodes, [metaCodes.length], {
      dtype: "u32",
      ...opts,
      label: "quant.meta",
    }),
    meta2: Tensor.fromArray(device, dq.absmax2, [dq.absmax2.length], {
      dtype: "f32",
      ...opts,
      label: "quant.meta2",
    }),
    metaOffset: dq.offset,
  };
}

/** Absmax per group as dequantisation sees it: the f32 values, or the double-quantised ones expanded. */
export function nf4EffectiveAbsmax(
  meta: Float32Array | Uint32Array,
  groups: number,
  meta2?: Float32Array,
  offset?: number,
): Float32Array {
  if (meta2 === undefined) return meta as Float32Array;
  return nf4AbsmaxRef(meta as Uint32Array, meta2, offset ?? 0, groups);
}

registerQuantizer<{ doubleQuant: boolean }>({
  name: "nf4",
  description: "QLoRA's NormalFloat-4 codebook times a block absmax (bitsandbytes)",
  bits: [4],
  axes: [1], // bitsandbytes' blocks run along the flat tensor, i.e. the rows
  options: { doubleQuant: z.boolean().default(false) },
  quantize: (weight, layout, o) => quantizeNf4(weight, layout.groupSize, o.doubleQuant),
});
