/**
 * The one entry point of Ferry's weight quantizers: `quantize(weight, { method, bits, groupSize,
 * axis, … })` returns a {@link QuantizedTensor} on the weight's device, in the layout of
 * `src/tensor/quantized_tensor.ts`.
 *
 * | method | scheme | bits | grouping | where it runs |
 * | --- | --- | --- | --- | --- |
 * | `"rtn"` | affine min/max, round to nearest (`rtn.ts`) | 2, 3, 4, 8 | `groupSize` along `axis` | kernels/rtn.wgsl or the CPU reference |
 * | `"hqq"` | affine, HQQ-optimised zero (`hqq.ts`) | 2, 3, 4, 8 | `groupSize` along `axis` | kernels/hqq.wgsl + rtn.wgsl, or the CPU reference |
 * | `"nf4"` | NF4 codebook × absmax (`nf4.ts`) | 4 | `groupSize` blocks of a row (axis 1) | host (uploads the result) |
 *
 * Options are one zod strict schema ({@link QuantizeOptionsSchema}): a typo fails with the allowed
 * keys. {@link quantizedToHost} reads a result back with its metadata unpacked to f32 per group, the
 * input of `dequantizeRef` (`src/ops/dequantize_ref.ts`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../../device/create_device.ts";
 * import { Tensor } from "../../tensor/tensor.ts";
 * import { randn } from "../../tensor/random.ts";
 * import { dequantizeRef } from "../../ops/dequantize_ref.ts";
 * import { quantize, quantizedToHost } from "./quantize.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const w = randn(16 * 64, 3, 0.05);
 * using weight = Tensor.fromArray(dev, w, [16, 64]); // [out, in]
 * const q = await quantize(weight, { method: "hqq", bits: 2, groupSize: 32 });
 * const back = dequantizeRef(await quantizedToHost(q)); // [16, 64]
 * let err = 0;
 * for (let i = 0; i < w.length; i++) err += Math.abs(w[i] - back[i]) / w.length;
 * assert.ok(q.bits === 2 && q.info!.iterations >= 0 && err < 0.03);
 * ```
 * @module
 */
import { z } from "zod";
import { parseConfig } from "../../config.ts";
import { type HostQuantized, unpackAffineMeta } from "../../ops/dequantize_ref.ts";
import { checkQuantLayout, type QuantBits, type QuantizedTensor } from "../../tensor/quantized_tensor.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import { HQQ_DEFAULTS, quantizeHqq } from "./hqq.ts";
import { nf4EffectiveAbsmax, quantizeNf4 } from "./nf4.ts";
import { quantizeRtn } from "./rtn.ts";

/** HQQ solver options (defaults from hqq: 20 iterations, p = 0.7, β = 10, κ = 1.01, early stop). */
export const HqqOptionsSchema = z.strictObject({
  /** Maximum zero-point updates; 0 keeps the min/max start. */
  iterations: z.number().int().min(0).max(10_000).default(HQQ_DEFAULTS.iterations),
  /** p of the lp objective, in (0, 1]. */
  lpNorm: z.number().gt(0).max(1).default(HQQ_DEFAULTS.lpNorm),
  /** Initial half-quadratic penalty β. */
  beta: z.number().positive().default(HQQ_DEFAULTS.beta),
  /** Growth of β per iteration (> 1). */
  kappa: z.number().gt(1).default(HQQ_DEFAULTS.kappa),
  /** Stop at the first iteration that does not lower the mean |W − Ŵ| (the best zero is kept either way). */
  earlyStop: z.boolean().default(HQQ_DEFAULTS.earlyStop),
});

/** Options of {@link quantize}; cross-field rules in the refinement (NF4 is 4-bit, axis 1). */
export const QuantizeOptionsSchema = z.strictObject({
  /** `"rtn"` (min/max, round to nearest), `"hqq"` (HQQ zero-point), `"nf4"` (QLoRA NormalFloat). */
  method: z.enum(["rtn", "hqq", "nf4"]),
  /** Code width; NF4 is 4 (the default for every method). */
  bits: z.literal([2, 3, 4, 8]).default(4),
  /** Values per group (NF4: per absmax block); must divide the grouped dimension. */
  groupSize: z.number().int().positive().default(64),
  /** 1: groups run along a row (input features); 0: down a column. NF4 takes 1 only. */
  axis: z.literal([0, 1]).default(1),
  /** NF4 only: quantise the absmax values to 8 bits (bitsandbytes' double quantisation). */
  doubleQuant: z.boolean().default(false),
  /** HQQ only: solver settings. */
  hqq: HqqOptionsSchema.optional(),
}).superRefine((o, ctx) => {
  // `input` is what the message reports as received.
  const issue = (path: string, message: string, input: unknown) =>
    ctx.addIssue({ code: "custom", path: [path], message, input });
  if (o.method === "nf4" && o.bits !== 4) {
    issue("bits", "nf4 is a 4-bit code: leave bits out or pass 4", o.bits);
  }
  if (o.method === "nf4" && o.axis !== 1) {
    issue("axis", "nf4 blocks run along the rows, as in bitsandbytes: leave axis out or pass 1", o.axis);
  }
  if (o.method !== "nf4" && o.doubleQuant) {
    issue(
      "doubleQuant",
      `double quantisation is an nf4 option, not one of method "${o.method}"`,
      o.doubleQuant,
    );
  }
  if (o.method !== "hqq" && o.hqq !== undefined) {
    issue("hqq", `hqq solver options apply to method "hqq" only, not "${o.method}"`, o.hqq);
  }
});

