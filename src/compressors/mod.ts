/**
 * Compressors, one of Ferry's four kinds of objects: quantizers (RTN, HQQ, NF4 into a packed
 * {@link QuantizedTensor}), pruners (unstructured masks, 2:4, structured plans applied to a model),
 * low-rank factorisation, and the analysis that compares them (errors, sweeps, FloE's expert
 * sensitivity study).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { randn } from "../tensor/random.ts";
 * import { bitsPerParam, dequantizeRef, quantize, quantizedToHost, relativeError } from "../mod.ts";
 * const device = await createDevice({ backend: "cpu" });
 * const w = randn(32 * 64, 1); // [out, in]
 * const q = await quantize(Tensor.fromArray(device, w, [32, 64]), { method: "hqq", bits: 2, groupSize: 64 });
 * const err = relativeError(w, dequantizeRef(await quantizedToHost(q)));
 * assert.ok(err < 0.6 && bitsPerParam(q).total === 2.5);
 * ```
 * @module
 */
import type { QuantizedTensor } from "../tensor/quantized_tensor.ts";

export type { QuantizedTensor };
export * from "./quant/quantize.ts";
export { HQQ_DEFAULTS, type HqqInfo, type HqqOptions } from "./quant/hqq.ts";
export * from "./prune/mod.ts";
export * from "./lowrank/svd.ts";
export * from "./lowrank/low_rank.ts";
export * from "./analysis/errors.ts";
export * from "./analysis/sweep.ts";
export * from "./analysis/model_weights.ts";
export * from "./analysis/sensitivity.ts";
