/**
 * The one entry point of Ferry's weight quantizers: `quantize(weight, { method, bits, groupSize,
 * axis, … })` returns a {@link QuantizedTensor} on the weight's device, in the layout of
 * `src/tensor/quantized_tensor.ts`.
 *
 * Methods are objects in a registry (`quantizer.ts`): the built-ins below register themselves, and
 * `registerQuantizer` adds one; an unknown `method` fails listing the registered names.
 *
 * | method | scheme | bits | grouping | where it runs |
 * | --- | --- | --- | --- | --- |
 * | `"rtn"` | affine min/max, round to nearest (`rtn.ts`) | 2, 3, 4, 8 | `groupSize` along `axis` | kernels/rtn.wgsl or the CPU reference |
 * | `"hqq"` | affine, HQQ-optimised zero (`hqq.ts`) | 2, 3, 4, 8 | `groupSize` along `axis` | kernels/hqq.wgsl + rtn.wgsl, or the CPU reference |
 * | `"nf4"` | NF4 codebook × absmax (`nf4.ts`) | 4 | `groupSize` blocks of a row (axis 1) | host (uploads the result) |
 *
 * Options are a zod strict schema of the shared keys plus the chosen method's own
 * ({@link parseQuantizeOptions}): a typo fails with the allowed keys, another method's option names
 * its method. {@link quantizedToHost} reads a result back with its metadata unpacked to f32 per group, the
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
// The built-in methods register themselves when loaded, in this order.
import "./rtn.ts";
import "./hqq.ts";
import { nf4EffectiveAbsmax } from "./nf4.ts";
import { getQuantizer, listQuantizers, type QuantLayout, type RegisteredQuantizer } from "./quantizer.ts";

export { HqqOptionsSchema } from "./hqq.ts";
export {
  getQuantizer,
  listQuantizers,
  type Quantizer,
  type QuantLayout,
  type RegisteredQuantizer,
  registerQuantizer,
} from "./quantizer.ts";

/** The keys every method shares, with their defaults. */
const COMMON = {
  /** A registered quantizer's name: `"rtn"`, `"hqq"`, `"nf4"`, or one added with `registerQuantizer`. */
  method: z.string(),
  /** Code width (default 4); a method may take only some widths (NF4: 4). */
  bits: z.literal([2, 3, 4, 8]).default(4),
  /** Values per group (NF4: per absmax block); must divide the grouped dimension. */
  groupSize: z.number().int().positive().default(64),
  /** 1: groups run along a row (input features); 0: down a column. A method may take one axis only (NF4: 1). */
  axis: z.literal([0, 1]).default(1),
};

/** What callers pass to {@link quantize}: the shared keys, plus the options of the chosen method. */
export interface QuantizeOptions {
  /** A registered quantizer's name (see {@link listQuantizers}). */
  readonly method: string;
  readonly bits?: QuantBits;
  readonly groupSize?: number;
  readonly axis?: 0 | 1;
  /** The chosen method's own options, e.g. `doubleQuant` (nf4) or `hqq` (hqq's solver settings). */
  readonly [option: string]: unknown;
}

/** Parsed options with defaults filled in (JSON; goes into run folders). */
export interface ParsedQuantizeOptions extends QuantizeOptions {
  readonly bits: QuantBits;
  readonly groupSize: number;
  readonly axis: 0 | 1;
}

/**
 * The zod schema of {@link quantize}'s options for method `q` (or, without one, for an unknown
 * method, which it refuses listing the registered ones): the shared keys, `q`'s own options, and
 * the other methods' options refused by name.
 */
