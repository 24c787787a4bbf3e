/**
 * Rendering Arrow tables for people: aligned plain text for terminals, an HTML table
 * for notebooks, and the Jupyter mime bundle that makes Deno's kernel show the HTML
 * when a table is a cell's last expression.
 *
 * @example Showing a table in a notebook cell
 * ```ts
 * import assert from "node:assert/strict";
 * import { tableFromArrays } from "apache-arrow";
 * import { displayTable, JUPYTER_DISPLAY } from "./format.ts";
 *
 * const table = tableFromArrays({ step: new Float64Array([1, 2]), loss: new Float64Array([2.5, 2.25]) });
 * const view = displayTable(table, { maxRows: 10 }); // the cell's last line renders it
 * assert.match(view[JUPYTER_DISPLAY]()["text/html"], /<td[^>]*>2.25<\/td>/);
 * ```
 * @module
 */
import * as arrow from "apache-arrow";

/**
 * The key Deno's Jupyter kernel looks up to render an object (`Deno.jupyter.$display`
 * inside the kernel). Registered with `Symbol.for`, so it works outside it as well.
 */
export const JUPYTER_DISPLAY: unique symbol = Symbol.for("Jupyter.display") as typeof JUPYTER_DISPLAY;

/** A Jupyter mime bundle: one rendering per mime type; the front end picks the richest. */
export interface MimeBundle {
  "text/html": string;
  "text/plain": string;
}

/** An object that Deno's Jupyter kernel renders when it is a cell's last expression. */
export interface Displayable {
  /** The renderings the kernel shows. */
  [JUPYTER_DISPLAY](): MimeBundle;
}

/** What {@linkcode displayTable} returns: both renderings, shown by the Jupyter kernel. */
export interface TableDisplay extends Displayable {
  /** The HTML rendering ({@linkcode tableToHtml}). */
  readonly html: string;
  /** The plain-text rendering ({@linkcode formatTable}). */
  readonly text: string;
  /** The plain-text rendering, so that template strings and `console.log` print text. */
  toString(): string;
}

/** Options for {@linkcode formatTable}, {@linkcode tableToHtml} and {@linkcode displayTable}. */
export interface FormatOptions {
  /**
   * Most rows to show; longer tables show their first and last rows around an ellipsis
   * (the last rows of a metric log are usually the interesting ones). Default 20.
   */
  maxRows?: number;
  /** Longest cell text in characters before it is cut with `…`. Default 40. */
  maxWidth?: number;
}

/** `"42 rows × 9 columns; 2 rows not shown"`: the size, and how many rows the rendering leaves out. */
export function tableSize(rows: number, columns: number, omitted = 0): string {
  const n = (k: number, what: string) => `${k} ${what}${k === 1 ? "" : "s"}`;
  const more = omitted > 0 ? `; ${n(omitted, "row")} not shown` : "";
  return `${n(rows, "row")} × ${n(columns, "column")}${more}`;
}

/**
 * Aligned plain text: a header, a row of column types, the rows (numbers right-aligned),
 * then a `[rows × columns]` footer.
 *
 * @throws {RangeError} When `maxRows` or `maxWidth` is not a non-negative integer.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tableFromArrays } from "apache-arrow";
 * import { formatTable } from "./format.ts";
 *
 * const text = formatTable(tableFromArrays({ split: ["train", "val"], loss: new Float64Array([2.5, 3]) }));
 * assert.match(text, /^train +2\.5$/m);
 * assert.match(text, /^\[2 rows × 2 columns\]$/m);
 * ```
 */
export function formatTable(table: arrow.Table, options: FormatOptions = {}): string {
  const { columns, rows, omitted } = cells(table, options);
  if (columns.length === 0) return `[${tableSize(table.numRows, 0)}]`;
  const widths = columns.map((col, c) =>
    Math.max(col.name.length, col.type.length, ...rows.map((row) => row?.[c].length ?? 1))
  );
  const line = (texts: string[]) =>
    texts.map((text, c) => columns[c].numeric ? text.padStart(widths[c]) : text.padEnd(widths[c]))
      .join("  ").trimEnd();
  const out = [line(columns.map((col) => col.name)), line(columns.map((col) => col.type))];
  for (const row of rows) out.push(row === undefined ? line(columns.map(() => "…")) : line(row));
  out.push(`[${tableSize(table.numRows, columns.length, omitted)}]`);
  return out.join("\n");
}

/**
 * An HTML `<table>` with a header (column types as tooltips), escaped cells and a
 * row/column count.
 *
 * @throws {RangeError} When `maxRows` or `maxWidth` is not a non-negative integer.
 */