/** What callers pass to {@link quantize}. */
export type QuantizeOptions = z.input<typeof QuantizeOptionsSchema>;

/** Parsed options with defaults filled in (JSON; goes into run folders). */
export type ParsedQuantizeOptions = z.output<typeof QuantizeOptionsSchema>;

/**
 * Quantizes a 2-D f32 weight `[rows, cols]` (HF `[out, in]`); the result's tensors live on
 * `weight.device` in the ledger's `"weights"` category. The weight is not modified or disposed.
 *
 * @param weight `[rows, cols]` f32 (typed as any tensor: the dtype is checked at run time).
 * @param options See {@link QuantizeOptionsSchema}.
 * @returns Packed codes plus metadata; HQQ adds `info` (iterations kept, mean |W − Ŵ|).
 * @throws {ConfigError} For unknown keys or values out of range (bits 5, axis 2, nf4 with bits 2, …).
 * @throws {TypeError} When the weight is not f32.
 * @throws {RangeError} When it is not 2-D, or `groupSize` does not divide the grouped dimension.
 * @see https://mobiusml.github.io/hqq_blog/ (HQQ), https://arxiv.org/abs/2305.14314 (NF4)
 */
export async function quantize(weight: Tensor, options: QuantizeOptions): Promise<QuantizedTensor> {
  const o = parseConfig("quantize", QuantizeOptionsSchema, options);
  const what = `quantize weight with ${o.method}`;
  if (weight.dtype !== "f32") {
    throw new TypeError(`Cannot ${what}: the weight must be f32: received ${weight.dtype}; cast it first`);
  }
  checkQuantLayout(what, weight.shape, o.bits, o.groupSize, o.axis);
  const layout = {
    shape: [weight.shape[0], weight.shape[1]] as const,
    bits: o.bits as QuantBits,
    groupSize: o.groupSize,
    axis: o.axis,
  };
  if (weight.size === 0) throw new RangeError(`Cannot ${what}: the weight [${weight.shape}] is empty`);
  const w = weight as Tensor<"f32">;
  await checkFinite(w, what);
  if (o.method === "rtn") return quantizeRtn(w, layout);
  if (o.method === "hqq") return await quantizeHqq(w, layout, { ...HQQ_DEFAULTS, ...o.hqq });
  return await quantizeNf4(w, o.groupSize, o.doubleQuant);
}

/**
 * Throws a `RangeError` counting the NaN/±Inf values of `w` and naming the first: their codes would
 * be meaningless (and WGSL leaves arithmetic on them undefined). Reads the weight back once.
 */
async function checkFinite(w: Tensor<"f32">, what: string): Promise<void> {
  const data = await w.toArray() as Float32Array; // [rows, cols]
  let bad = 0;
  let first = -1;
  for (let i = 0; i < data.length; i++) {
    if (!Number.isFinite(data[i])) {
      bad++;
      if (first < 0) first = i;
    }
  }
  if (bad > 0) {
    const cols = w.shape[1];
    throw new RangeError(
      `Cannot ${what}: the weight [${w.shape}] holds ${bad} NaN or Inf value${bad === 1 ? "" : "s"}, ` +
        `the first ${data[first]} at [${Math.floor(first / cols)}, ${first % cols}]; ` +
        `check the checkpoint or the training that produced it`,
    );
  }
}

/**
 * Reads a quantized tensor back to the host with per-group f32 metadata: affine scale/zero
 * unpacked from the f16 pairs; NF4 absmax as stored, or expanded from double quantisation as
 * `DYNAMIC8[code]·meta2 + offset` (`nf4AbsmaxRef`). Feed it to `dequantizeRef`.
 */
export async function quantizedToHost(q: QuantizedTensor): Promise<HostQuantized> {
  const codes = await q.codes.toArray() as Uint32Array;
  const base = {
    scheme: q.scheme,
    bits: q.bits,
    groupSize: q.groupSize,
    axis: q.axis,
    shape: q.shape,
    codes,
  };
  const meta = await q.meta.toArray() as Uint32Array | Float32Array;
  if (q.scheme === "affine") return { ...base, ...unpackAffineMeta(meta as Uint32Array) };
  const groups = (q.shape[0] * q.shape[1]) / q.groupSize;
  const meta2 = q.meta2 ? await q.meta2.toArray() as Float32Array : undefined;
  return { ...base, scale: nf4EffectiveAbsmax(meta, groups, meta2, q.metaOffset) };
}