function optionsSchema(q: RegisteredQuantizer | undefined) {
  const names = listQuantizers();
  const own = q?.options ?? {};
  const others: Record<string, z.ZodType> = {};
  const owners = new Map<string, string[]>();
  for (const name of names) {
    for (const key of Object.keys(getQuantizer(name).options ?? {})) {
      if (key in own) continue;
      others[key] = z.unknown().optional();
      owners.set(key, [...owners.get(key) ?? [], name]);
    }
  }
  const method = q ? z.literal(q.name) : z.enum(names as [string, ...string[]], {
    error: `no quantizer of that name is registered (registerQuantizer adds one): expected one of ${
      names.map((n) => JSON.stringify(n)).join("|")
    }`,
  });
  return z.strictObject({ ...COMMON, method, ...others, ...own }).superRefine((o, ctx) => {
    if (!q) return;
    // `input` is what the message reports as received.
    const issue = (path: string, message: string, input: unknown) =>
      ctx.addIssue({ code: "custom", path: [path], message, input });
    const rec = o as Record<string, unknown>;
    for (const [key, methods] of owners) {
      if (rec[key] === undefined) continue;
      const list = methods.map((m) => `"${m}"`).join(", ");
      issue(key, `an option of method ${list}, not of "${q.name}"`, rec[key]);
    }
    if (!q.bits.includes(o.bits)) {
      const one = q.bits.length === 1;
      const list = q.bits.join(", ");
      const pass = one ? `pass ${list}` : `pass one of ${list}`;
      const fix = q.bits.includes(4) ? `leave bits out or ${pass}` : pass;
      issue("bits", `${q.name} ${one ? `is a ${list}-bit code` : `takes ${list} bits`}: ${fix}`, o.bits);
    }
    if (!q.axes.includes(o.axis)) {
      const fix = q.axes.includes(1) ? "leave axis out or pass 1" : "pass 0";
      issue("axis", `${q.name} groups along axis ${q.axes[0]} only: ${fix}`, o.axis);
    }
  });
}

/**
 * Validates {@link quantize}'s options against the shared keys and the chosen method's own, with
 * defaults filled in (frozen).
 * @throws {ConfigError} naming each bad key, the value and the choices (an unknown method lists the
 *   registered ones; another method's option names its method)
 */
export function parseQuantizeOptions(options: QuantizeOptions): ParsedQuantizeOptions {
  const name = (options as { method?: unknown } | null)?.method;
  const q = typeof name === "string" && listQuantizers().includes(name) ? getQuantizer(name) : undefined;
  return parseConfig("quantize", optionsSchema(q), options) as ParsedQuantizeOptions;
}

/**
 * Quantizes a 2-D f32 weight `[rows, cols]` (HF `[out, in]`); the result's tensors live on
 * `weight.device` in the ledger's `"weights"` category. The weight is not modified or disposed.
 *
 * @param weight `[rows, cols]` f32 (typed as any tensor: the dtype is checked at run time).
 * @param options `method`, `bits`, `groupSize`, `axis` and the method's own options (see {@link parseQuantizeOptions}).
 * @returns Packed codes plus metadata; HQQ adds `info` (iterations kept, mean |W − Ŵ|).
 * @throws {ConfigError} For unknown keys or values out of range (bits 5, axis 2, nf4 with bits 2, …).
 * @throws {TypeError} When the weight is not f32.
 * @throws {RangeError} When it is not 2-D, or `groupSize` does not divide the grouped dimension.
 * @see https://mobiusml.github.io/hqq_blog/ (HQQ), https://arxiv.org/abs/2305.14314 (NF4)
 */
export async function quantize(weight: Tensor, options: QuantizeOptions): Promise<QuantizedTensor> {
  const o = parseQuantizeOptions(options);
  const quantizer = getQuantizer(o.method);
  const what = `quantize weight with ${o.method}`;
  if (weight.dtype !== "f32") {
    throw new TypeError(`Cannot ${what}: the weight must be f32: received ${weight.dtype}; cast it first`);
  }
  checkQuantLayout(what, weight.shape, o.bits, o.groupSize, o.axis);
  const layout: QuantLayout = {
    shape: [weight.shape[0], weight.shape[1]] as const,
    bits: o.bits,
    groupSize: o.groupSize,
    axis: o.axis,
  };
  if (weight.size === 0) throw new RangeError(`Cannot ${what}: the weight [${weight.shape}] is empty`);
  const w = weight as Tensor<"f32">;
  await checkFinite(w, what);
  const q = await quantizer.quantize(w, layout, o);
  if (q.method !== quantizer.name) {
    throw new TypeError(
      `quantizer "${quantizer.name}" returned a QuantizedTensor with method "${q.method}": it must carry its own name`,
    );
  }
  return q;
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
