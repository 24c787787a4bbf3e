/**
 * FloE's quality table (Zhou et al., ICML 2025, https://arxiv.org/abs/2505.05950; ALGORITHMS.md
 * A.3, A.8, D.1.2): perplexity and its change against the dense model over target sparsities ×
 * up-projection bits, in threshold mode (thresholds calibrated on separate tokens) and top-k mode,
 * with the achieved kept-channel fraction next to the target. Each bit width is quantized once; the
 * sparsities and modes reconfigure the same experts.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "../models/load.ts";
 * import { qualityTable } from "./quality_table.ts";
 * const device = await createDevice({ backend: "cpu" });
 * const ids = Int32Array.from({ length: 40 }, (_, i) => (i * 7 + 3) % 96);
 * const log = await qualityTable(() => loadModel("test/fixtures/models/mixtral-top2-f32", { device }), {
 *   calibration: [ids.subarray(0, 20)], evaluation: ids.subarray(20), blockSize: 20,
 *   sparsities: [0.5], upBits: [16], groupSize: 16,
 * });
 * assert.deepEqual(log.toJSON().map((r) => r.mode), ["dense", "threshold", "topk"]);
 * ```
 * @module
 */
import { MetricLog, type MetricRow } from "../metrics/metric_log.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import { comparedPerplexity } from "../models/perplexity.ts";
import type { DocumentScore } from "../metrics/bootstrap.ts";
import type { SparseMoE } from "../nn/sparse_moe.ts";
import { calibrateThresholds, measureSparsity } from "./calibrate.ts";
import { floeCompress } from "./compress.ts";
import { FloeExperts } from "./floe_experts.ts";

/** Options of {@link qualityTable}. */
export interface QualityTableOptions {
  /** Calibration sequences (each one forward). */
  calibration: readonly Int32Array[];
  /**
   * Evaluation ids, scored in disjoint windows of `blockSize`; or documents, each scored from its
   * own start, which adds 95% bootstrap intervals over documents (`perplexity_lo`/`_hi`, and the
   * paired change against dense, `delta_lo_pct`/`_hi_pct`).
   */
  evaluation: Int32Array | readonly Int32Array[];
  blockSize: number;
  /** Default `[0.5, 0.6, 0.7, 0.8, 0.9]`. */
  sparsities?: readonly number[];
  /** Default `[2, 3, 4, 16]`. */
  upBits?: readonly (2 | 3 | 4 | 16)[];
  /** Default both. */
  modes?: readonly ("threshold" | "topk")[];
  /** HQQ group size (default 64). */
  groupSize?: number;
  /** MoE layers kept dense (default: the first MoE layer). */
  denseLayers?: number[];
  runId?: string;
  /** Called with every row as it is measured (progress). */
  onRow?: (row: MetricRow) => void;
}

/** FloE layers of `model`. */
function floeLayers(model: CausalLM): FloeExperts[] {
  return model.moeLayers.map((l) => (model.layers[l].mlp as SparseMoE).experts).filter((e) =>
    e instanceof FloeExperts
  ) as FloeExperts[];
}

/**
 * Builds the table (`load` is called once for the dense baseline and once per bit width).
 *
 * @returns rows `up_bits`, `mode` (`dense`, `threshold`, `topk`), `sparsity`, `perplexity`,
 *   `delta_pct` (vs dense), `kept_fraction` (achieved on the first evaluation window), `target_kept`;
 *   with documents also `perplexity_lo`, `perplexity_hi`, `delta_lo_pct`, `delta_hi_pct`
 */
export async function qualityTable(
  load: () => Promise<CausalLM>,
  options: QualityTableOptions,
): Promise<MetricLog> {
  const {
    calibration,
    evaluation,
    blockSize,
    sparsities = [0.5, 0.6, 0.7, 0.8, 0.9],
    upBits = [2, 3, 4, 16],
    modes = ["threshold", "topk"],
    groupSize = 64,
    denseLayers,
    runId,
    onRow,
  } = options;
  const log = new MetricLog({
    runId,
    config: { sparsities, upBits, modes, groupSize, denseLayers, blockSize },
  });
  const emit = (row: MetricRow) => {
    log.log(row);
    onRow?.(row);
  };
  // Perplexity on the stream, or per document with intervals (the change paired against dense).
  let baseDocs: DocumentScore[] | undefined;
  const measure = async (m: CausalLM) => {
    const { columns, documents } = await comparedPerplexity(m, evaluation, { blockSize }, baseDocs);
    baseDocs ??= documents;
    const { change_lo_pct, change_hi_pct, ...rest } = columns;
    return change_lo_pct === undefined
      ? rest
      : { ...rest, delta_lo_pct: change_lo_pct, delta_hi_pct: change_hi_pct };
  };
  let base: number;
  let baseRow: { perplexity: number } & Record<string, number>;
  {
    using dense = await load();
    baseRow = await measure(dense);
    base = baseRow.perplexity;
  }
  emit({
    up_bits: 16,
    mode: "dense",
    sparsity: 0,
    ...baseRow,
    delta_pct: 0,
    kept_fraction: 1,
    target_kept: 1,
  });
  const first = evaluation instanceof Int32Array ? evaluation : evaluation[0];
  const probe = [first.subarray(0, Math.min(blockSize, first.length))];
  for (const bits of upBits) {
    using model = await floeCompress(await load(), {
      upBits: bits,
      groupSize,
      sparsity: 0,
      mode: "topk",
      denseLayers,
    });
    const layers = floeLayers(model);
    for (const s of sparsities) {
      const thresholds = modes.includes("threshold")
        ? await calibrateThresholds(model, calibration, { sparsity: s, rounds: 1 })
        : undefined;
      for (const mode of modes) {
        for (const ex of layers) {
          ex.configure({ mode, sparsity: s, thresholds: thresholds?.at(ex.layer).slice() });
        }
        const measured = await measure(model);
        const p = measured.perplexity;
        const kept = await measureSparsity(model, probe);
        const n = kept.reduce((a, r) => a + r.tokens, 0);
        emit({
          up_bits: bits,
          mode,
          sparsity: s,
          ...measured,
          delta_pct: 100 * (p / base - 1),
          kept_fraction: kept.reduce((a, r) => a + (r.tokens ? r.kept_fraction * r.tokens : 0), 0) / n,
          target_kept: 1 - s,
        });
      }
    }
  }
  return log;
}
