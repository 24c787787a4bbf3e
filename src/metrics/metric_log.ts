/**
 * {@linkcode MetricLog}: the one place an experiment's metrics go. Rows of flat,
 * stable column names become an Apache Arrow table, saved to a run folder.
 *
 * @module
 */
import * as arrow from "apache-arrow";
import {
  arrowType,
  coerceValue,
  COLUMN_TYPES,
  type ColumnType,
  describeValue,
  inferColumnType,
  isColumnType,
  type MetricValue,
} from "./column_type.ts";
import {
  type Displayable,
  displayTable,
  type FormatOptions,
  formatTable,
  JUPYTER_DISPLAY,
  type MimeBundle,
  tableToHtml,
} from "./format.ts";
import { type LoadedRun, loadRun, newRunId, saveRun, saveRunConfig, validateRunId } from "./run_dir.ts";

/** One logged row: column name to value; `null` (or leaving the column out) marks a missing value. */
export type MetricRow = Readonly<Record<string, MetricValue | undefined>>;

/** Options for {@linkcode MetricLog}. */
export interface MetricLogOptions {
  /** Names the run folder; letters, digits, `-`, `_`, `.`. Default: `YYYYMMDD-HHMMSS-<4 hex>`. */
  runId?: string;
  /**
   * Column types declared up front, in table order, e.g.
   * `{ step: "int32", loss: "float64", split: "utf8" }`. Other columns are typed by
   * their first non-null value: numbers `float64`, bigints `int64`, strings `utf8`,
   * booleans `bool`.
   */
  columns?: Readonly<Record<string, ColumnType>>;
  /** The run's parsed config (JSON data); written to `config.json` by {@linkcode MetricLog.save}. */
  config?: unknown;
}

/** The column every table starts with, holding the run id. */
const RUN_ID_COLUMN = "run_id";

