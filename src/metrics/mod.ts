/**
 * Metrics: log rows into a {@linkcode MetricLog}, get an Apache Arrow table with stable
 * flat column names (`run_id`, `step`, `split`, `loss`, …), save it to a run folder
 * (`runs/<run-id>/metrics.arrow` + `config.json`), and show it in a terminal or a
 * Jupyter notebook.
 *
 * @example A tour
 * ```ts
 * import assert from "node:assert/strict";
 * import { displayTable, MetricLog } from "./mod.ts";
 *
 * const log = new MetricLog({ columns: { step: "int32" }, config: { lr: 1e-3 } });
 * log.log({ step: 0, split: "train", loss: 2.75 });
 * log.log({ step: 0, split: "val", loss: 2.5 });
 * assert.match(log.format(), /val\s+2\.5/);
 *
 * const dir = await Deno.makeTempDir();
 * const runDir = await log.save(dir);
 * const { table, config } = await MetricLog.load(runDir);
 * assert.deepEqual(config, { lr: 1e-3 });
 * displayTable(table); // renders as HTML when it ends a notebook cell
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
export { COLUMN_TYPES, type ColumnType, type MetricValue } from "./column_type.ts";
export {
  type Displayable,
  displayTable,
  type FormatOptions,
  formatTable,
  JUPYTER_DISPLAY,
  type MimeBundle,
  type TableDisplay,
  tableSize,
  tableToHtml,
} from "./format.ts";
export { MetricLog, type MetricLogOptions, type MetricRow } from "./metric_log.ts";
export {
  CONFIG_FILE,
  type LoadedRun,
  loadRun,
  METRICS_FILE,
  newRunId,
  saveRun,
  saveRunConfig,
  validateRunId,
} from "./run_dir.ts";
export {
  type JupyterDisplayFn,
  ProgressBar,
  type ProgressBarOptions,
  type ProgressFields,
  type ProgressMode,
} from "./progress.ts";
export {
  type BootstrapOptions,
  bootstrapPerplexity,
  type DocumentScore,
  type Interval,
  pairedBootstrap,
  type PerplexityInterval,
} from "./bootstrap.ts";
