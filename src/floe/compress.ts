/**
 * `floeCompress`: turns a MoE model into a FloE model (Zhou et al., ICML 2025,
 * https://arxiv.org/abs/2505.05950; ALGORITHMS.md A.2, A.3): in every MoE layer not listed in
 * `denseLayers`, the dense experts are replaced by {@link FloeExperts} whose up projection is
 * HQQ-quantized (`upBits` 2, 3 or 4 at `groupSize`, groups along the input features; 16 keeps it
 * exact) and resident, and whose gate and transposed down rows come from the experts read into host
 * memory ({@link HostExperts.fromModel}). Tokens keep the channels whose `|up·x|` passes the
 * layer/expert threshold (`mode: "threshold"`, thresholds from `calibrateThresholds`) or the
 * `⌊(1−s)·F⌋` largest (`mode: "topk"`). The model is changed in place (its replaced dense experts are
 * disposed) and returned.
 *
 * @example Top-k FloE at s = 0 computes the dense model
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "../models/load.ts";
 * import { floeCompress } from "./compress.ts";
 * const device = await createDevice({ backend: "cpu" });
 * const dir = "test/fixtures/models/mixtral-top2-f32";
 * using dense = await loadModel(dir, { device });
 * using floe = await floeCompress(await loadModel(dir, { device }), { upBits: 16, sparsity: 0, mode: "topk", denseLayers: [] });
 * const ids = [1, 5, 9];
 * const a = await dense.forward(ids).logits.toArray(), b = await floe.forward(ids).logits.toArray();
 * assert.ok(a.every((v, i) => Math.abs(v - b[i]) < 1e-4));
 * ```
 * @module
 */
import { z } from "zod";
import { quantize } from "../compressors/quant/quantize.ts";
import { parseConfig } from "../config.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import { asDenseExperts } from "../nn/experts.ts";
import { Linear } from "../nn/linear.ts";
import type { LinearLike } from "../nn/linear_like.ts";
import { QuantizedLinear } from "../nn/quantized_linear.ts";
import type { SparseMoE } from "../nn/sparse_moe.ts";
import type { QuantizedTensor } from "../tensor/quantized_tensor.ts";
import { Tensor } from "../tensor/tensor.ts";
import { HostExperts } from "../moe/host_experts.ts";
import { FloeExperts, rowChunks } from "./floe_experts.ts";
import type { FloeThresholds } from "./thresholds.ts";

/** Options of {@link floeCompress} (`thresholds` is passed beside them). */
export const FloeOptionsSchema = z.strictObject({
  /** Up projection bits: 2, 3 or 4 (HQQ), or 16 (kept exact, for studies). */
  upBits: z.literal([2, 3, 4, 16]).default(2),
  /** HQQ group size along the input features; must divide the hidden size. */
  groupSize: z.number().int().positive().default(64),
  /** Target sparsity `s` in `[0, 1)`. */
  sparsity: z.number().min(0).lt(1),
  /** `"threshold"` (calibrated `t[l][e]`) or `"topk"` (`⌊(1−s)·F⌋` channels per token). */
  mode: z.enum(["threshold", "topk"]),
  /** MoE layers left dense (default: the first MoE layer, as FloE keeps layer 0 dense). */
  denseLayers: z.array(z.number().int().min(0)).optional(),
  /** `"sparse"` (default): every forward is sparse; `"dense"`: multi-token forwards use every channel, as FloE's runtime prefill. */
  prefill: z.enum(["sparse", "dense"]).default("sparse"),
  /**
   * Rows per device tensor of gate/down (default: as many as the device's storage-binding limit
   * allows); an expert over it is split into chunks, not refused.
   */
  chunkRows: z.number().int().positive().optional(),
  /** Host dtype of gate/down rows (default: the checkpoint's, f16 for f16/bf16). */
  storeDtype: z.enum(["f16", "f32"]).optional(),
});

/** What callers pass to {@link floeCompress}. */
export type FloeOptions = z.input<typeof FloeOptionsSchema> & {
  /** Required in threshold mode: from `calibrateThresholds` or `FloeThresholds.load`. */
  thresholds?: FloeThresholds;
};

/** Parsed options (JSON; goes into run folders). */
export type ParsedFloeOptions = z.output<typeof FloeOptionsSchema>;

