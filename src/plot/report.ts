/**
 * Standalone HTML reports: headings, text, tables (MetricLog or Arrow) and Plotly figures in one
 * file with the Plotly library inlined, written atomically; it opens in any browser, offline.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lineChart } from "./figure.ts";
 * import { writeReport } from "./report.ts";
 * const dir = await Deno.makeTempDir();
 * const path = await writeReport(`${dir}/report.html`, "A run", [
 *   { heading: "Loss", figure: lineChart([{ step: 0, loss: 2 }, { step: 1, loss: 1 }], { x: "step", y: "loss" }) },
 *   { text: "Two steps." },
 * ]);
 * const html = await Deno.readTextFile(path);
 * assert.match(html, /<h2>Loss<\/h2>/);
 * assert.ok(html.includes("Plotly.newPlot"));
 * ```
 * @module
 */
import { mkdir } from "../host/runtime.ts";
import { dirname } from "node:path";
import type * as arrow from "apache-arrow";
import { writeFileAtomic } from "../io/atomic.ts";
import { tableToHtml } from "../metrics/format.ts";
import { figureHtml } from "./display.ts";
import type { Figure } from "./figure.ts";
import { plotlyScript } from "./plotly_asset.ts";

/** One block of a report; each field is optional, shown as heading, text, figure, table. */
export interface ReportBlock {
  heading?: string;
  text?: string;
  table?: arrow.Table | { table(): arrow.Table };
  figure?: Figure;
}

const escape = (s: string) =>
  s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]!);

/**
 * `t` without its `run_id` column when every row has the same id (a MetricLog's table), and that
 * id; `t` itself otherwise.
 */
function splitRunId(t: arrow.Table): { table: arrow.Table; runId?: string } {
  const col = t.getChild("run_id");
  if (!col || t.numRows === 0) return { table: t };
  const first = col.get(0);
  for (let i = 1; i < t.numRows; i++) if (col.get(i) !== first) return { table: t };
  return { table: t.select(t.schema.names.filter((n) => n !== "run_id")), runId: String(first) };
}

/**
 * The report as one HTML document. A table whose rows share one `run_id` shows it once instead of
 * on every row: under the title when all such tables share it, else above the table.
 */
export async function reportHtml(title: string, blocks: readonly ReportBlock[]): Promise<string> {
  const hasFigure = blocks.some((b) => b.figure);
  const tables = blocks.map((b) =>
    b.table === undefined ? undefined : splitRunId(
      "table" in b.table && typeof b.table.table === "function" ? b.table.table() : b.table as arrow.Table,
    )
  );
  const runIds = new Set(tables.flatMap((t) => t?.runId === undefined ? [] : [t.runId]));
  const body = blocks.map((b, i) => {
    const parts: string[] = [];
    if (b.heading) parts.push(`<h2>${escape(b.heading)}</h2>`);
    if (b.text) parts.push(`<p>${escape(b.text)}</p>`);
    if (b.figure) parts.push(figureHtml(b.figure, `figure-${i}`));
    const t = tables[i];
    if (t) {
      if (t.runId !== undefined && runIds.size > 1) {
        parts.push(`<p><small>run_id ${escape(t.runId)}</small></p>`);
      }
      parts.push(tableToHtml(t.table, { maxRows: 200 }));
    }
    return `<section>\n${parts.join("\n")}\n</section>`;
  });
  const run = runIds.size === 1 ? `\n<p><small>run_id ${escape([...runIds][0])}</small></p>` : "";
  return [
    "<!doctype html>",
    `<html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>`,
    "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}" +
    "table{border-collapse:collapse;font-size:13px}td,th{padding:2px 8px;border-bottom:1px solid #ddd}</style>",
    hasFigure ? `<script>${await plotlyScript()}</script>` : "",
    `</head><body>\n<h1>${escape(title)}</h1>${run}`,
    ...body,
    `<footer><small>Written by Ferry on ${new Date().toISOString()}</small></footer>`,
    "</body></html>",
    "",
  ].join("\n");
}

/**
 * Writes the report to `path` (temporary name, then rename; its folder is created if missing, like
 * a run folder) and returns `path`.
 */
export async function writeReport(
  path: string,
  title: string,
  blocks: readonly ReportBlock[],
): Promise<string> {
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, await reportHtml(title, blocks));
  return path;
}