/**
 * Appends metric rows and turns them into an Arrow table with one column per metric,
 * plus a leading `run_id` column so that tables from several runs concatenate.
 *
 * Columns may appear at any row: earlier rows get nulls. A column's type is fixed at
 * its declaration or first non-null value; a value of another type is a `TypeError`.
 * A column that only ever held nulls is written as `float64`.
 *
 * In a Deno Jupyter notebook a `MetricLog` renders as an HTML table when it is a cell's
 * last expression.
 *
 * @example Logging a training loop and saving the run
 * ```ts
 * import assert from "node:assert/strict";
 * import { MetricLog } from "./metric_log.ts";
 *
 * const log = new MetricLog({ runId: "doc-example", columns: { step: "int32" } });
 * for (let step = 1; step <= 3; step++) log.log({ step, split: "train", loss: 3 / step });
 * log.log({ step: 3, split: "val", loss: 1.2, ppl: Math.exp(1.2) });
 * const table = log.table();
 * assert.deepEqual(table.schema.names, ["run_id", "step", "split", "loss", "ppl"]);
 * assert.equal(table.getChild("ppl")?.get(0), null);
 *
 * const dir = await Deno.makeTempDir();
 * await log.save(dir); // <dir>/doc-example/metrics.arrow
 * const run = await MetricLog.load(`${dir}/doc-example`);
 * assert.equal(run.table.numRows, 4);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class MetricLog implements Displayable {
  /** The run id: the run folder's name and every row's `run_id`. */
  readonly runId: string;
  /** Column types; `undefined` while a column has only seen nulls. */
  #types = new Map<string, ColumnType | undefined>();
  #values = new Map<string, (Exclude<MetricValue, null> | null)[]>();
  #rows = 0;
  #config: unknown;
  #table: arrow.Table | undefined;

  /**
   * @throws {RangeError} When `runId` is not a valid run id, a declared type is not one
   *   of `float64`, `float32`, `int32`, `int64`, `utf8`, `bool`, or a column is named
   *   `run_id` or `""`.
   */
  constructor(options: MetricLogOptions = {}) {
    this.runId = options.runId === undefined ? newRunId() : validateRunId(options.runId);
    for (const [name, type] of Object.entries(options.columns ?? {})) {
      checkColumnName(name, "declare");
      if (!isColumnType(type)) {
        throw new RangeError(
          `Cannot declare column "${name}": type must be one of ${COLUMN_TYPES.join(", ")}: received ${
            describeValue(type)
          }`,
        );
      }
      this.#types.set(name, type);
      this.#values.set(name, []);
    }
    this.#config = options.config;
  }

  /** Reads a saved run (a run folder or an Arrow IPC file); see {@linkcode loadRun}. */
  static load(path: string): Promise<LoadedRun> {
    return loadRun(path);
  }

  /** Number of rows logged. */
  get rows(): number {
    return this.#rows;
  }

  /** Column names and types in table order, `run_id` first. */
  get columns(): Record<string, ColumnType> {
    const out: Record<string, ColumnType> = { [RUN_ID_COLUMN]: "utf8" };
    for (const [name, type] of this.#types) out[name] = type ?? "float64";
    return out;
  }

  /** The config given to the constructor or {@linkcode MetricLog.saveConfig}. */
  get config(): unknown {
    return this.#config;
  }

  /**
   * Appends one row. The row is checked as a whole first, so a rejected row leaves the
   * log unchanged. A `run_id` key is accepted only when it equals {@linkcode runId}.
   *
   * @returns This log, for chaining.
   * @throws {TypeError} When a value's type differs from its column's, e.g.
   *   `Cannot log row 3: column "loss" expects float64, received string "nan"`.
   * @throws {RangeError} When an `int32` value is out of range or a column name is invalid.
   */
  log(row: MetricRow): this {
    if (typeof row !== "object" || row === null || Array.isArray(row)) {
      throw new TypeError(
        `Cannot log row ${this.#rows}: expected an object of metrics, received ${typeof row}`,
      );
    }
    const staged: [name: string, value: Exclude<MetricValue, null> | null, type: ColumnType | undefined][] =
      [];
    for (const [name, value] of Object.entries(row)) {
      if (value === undefined) continue;
      if (name === RUN_ID_COLUMN && value === this.runId) continue;
      checkColumnName(name, `log row ${this.#rows} to`);
      const type = this.#types.get(name);
      if (value === null) {
        staged.push([name, null, type]);
        continue;
      }
      const target = type ?? inferColumnType(value);
      if (target === undefined) {
        throw new TypeError(
          `Cannot log row ${this.#rows}: column "${name}" takes a number, string, boolean, bigint or null, received ${
            describeValue(value)
          }`,
        );
      }
      const result = coerceValue(target, value);
      if (!result.ok) {
        const message = `Cannot log row ${this.#rows}: column "${name}" ${result.error.message}`;
        throw result.error instanceof RangeError ? new RangeError(message) : new TypeError(message);
      }
      staged.push([name, result.value, target]);
    }
    for (const [name, value, type] of staged) {
      let values = this.#values.get(name);
      if (values === undefined) {
        values = new Array(this.#rows).fill(null);
        this.#values.set(name, values);
      }
      this.#types.set(name, type);
      values.push(value);
    }
    for (const values of this.#values.values()) if (values.length === this.#rows) values.push(null);
    this.#rows++;
    this.#table = undefined;
    return this;
  }

  /** The rows as an Arrow table: `run_id`, then declared columns, then others by first appearance. */
  table(): arrow.Table {
    if (this.#table !== undefined) return this.#table;
    const vectors: Record<string, arrow.Vector> = {
      [RUN_ID_COLUMN]: arrow.vectorFromArray(new Array(this.#rows).fill(this.runId), new arrow.Utf8()),
    };
    for (const [name, type] of this.#types) {
      vectors[name] = arrow.vectorFromArray(this.#values.get(name)!, arrowType(type ?? "float64"));
    }
    this.#table = new arrow.Table(vectors);
    return this.#table;
  }

  /**
   * The rows as plain objects, `run_id` included and missing values as `null`; what
   * `JSON.stringify(log)` writes. `int64` values become numbers when they are safe
   * integers and strings otherwise.
   */
  toJSON(): Record<string, number | string | boolean | null>[] {
    const out: Record<string, number | string | boolean | null>[] = [];
    for (let r = 0; r < this.#rows; r++) {
      const row: Record<string, number | string | boolean | null> = { [RUN_ID_COLUMN]: this.runId };
      for (const [name, values] of this.#values) {
        const value = values[r];
        row[name] = typeof value === "bigint"
          ? (value >= Number.MIN_SAFE_INTEGER && value <= Number.MAX_SAFE_INTEGER
            ? Number(value)
            : String(value))
          : value;
      }
      out.push(row);
    }
    return out;
  }

  /** Aligned plain text for terminals; see {@linkcode formatTable}. */
  format(options?: FormatOptions): string {
    return formatTable(this.table(), options);
  }

  /** An HTML table; see {@linkcode tableToHtml}. */
  toHtml(options?: FormatOptions): string {
    return tableToHtml(this.table(), options);
  }

  /** The Jupyter mime bundle (HTML and text) Deno's kernel shows for this log. */
  [JUPYTER_DISPLAY](): MimeBundle {
    const bundle = displayTable(this.table())[JUPYTER_DISPLAY]();
    return {
      "text/html": bundle["text/html"],
      "text/plain": `MetricLog ${this.runId}\n${bundle["text/plain"]}`,
    };
  }

  /** What `console.log(log)` prints in Deno. */
  [Symbol.for("Deno.customInspect")](): string {
    return `MetricLog ${this.runId}\n${this.format({ maxRows: 10 })}`;
  }

  /**
   * Writes `<dir>/<runId>/metrics.arrow` (Arrow IPC file) and, when the log has a
   * config, `<dir>/<runId>/config.json`; both atomically (temporary name, then rename).
   *
   * @param dir The folder holding run folders; created if missing.
   * @returns The run folder's path.
   * @throws {TypeError} When the config is not JSON-serialisable.
   */
  save(dir: string = "runs"): Promise<string> {
    return saveRun(dir, this.runId, this.table(), this.#config);
  }

  /**
   * Sets the run's config and writes `<dir>/<runId>/config.json` now, atomically; later
   * {@linkcode MetricLog.save} calls write it again beside the metrics.
   *
   * @returns The run folder's path.
   * @throws {TypeError} When `config` is not JSON-serialisable.
   */
  async saveConfig(config: unknown, dir: string = "runs"): Promise<string> {
    const runDir = await saveRunConfig(dir, this.runId, config);
    this.#config = config;
    return runDir;
  }
}

function checkColumnName(name: string, action: string): void {
  if (name === "") throw new RangeError(`Cannot ${action} column: a column name must not be empty`);
  if (name === RUN_ID_COLUMN) {
    throw new RangeError(
      `Cannot ${action} column "run_id": it is reserved for the run id; pass new MetricLog({ runId }) instead`,
    );
  }
}