/**
 * Compresses `model`'s experts FloE-style, in place, and returns it.
 *
 * @throws {ConfigError} on invalid options (sparsity outside [0, 1), unknown mode, …)
 * @throws {TypeError} for a model without MoE layers, experts that are already compressed, threshold
 *   mode without thresholds, or thresholds of another model
 * @throws {RangeError} when `groupSize` does not divide the hidden size, or a dense layer index is not a MoE layer
 */
export async function floeCompress(model: CausalLM, options: FloeOptions): Promise<CausalLM> {
  const { thresholds, ...rest } = options;
  const o = parseConfig("floeCompress", FloeOptionsSchema, rest);
  if (model.moeLayers.length === 0) {
    throw new TypeError(
      `Cannot FloE-compress a dense model (${model.config.modelType}, no MoE layers): FloE compresses MoE experts`,
    );
  }
  const denseLayers = o.denseLayers ?? [model.moeLayers[0]];
  for (const l of denseLayers) {
    if (!model.moeLayers.includes(l)) {
      throw new RangeError(
        `Cannot FloE-compress: dense layer ${l} is not a MoE layer of this model (MoE layers: ${model.moeLayers})`,
      );
    }
  }
  if (o.mode === "threshold") {
    if (!thresholds) {
      throw new TypeError(
        "Cannot FloE-compress in threshold mode without thresholds: calibrate or load them",
      );
    }
    await thresholds.checkFits(model);
  }
  const C = model.config.hidden;
  if (o.upBits !== 16 && C % o.groupSize !== 0) {
    throw new RangeError(
      `Cannot FloE-compress: group size ${o.groupSize} must divide the hidden size ${C}; pick a divisor`,
    );
  }
  const store = await HostExperts.fromModel(model, { hostDType: o.storeDtype, projs: ["gate", "down"] });
  const device = model.device;
  for (const l of model.moeLayers) {
    if (denseLayers.includes(l)) continue;
    const moe = model.layers[l].mlp as SparseMoE;
    const dense = asDenseExperts(moe.experts, `FloE-compress layer ${l}`);
    const [E, F] = [dense.numExperts, dense.intermediate];
    const upAll = await dense.upProj.toArray() as Float32Array; // [E, F, C]
    const up: LinearLike[] = [];
    for (let e = 0; e < E; e++) {
      const w = Tensor.fromArray(device, upAll.slice(e * F * C, (e + 1) * F * C), [F, C], {
        category: "experts",
      }); // [F, C]
      if (o.upBits === 16) {
        up.push(new Linear(w));
        continue;
      }
      using _w = w;
      const q = await quantize(w, { method: "hqq", bits: o.upBits, groupSize: o.groupSize });
      up.push(new QuantizedLinear(await residentCopy(q)));
    }
    const limit = device.info.limits.maxStorageBufferBindingSize ?? 2 ** 27;
    const chunk = o.chunkRows ?? Math.max(1, Math.floor(limit / (C * 4)));
    const gate = Array.from(
      { length: E },
      (_, e) => rowChunks(device, store.matrix(l, e, "gate"), F, C, chunk),
    );
    const downT = Array.from(
      { length: E },
      (_, e) => rowChunks(device, store.matrix(l, e, "downT"), F, C, chunk),
    );
    const experts = new FloeExperts(l, { up, gate, downT }, {
      mode: o.mode,
      sparsity: o.sparsity,
      thresholds: thresholds?.at(l).slice(),
      prefill: o.prefill,
    }, store);
    moe.replaceExperts(experts).dispose();
  }
  return model;
}

/** `q` with its tensors moved to the ledger's `"experts"` category (the quantizer allocates `"weights"`). */
async function residentCopy(q: QuantizedTensor): Promise<QuantizedTensor> {
  const move = async <D extends "u32" | "f32">(t: Tensor<D>): Promise<Tensor<D>> => {
    const copy = Tensor.fromArray(t.device, await t.toArray(), t.shape, {
      dtype: t.dtype,
      category: "experts",
    });
    t.dispose();
    return copy as Tensor<D>;
  };
  return {
    ...q,
    codes: await move(q.codes),
    meta: await move(q.meta as Tensor<"u32" | "f32">),
    ...(q.meta2 ? { meta2: await move(q.meta2) } : {}),
  } as QuantizedTensor;
}
