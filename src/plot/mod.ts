/**
 * Plots: Plotly figure specs from metric tables, shown in Jupyter or written into standalone HTML
 * reports. Plotly is browser-only: Ferry builds the JSON and inlines the library's text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { barChart } from "./mod.ts";
 * const fig = barChart([{ bits: 2, method: "rtn", err: 0.43 }, { bits: 2, method: "hqq", err: 0.41 }], {
 *   x: "bits",
 *   y: "err",
 *   groupBy: "method",
 * });
 * assert.equal(fig.data.length, 2);
 * ```
 * @module
 */
export * from "./figure.ts";
export * from "./display.ts";
export * from "./report.ts";
