/**
 * Quantizers as objects: the {@link Quantizer} interface and the registry `quantize()` looks methods
 * up in. A new method is one file that builds a `Quantizer` and calls {@link registerQuantizer} when
 * it loads; `quantize(weight, { method: "<its name>", bits, groupSize, axis, ...its options })` then
 * validates the options and runs it, and `QuantizedTensor.method` carries its name. RTN, HQQ and NF4
 * register themselves this way (`rtn.ts`, `hqq.ts`, `nf4.ts`).
 *
 * @example A toy method: every code 0, one group step of 1 (registered once per process)
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../../device/create_device.ts";
 * import { Tensor } from "../../tensor/tensor.ts";
 * import { packCodes } from "../../tensor/quantized_tensor.ts";
 * import { packAffineMeta } from "../../ops/dequantize_ref.ts";
 * import { quantize } from "./quantize.ts";
 * import { getQuantizer, listQuantizers, registerQuantizer } from "./quantizer.ts";
 * registerQuantizer({
 *   name: "zeros-doc-example",
 *   description: "every weight to 0 (a doc example)",
 *   quantize(weight, layout) {
 *     const [rows, cols] = layout.shape;
 *     const groups = (rows * cols) / layout.groupSize;
 *     const u32 = { dtype: "u32", category: "weights" } as const;
 *     const codes = packCodes(new Uint8Array(rows * cols), rows, cols, layout.bits);
 *     const meta = packAffineMeta(new Float32Array(groups).fill(1), new Float32Array(groups));
 *     return {
 *       method: "zeros-doc-example", scheme: "affine", ...layout,
 *       codes: Tensor.fromArray(weight.device, codes, [codes.length], u32),
 *       meta: Tensor.fromArray(weight.device, meta, [groups], u32),
 *     };
 *   },
 * });
 * const device = await createDevice({ backend: "cpu" });
 * const q = await quantize(Tensor.fromArray(device, [1, 2, 3, 4], [1, 4]), { method: "zeros-doc-example", groupSize: 4 });
 * assert.equal(q.method, "zeros-doc-example");
 * assert.ok(listQuantizers().includes("hqq") && getQuantizer("zeros-doc-example").bits.length === 4);
 * ```
 * @module
 */
import type { z } from "zod";
import { QUANT_BITS, type QuantBits, type QuantizedTensor } from "../../tensor/quantized_tensor.ts";
import type { Tensor } from "../../tensor/tensor.ts";

/** Shape, bits and grouping of one quantisation, checked by `quantize()` before a quantizer runs. */
export interface QuantLayout {
  readonly shape: readonly [number, number];
  readonly bits: QuantBits;
  readonly groupSize: number;
  readonly axis: 0 | 1;
}

/** The option keys every method shares; a quantizer's own keys may not reuse them. */
export const COMMON_QUANTIZE_KEYS: readonly string[] = ["method", "bits", "groupSize", "axis"];

/**
 * A weight quantizer: `[rows, cols]` f32 in, a packed {@link QuantizedTensor} out (codes in the
 * layout of `src/tensor/quantized_tensor.ts`, scheme `"affine"` or `"nf4"`, so the packed ops run it).
 *
 * @typeParam O its own options, as parsed by {@link Quantizer.options} (defaults filled in).
 */
export interface Quantizer<O extends Record<string, unknown> = Record<string, unknown>> {
  /** The `method` callers pass, e.g. `"hqq"`; also `QuantizedTensor.method`. */
  readonly name: string;
  /** One line for listings and errors. */
  readonly description: string;
  /** The code widths it produces (default: every width with packed kernels, 2, 3, 4, 8). */
  readonly bits?: readonly QuantBits[];
  /** The group axes it supports (default: both). */
  readonly axes?: readonly (0 | 1)[];
  /**
   * Zod schemas of its own option keys beside `method`, `bits`, `groupSize` and `axis` (e.g. NF4's
   * `doubleQuant`), each with its default; `quantize()` refuses them for every other method.
   */
  readonly options?: { readonly [K in keyof O]: z.ZodType<O[K]> };
  /**
   * Quantizes `weight` (f32, finite, non-empty, `groupSize` dividing the grouped dimension: checked
   * by `quantize()`), creating the result's tensors on `weight.device` in the `"weights"` category.
   * It must not modify or dispose the weight.
   */
  quantize(
    weight: Tensor<"f32">,
    layout: QuantLayout,
    options: O,
  ): Promise<QuantizedTensor> | QuantizedTensor;
}

/** A registered quantizer, with `bits` and `axes` filled in. */
export type RegisteredQuantizer = Quantizer & {
  readonly bits: readonly QuantBits[];
  readonly axes: readonly (0 | 1)[];
};

const QUANTIZERS = new Map<string, RegisteredQuantizer>();

/**
 * Adds `quantizer` to the methods `quantize()` knows, under `quantizer.name`.
 * @throws {TypeError} when the name is empty or taken, or its bits, axes or option keys are invalid
 */
export function registerQuantizer<O extends Record<string, unknown>>(quantizer: Quantizer<O>): void {
  const { name } = quantizer;
  const what = `Cannot register quantizer ${JSON.stringify(name)}`;
  if (typeof name !== "string" || name === "") {
    throw new TypeError(`${what}: its name must be a non-empty string`);
  }
  if (QUANTIZERS.has(name)) {
    throw new TypeError(`${what}: a quantizer of that name is already registered; pick another name`);
  }
  const bits = quantizer.bits ?? QUANT_BITS;
  const axes = quantizer.axes ?? [0, 1];
  if (bits.length === 0 || bits.some((b) => !QUANT_BITS.includes(b))) {
    throw new TypeError(`${what}: bits must be some of ${QUANT_BITS.join(", ")}: received [${bits}]`);
  }
  if (axes.length === 0 || axes.some((a) => a !== 0 && a !== 1)) {
    throw new TypeError(`${what}: axes must be some of 0, 1: received [${axes}]`);
  }
  const clash = Object.keys(quantizer.options ?? {}).find((k) => COMMON_QUANTIZE_KEYS.includes(k));
  if (clash) throw new TypeError(`${what}: its option "${clash}" is one every method shares; rename it`);
  QUANTIZERS.set(name, { ...quantizer, bits, axes } as unknown as RegisteredQuantizer);
}

/**
 * The quantizer registered as `name`.
 * @throws {RangeError} naming the registered methods when there is none
 */
export function getQuantizer(name: string): RegisteredQuantizer {
  const q = QUANTIZERS.get(name);
  if (!q) {
    throw new RangeError(
      `Unknown quantizer ${JSON.stringify(name)}: registered are ${listQuantizers().join(", ")}; ` +
        `add one with registerQuantizer`,
    );
  }
  return q;
}

/** The names of the registered quantizers, in registration order (the built-ins first). */
export function listQuantizers(): string[] {
  return [...QUANTIZERS.keys()];
}
