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
import { perplexity } from "../../models/perplexity.ts";
import { MetricLog } from "../../metrics/metric_log.ts";
import { SparseMoE } from "../../nn/sparse_moe.ts";
import { dequantizeRef } from "../../ops/dequantize_ref.ts";
import { bitsPerParam, disposeQuantized } from "../../tensor/quantized_tensor.ts";
import { Tensor } from "../../tensor/tensor.ts";
import { quantize, quantizedToHost } from "../quant/quantize.ts";
import type { QuantSetting } from "./sweep.ts";

/** The three expert projections, HF Mixtral names. */
export const EXPERT_PROJECTIONS = [
  { name: "w1 (gate)", key: "gateProj" },
  { name: "w3 (up)", key: "upProj" },
  { name: "w2 (down)", key: "downProj" },
] as const;

/**
 * One row per (projection, setting) plus an unquantized baseline row: perplexity on `ids`, its
 * increase over the baseline in percent, and the stored bits per parameter.
 */
export async function expertProjectionSensitivity(
  model: CausalLM,
  ids: Int32Array,
  settings: readonly QuantSetting[],
  options: { blockSize: number; runId?: string; onRow?: (row: Record<string, unknown>) => void },
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
    },
  });
  const base = (await perplexity(model, ids, { blockSize: options.blockSize })).perplexity;
  const baseRow = {
    projection: "none",
    method: "f32",
    bits: 32,
    bits_per_param: 32,
    perplexity: base,
    increase_pct: 0,
  };
  log.log(baseRow);
  options.onRow?.(baseRow);
  for (const proj of EXPERT_PROJECTIONS) {
    for (const s of settings) {
      const originals: Float32Array[] = [];
      let bpp = 0;
      try {
        for (const moe of blocks) {
          const stacked = moe.experts[proj.key]; // [E, out, in]
          const [E, rows, cols] = stacked.shape;
          if ((s.axis === 1 ? cols : rows) % s.groupSize !== 0) {
            throw new RangeError(
              `Cannot quantize ${proj.name} [${rows}, ${cols}] with group size ${s.groupSize} on axis ${s.axis}`,
            );
          }
          const data = await stacked.toArray() as Float32Array;
          originals.push(data);
          const approx = new Float32Array(data.length);
          for (let e = 0; e < E; e++) {
            const slice = data.subarray(e * rows * cols, (e + 1) * rows * cols); // [out, in]
            using t = Tensor.fromArray<"f32">(model.device, slice.slice(), [rows, cols]);
            const q = await quantize(t, s);
            try {
              approx.set(dequantizeRef(await quantizedToHost(q)), e * rows * cols);
              bpp = bitsPerParam(q).total;
            } finally {
              disposeQuantized(q);
            }
          }
          model.device.upload(stacked.storage, approx);
        }
        const ppl = (await perplexity(model, ids, { blockSize: options.blockSize })).perplexity;
        const row = {
          projection: proj.name,
          method: s.method + (s.doubleQuant ? "+dq" : ""),
          bits: s.bits,
          group_size: s.groupSize,
          axis: s.axis,
          bits_per_param: bpp,
          perplexity: ppl,
          increase_pct: 100 * (ppl / base - 1),
        };
        log.log(row);
        options.onRow?.(row);
      } finally {
        originals.forEach((data, i) => model.device.upload(blocks[i].experts[proj.key].storage, data));
      }
    }
  }
  return log;
}
