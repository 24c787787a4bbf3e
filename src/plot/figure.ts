/**
 * Plotly figure specs from metric tables: a line chart (loss curves, throughput over steps) and a
 * grouped bar chart (a sweep's error per method and bit width). A figure is plain JSON
 * (`{ data, layout }`, Plotly's own schema), so it renders in Jupyter, in an HTML report
 * (`report.ts`) or in any Plotly front end; Plotly itself is never imported at run time.
 *
 * Rows come from a {@link MetricLog}, an Arrow table or plain objects; nulls are skipped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lineChart } from "./figure.ts";
 * const rows = [
 *   { step: 0, split: "train", loss: 5 }, { step: 1, split: "train", loss: 4 },
 *   { step: 1, split: "eval", loss: 4.5 },
 * ];
 * const fig = lineChart(rows, { x: "step", y: "loss", groupBy: "split", title: "Loss" });
 * assert.deepEqual(fig.data.map((t) => t.name), ["train", "eval"]);
 * assert.deepEqual(fig.data[0].y, [5, 4]);
 * ```
 * @module
 */
import type * as arrow from "apache-arrow";

/** One Plotly trace (the fields Ferry sets; Plotly accepts many more). */
export interface Trace {
  type: "scatter" | "bar";
  mode?: "lines" | "markers" | "lines+markers";
  name: string;
  x: (number | string)[];
  y: number[];
}

/** A Plotly figure: traces plus layout, as JSON. */
export interface Figure {
  data: Trace[];
  layout: Record<string, unknown>;
}

/** Anything with rows: a MetricLog (`toJSON()`), an Arrow table, or an array of objects. */
export type Rows =
  | readonly Record<string, unknown>[]
  | arrow.Table
  | { toJSON(): Record<string, unknown>[] };

/** Common chart options. */
export interface ChartOptions {
  /** Column on the x axis. */
  x: string;
  /** Column(s) on the y axis: one trace per column (times each group). */
  y: string | string[];
  /** Column whose values split the rows into traces (e.g. `split`, `method`). */
  groupBy?: string;
  title?: string;
  xTitle?: string;
  yTitle?: string;
  /** Logarithmic y axis. */
  logY?: boolean;
}

/** Rows of `source` as plain objects. */
export function rowsOf(source: Rows): Record<string, unknown>[] {
  if (Array.isArray(source)) return source as Record<string, unknown>[];
  if ("toJSON" in source && typeof source.toJSON === "function" && !("schema" in source)) {
    return (source as { toJSON(): Record<string, unknown>[] }).toJSON();
  }
  return (source as arrow.Table).toArray().map((r) => r.toJSON() as Record<string, unknown>);
}

/** Lines of `y` over `x`, one per y column and group, in first-seen order. */
export function lineChart(source: Rows, options: ChartOptions): Figure {
  return chart(source, options, (name, x, y) => ({ type: "scatter", mode: "lines+markers", name, x, y }));
}

/** Bars of `y` per `x` category, one series per y column and group (grouped bars). */
export function barChart(source: Rows, options: ChartOptions): Figure {
  const fig = chart(source, options, (name, x, y) => ({ type: "bar", name, x: x.map(String), y }));
  fig.layout.barmode = "group";
  return fig;
}

function chart(
  source: Rows,
  options: ChartOptions,
  trace: (name: string, x: (number | string)[], y: number[]) => Trace,
): Figure {
  const rows = rowsOf(source);
  const ys = typeof options.y === "string" ? [options.y] : options.y;
  const columns = new Set(rows.flatMap((r) => Object.keys(r)));
  for (const c of [options.x, ...ys, ...(options.groupBy ? [options.groupBy] : [])]) {
    if (rows.length > 0 && !columns.has(c)) {
      throw new RangeError(`Cannot chart column "${c}": the rows have ${[...columns].join(", ")}`);
    }
  }
  const series = new Map<string, { x: (number | string)[]; y: number[] }>();
  for (const r of rows) {
    const group = options.groupBy ? String(r[options.groupBy]) : "";
    for (const col of ys) {
      const xv = r[options.x];
      const yv = r[col];
      if (xv === null || xv === undefined || yv === null || yv === undefined) continue;
      const name = [group, ys.length > 1 || !group ? col : ""].filter(Boolean).join(" ");
      const s = series.get(name) ?? { x: [], y: [] };
      s.x.push(typeof xv === "bigint" ? Number(xv) : xv as number | string);
      s.y.push(Number(yv));
      series.set(name, s);
    }
  }
  return {
    data: [...series].map(([name, s]) => trace(name, s.x, s.y)),
    layout: {
      ...(options.title ? { title: { text: options.title } } : {}),
      xaxis: { title: { text: options.xTitle ?? options.x } },
      yaxis: { title: { text: options.yTitle ?? ys.join(", ") }, ...(options.logY ? { type: "log" } : {}) },
      margin: { t: options.title ? 48 : 24, r: 16 },
      height: 360,
    },
  };
}
