/**
 * LoRAM's training curves ([LoRAM](https://arxiv.org/abs/2502.13533) Fig. 3; ALGORITHMS.md D.2.3):
 * the in-domain eval perplexity the Trainer logged every `evalEvery` steps, per run, as rows and as
 * one Plotly figure (a line per run).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MetricLog } from "../metrics/metric_log.ts";
 * import { trainingCurveRows, trainingCurvesFigure } from "./curves.ts";
 * const dir = await Deno.makeTempDir();
 * const log = new MetricLog({ runId: "lora" });
 * log.log({ step: 1, split: "train", loss: 5 }).log({ step: 2, split: "eval", eval_ppl: 150 });
 * const rows = await trainingCurveRows("LoRAM-Rand", `${await log.save(dir)}/metrics.arrow`);
 * assert.deepEqual(rows, [{ run: "LoRAM-Rand", step: 2, eval_ppl: 150 }]);
 * assert.equal(trainingCurvesFigure(rows).data[0].name, "LoRAM-Rand");
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import { MetricLog } from "../metrics/metric_log.ts";
import { type Figure, lineChart } from "../plot/figure.ts";

/** One point of a training curve. */
export interface CurveRow {
  /** The run's label (`runLabel`, or "large + LoRA"). */
  run: string;
  step: number;
  /** In-domain eval perplexity at that step. */
  eval_ppl: number;
}

/**
 * The eval rows (`split = "eval"`) of a training log (`OUT/training_log.arrow`), labelled `run`.
 *
 * @throws {Error} when the file cannot be read as a MetricLog (from `MetricLog.load`)
 */
export async function trainingCurveRows(run: string, logPath: string): Promise<CurveRow[]> {
  const { table } = await MetricLog.load(logPath);
  const rows: CurveRow[] = [];
  for (const r of table.toArray()) {
    const row = r.toJSON() as Record<string, unknown>;
    if (row.split === "eval" && row.eval_ppl !== null && row.eval_ppl !== undefined) {
      rows.push({ run, step: Number(row.step), eval_ppl: Number(row.eval_ppl) });
    }
  }
  return rows;
}

/** The curves as one Plotly figure: eval perplexity over steps, a line per run. */
export function trainingCurvesFigure(
  rows: readonly CurveRow[],
  title = "in-domain eval perplexity",
): Figure {
  return lineChart(rows as unknown as Record<string, unknown>[], {
    x: "step",
    y: "eval_ppl",
    groupBy: "run",
    title,
    xTitle: "step",
    yTitle: "perplexity",
  });
}
