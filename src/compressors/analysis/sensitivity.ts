/**
 * FloE's quantisation-sensitivity study (ALGORITHMS.md A.2; Zhou et al., FloE, ICML 2025,
 * https://arxiv.org/abs/2505.05950): quantize ONE projection (gate `w1`, up `w3` or down `w2`)
 * of every routed expert of every MoE layer, leave the rest exact, and measure perplexity. FloE
 * keeps `up` at INT2 because it is the least sensitive; this reproduces that comparison on any
 * MoE checkpoint. The model's weights are restored afterwards (also on error).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../../device/create_device.ts";
 * import { loadModel } from "../../models/load.ts";
 * import { expertProjectionSensitivity } from "./sensitivity.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/mixtral-top2-f32", { device });
 * const ids = Int32Array.from({ length: 24 }, (_, i) => (i * 7) % 50);
 * const log = await expertProjectionSensitivity(model, ids, [{ method: "rtn", bits: 2, groupSize: 8, axis: 1 }], {
 *   blockSize: 12,
 * });
 * assert.ok(log.rows === 4); // the unquantized baseline + gate, up, down
 * ```
 * @module
 */
import type { CausalLM } from "../../models/causal_lm.ts";
import { comparedPerplexity } from "../../models/perplexity.ts";
import type { DocumentScore } from "../../metrics/bootstrap.ts";
import { MetricLog } from "../../metrics/metric_log.ts";
import { asDenseExperts } from "../../nn/experts.ts";
import { SparseMoE } from "../../nn/sparse_moe.ts";
import { dequantize } from "../../ops/dequantize.ts";
import { sliceRows, writeRows } from "../../ops/slice.ts";
import { bitsPerParam, disposeQuantized } from "../../tensor/quantized_tensor.ts";
import { quantize } from "../quant/quantize.ts";
import type { QuantSetting } from "./sweep.ts";

/** The three expert projections, HF Mixtral names. */
export const EXPERT_PROJECTIONS = [
  { name: "w1 (gate)", key: "gateProj" },
  { name: "w3 (up)", key: "upProj" },
  { name: "w2 (down)", key: "downProj" },
] as const;

/**
 * One row per (projection, setting) plus an unquantized baseline row: perplexity on `ids`, its
 * increase over the baseline in percent, and the stored bits per parameter. Given documents
 * (`Int32Array[]`, each scored from its own start), the rows also carry a 95% bootstrap interval
 * over documents for the perplexity (`perplexity_lo`, `perplexity_hi`) and a paired one for the
 * increase over the baseline (`increase_lo_pct`, `increase_hi_pct`): an effect is resolved when its
 * interval excludes 0.
 */
export async function expertProjectionSensitivity(
  model: CausalLM,
  ids: Int32Array | readonly Int32Array[],
  settings: readonly QuantSetting[],
  options: {
    blockSize: number;
    runId?: string;
    onRow?: (row: Record<string, unknown>) => void;
    /**
     * Given documents: each row's per-document scores (projection `"none"` for the baseline), so two
     * projections can be compared with `pairedBootstrap` on the same documents.
     */
    onDocuments?: (projection: string, documents: DocumentScore[]) => void;
  },
): Promise<MetricLog> {
  const blocks = model.layers.map((l) => l.mlp).filter((m): m is SparseMoE => m instanceof SparseMoE);
  if (blocks.length === 0) {
    throw new TypeError("Cannot run the expert sensitivity study: the model has no MoE layer");
  }
  const log = new MetricLog({
    ...(options.runId ? { runId: options.runId } : {}),
    columns: {
      projection: "utf8",
      method: "utf8",
      bits: "int32",
      group_size: "int32",
      axis: "int32",
      bits_per_param: "float64",
      perplexity: "float64",
      increase_pct: "float64",
      ...(ids instanceof Int32Array ? {} : {
        perplexity_lo: "float64",
        perplexity_hi: "float64",
        increase_lo_pct: "float64",
        increase_hi_pct: "float64",
      } as const),
    },
  });
  // Perplexity of the current weights: on one stream, or per document with intervals against the baseline.
  let baseDocs: DocumentScore[] | undefined;
  const measure = async (projection: string) => {
    const { columns, documents } = await comparedPerplexity(
      model,
      ids,
      { blockSize: options.blockSize },
      baseDocs,
    );
    baseDocs ??= documents;
    if (documents) options.onDocuments?.(projection, documents);
    const { change_lo_pct, change_hi_pct, ...rest } = columns;
    return change_lo_pct === undefined
      ? rest
      : { ...rest, increase_lo_pct: change_lo_pct, increase_hi_pct: change_hi_pct };
  };
  const baseline = await measure("none");
  const base = baseline.perplexity;
  const baseRow = {
    projection: "none",
    method: "f32",
    bits: 32,
    bits_per_param: 32,
    ...baseline,
    increase_pct: 0,
  };
  log.log(baseRow);
  options.onRow?.(baseRow);
  for (const proj of EXPERT_PROJECTIONS) {
    const stacks = blocks.map((moe) => asDenseExperts(moe.experts, "run the sensitivity study")[proj.key]); // [E, out, in] per MoE layer
    const [E, rows, cols] = stacks[0].shape;
    const originals = await Promise.all(stacks.map((t) => t.toArray() as Promise<Float32Array>));
    for (const s of settings) {
      if ((s.axis === 1 ? cols : rows) % s.groupSize !== 0) {
        throw new RangeError(
          `Cannot quantize ${proj.name} [${rows}, ${cols}] with group size ${s.groupSize} on axis ${s.axis}`,
        );
      }
      let bpp = 0;
      try {
        // On the device: each expert's slice is quantized, dequantized and written back in place.
        for (const stacked of stacks) {
          using flat = stacked.reshape([E * rows, cols]); // [E·out, in] view
          for (let e = 0; e < E; e++) {
            using w = sliceRows(flat, e * rows, rows); // [out, in]
            const q = await quantize(w, s);
            try {
              using approx = dequantize(q); // [out, in]
              writeRows(flat, approx, e * rows);
              bpp = bitsPerParam(q).total;
            } finally {
              disposeQuantized(q);
            }
          }
        }
        const measured = await measure(proj.name);
        const ppl = measured.perplexity;
        const row = {
          projection: proj.name,
          method: s.method + (s.doubleQuant ? "+dq" : ""),
          bits: s.bits,
          group_size: s.groupSize,
          axis: s.axis,
          bits_per_param: bpp,
          ...measured,
          increase_pct: 100 * (ppl / base - 1),
        };
        log.log(row);
        options.onRow?.(row);
      } finally {
        originals.forEach((data, i) => model.device.upload(stacks[i].storage, data));
      }
    }
  }
  return log;
}