export function tableToHtml(table: arrow.Table, options: FormatOptions = {}): string {
  const { columns, rows, omitted } = cells(table, options);
  const style = (c: number, extra = "") => {
    const css = (columns[c].numeric ? "text-align:right;" : "") + extra;
    return css === "" ? "" : ` style="${css}"`;
  };
  const head = columns.map((col, c) =>
    `<th title="${escapeHtml(col.type)}"${style(c)}>${escapeHtml(col.name)}</th>`
  );
  const body = rows.map((row, shown) => {
    if (row === undefined) return `<tr><td colspan="${columns.length}" style="text-align:center">…</td></tr>`;
    const tds = row.map((text, c) =>
      columns[c].nulls[shown]
        ? `<td${style(c, "opacity:0.5;")}><i>null</i></td>`
        : `<td${style(c)}>${escapeHtml(text)}</td>`
    );
    return `<tr>${tds.join("")}</tr>`;
  });
  return [
    `<div class="ferry-table">`,
    `<table>`,
    `<thead><tr>${head.join("")}</tr></thead>`,
    `<tbody>`,
    ...body,
    `</tbody>`,
    `</table>`,
    `<p><small>${tableSize(table.numRows, columns.length, omitted)}</small></p>`,
    `</div>`,
  ].join("\n");
}

/**
 * Wraps `table` so that a notebook renders it as HTML (and a terminal as text); use it
 * as a cell's last expression.
 *
 * @returns The HTML and text renderings, with the Jupyter display method.
 * @throws {RangeError} When `maxRows` or `maxWidth` is not a non-negative integer.
 */
export function displayTable(
  table: arrow.Table,
  options: FormatOptions = {},
): TableDisplay {
  const html = tableToHtml(table, options);
  const text = formatTable(table, options);
  return {
    html,
    text,
    [JUPYTER_DISPLAY]: () => ({ "text/html": html, "text/plain": text }),
    toString: () => text,
  };
}

const NULL_TEXT = "null";

interface ColumnInfo {
  name: string;
  type: string;
  numeric: boolean;
  /** Per shown row: whether the cell is null (HTML styles nulls apart from the string "null"). */
  nulls: boolean[];
}

/** Cell texts of the rows to show; `undefined` marks the ellipsis row. */
function cells(
  table: arrow.Table,
  options: FormatOptions,
): { columns: ColumnInfo[]; rows: (string[] | undefined)[]; omitted: number } {
  const maxRows = checkCount("maxRows", options.maxRows ?? 20);
  const maxWidth = checkCount("maxWidth", options.maxWidth ?? 40);
  const n = table.numRows;
  const indices: (number | undefined)[] = [];
  if (n <= maxRows) {
    for (let r = 0; r < n; r++) indices.push(r);
  } else {
    const head = Math.ceil(maxRows / 2);
    for (let r = 0; r < head; r++) indices.push(r);
    indices.push(undefined);
    for (let r = n - (maxRows - head); r < n; r++) indices.push(r);
  }
  const columns: ColumnInfo[] = table.schema.fields.map((field) => ({
    name: field.name,
    type: typeName(field.type),
    numeric: arrow.DataType.isFloat(field.type) || arrow.DataType.isInt(field.type) ||
      arrow.DataType.isDecimal(field.type),
    nulls: [],
  }));
  const vectors = columns.map((_, c) => table.getChildAt(c)!);
  const rows = indices.map((r, shown) =>
    r === undefined ? undefined : vectors.map((vector, c) => {
      const value = vector.get(r);
      columns[c].nulls[shown] = value === null || value === undefined;
      const text = formatValue(value);
      return text.length > maxWidth ? `${text.slice(0, Math.max(0, maxWidth - 1))}…` : text;
    })
  );
  return { columns, rows, omitted: Math.max(0, n - maxRows) };
}

/** A cell's text: floats to 6 significant digits, integers and strings as they are. */
function formatValue(value: unknown): string {
  if (value === null || value === undefined) return NULL_TEXT;
  if (typeof value === "number") {
    if (Number.isInteger(value) || !Number.isFinite(value)) return String(value);
    return String(Number(value.toPrecision(6)));
  }
  if (typeof value === "string") return value.replace(/[\n\r\t]/g, " ");
  return String(value);
}

/** `float64`, `utf8`, `dict<utf8>`: Arrow's type names, lower-cased and short. */
function typeName(type: arrow.DataType): string {
  if (arrow.DataType.isDictionary(type)) return `dict<${typeName(type.dictionary)}>`;
  return String(type).toLowerCase();
}

function checkCount(name: string, value: number): number {
  if (!(value === Infinity || (Number.isInteger(value) && value >= 0))) {
    throw new RangeError(`Cannot format table: ${name} must be a non-negative integer: received ${value}`);
  }
  return value;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
