/**
 * FloE's compression table (Zhou et al., ICML 2025, https://arxiv.org/abs/2505.05950;
 * ALGORITHMS.md A.7, D.1.1): one row per configuration — dense f16, INT`b` up only (s = 0), sparsity
 * `s` only (up f16), FloE (INT`b` up + `s`) — with the bytes of one expert split into resident (the
 * up projection, measured from a real quantized tensor, with and without its f16 scale/zero) and
 * streamed per routed token (`⌊(1−s)·F⌋` channels of gate and transposed down, f16), the per-expert
 * compression ratio `3·F·C·2 / (resident + streamed)` with and without quantisation metadata next to
 * A.7's formula `48 / (b + 32·(1−s))`, and the device bytes the memory ledger holds resident
 * (`weights` + `experts`) after `floeCompress`, against the dense model (Ferry keeps floats as f32 on
 * the device, so these are f32 bytes). At `s = 0.9, b = 2, g = 64` the formula gives 9.23× (8.42× with
 * metadata) — the paper's "9.3×".
 *
 * @example The A.7 check on the test MoE (F = 48: ⌊0.1·48⌋ = 4 channels stream)
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "../models/load.ts";
 * import { compressionTable } from "./compression_table.ts";
 * const device = await createDevice({ backend: "cpu" });
 * const log = await compressionTable(() => loadModel("test/fixtures/models/mixtral-top2-f32", { device }),
 *   { sparsity: 0.9, upBits: 2, groupSize: 16 });
 * const floe = log.toJSON().find((r) => r.config === "floe")!;
 * assert.equal(Number(floe.formula_cr).toFixed(2), "9.23");
 * ```
 * @module
 */
import { quantize } from "../compressors/quant/quantize.ts";
import { MetricLog } from "../metrics/metric_log.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import { asDenseExperts } from "../nn/experts.ts";
import type { SparseMoE } from "../nn/sparse_moe.ts";
import { sliceRows } from "../ops/slice.ts";
import { disposeQuantized, quantizedBytes } from "../tensor/quantized_tensor.ts";
import { floeCompress } from "./compress.ts";
import { keptChannelCount } from "../ops/sparse_expert.ts";

/** Options of {@link compressionTable}. */
export interface CompressionTableOptions {
  /** Target sparsity (default 0.9). */
  sparsity?: number;
  /** Up bits of the quantized rows (default 2). */
  upBits?: 2 | 3 | 4;
  /** HQQ group size (default 64). */
  groupSize?: number;
  /** MoE layers FloE keeps dense (default: the first MoE layer). */
  denseLayers?: number[];
  /** Run id of the returned log. */
  runId?: string;
}

/** A.7's per-expert compression ratio `3·16 / (b + 2·16·(1 − s))`. */
export function floeFormulaRatio(upBits: number, sparsity: number): number {
  return 48 / (upBits + 32 * (1 - sparsity));
}

/**
 * Builds the table. `load` is called once per measured configuration (FloE compresses in place).
 *
 * @returns one row per configuration: `config`, `up_bits`, `sparsity`, `resident_bytes`,
 *   `resident_code_bytes`, `streamed_bytes_per_token`, `expert_bytes`, `cr_with_meta`, `cr_no_meta`,
 *   `formula_cr`, `formula_cr_meta`, `ledger_resident_bytes`, `memory_reduction`
 */
export async function compressionTable(
  load: () => Promise<CausalLM>,
  options: CompressionTableOptions = {},
): Promise<MetricLog> {
  const { sparsity: s = 0.9, upBits: b = 2, groupSize = 64, runId } = options;
  using dense = await load();
  const denseLayers = options.denseLayers ?? [dense.moeLayers[0]];
  const log = new MetricLog({ runId, config: { sparsity: s, upBits: b, groupSize, denseLayers } });
  const moe = dense.moeLayers.find((l) => !denseLayers.includes(l)) ?? dense.moeLayers[0];
  const experts = asDenseExperts((dense.layers[moe].mlp as SparseMoE).experts, "measure expert bytes");
  const [F, C] = [experts.intermediate, experts.hidden];
  using flat = experts.upProj.reshape([experts.numExperts * F, C]); // [E·F, C]
  using up0 = sliceRows(flat, 0, F); // [F, C] expert 0
  const q = await quantize(up0, { method: "hqq", bits: b, groupSize });
  const qb = quantizedBytes(q);
  disposeQuantized(q);
  const resident = (): number =>
    dense.device.ledger.current("weights") + dense.device.ledger.current("experts");
  const denseResident = resident();
  const f16 = 2;
  const matrix = F * C * f16;
  const kept = keptChannelCount(F, s);
  const rows = [
    { config: "dense f16", up_bits: 16, sparsity: 0, up: matrix, upCodes: matrix, streamed: 2 * matrix },
    { config: `up int${b}`, up_bits: b, sparsity: 0, up: qb.total, upCodes: qb.codes, streamed: 2 * matrix },
    {
      config: `sparsity ${s}`,
      up_bits: 16,
      sparsity: s,
      up: matrix,
      upCodes: matrix,
      streamed: 2 * kept * C * f16,
    },
    {
      config: "floe",
      up_bits: b,
      sparsity: s,
      up: qb.total,
      upCodes: qb.codes,
      streamed: 2 * kept * C * f16,
    },
  ];
  for (const r of rows) {
    let ledger = denseResident;
    if (r !== rows[0]) {
      const before = resident(); // the ledger is the device's: count this model's bytes only
      const m = await floeCompress(await load(), {
        upBits: r.up_bits as 2 | 3 | 4 | 16,
        groupSize,
        sparsity: r.sparsity,
        mode: "topk",
        denseLayers,
      });
      ledger = resident() - before;
      m.dispose();
    }
    const full = 3 * matrix;
    log.log({
      config: r.config,
      up_bits: r.up_bits,
      sparsity: r.sparsity,
      resident_bytes: r.up,
      resident_code_bytes: r.upCodes,
      streamed_bytes_per_token: r.streamed,
      expert_bytes: r.up + r.streamed,
      cr_with_meta: full / (r.up + r.streamed),
      cr_no_meta: full / (r.upCodes + r.streamed),
      formula_cr: floeFormulaRatio(r.up_bits, r.sparsity),
      formula_cr_meta: floeFormulaRatio(r.up_bits === 16 ? 16 : r.up_bits + 32 / groupSize, r.sparsity),
      ledger_resident_bytes: ledger,
      memory_reduction: denseResident / ledger,
    });
  }
  return log;
}
