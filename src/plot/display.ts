/**
 * Showing a {@link Figure} in Deno's Jupyter kernel: as a cell's last expression, `showFigure(fig)`
 * renders through Plotly's own mime type (`application/vnd.plotly.v1+json`, drawn natively by
 * JupyterLab with Plotly support, VS Code and nteract) with an HTML fallback that carries the
 * library inline once per kernel (offline, like plotly.py's default), and a one-line text summary.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { lineChart } from "./figure.ts";
 * import { showFigure } from "./display.ts";
 * const view = await showFigure(lineChart([{ step: 0, loss: 2 }, { step: 1, loss: 1 }], { x: "step", y: "loss" }));
 * const bundle = view[Symbol.for("Jupyter.display")]();
 * assert.equal(bundle["application/vnd.plotly.v1+json"].data[0].y.join(), "2,1");
 * assert.match(bundle["text/plain"], /1 trace/);
 * ```
 * @module
 */
import type { Figure } from "./figure.ts";
import { readEnv } from "../host/env.ts";
import { plotlyScript } from "./plotly_asset.ts";

/** What Deno's kernel renders for a figure. */
export interface FigureBundle {
  "application/vnd.plotly.v1+json": Figure;
  "text/html": string;
  "text/plain": string;
}

/** A displayable figure: a cell's last expression, or `Deno.jupyter.display(view)`. */
export interface FigureDisplay {
  readonly figure: Figure;
  [key: symbol]: () => FigureBundle;
  toString(): string;
}

let libraryShown = false;

/** One line saying what the figure holds. */
export function describeFigure(fig: Figure): string {
  const title = (fig.layout.title as { text?: string } | undefined)?.text;
  const points = fig.data.reduce((n, t) => n + t.y.length, 0);
  const names = fig.data.map((t) => t.name).join(", ");
  return `${title ? `${title}: ` : ""}${fig.data.length} trace${fig.data.length === 1 ? "" : "s"} ` +
    `(${names}), ${points} points`;
}

/** The `<div>` + script drawing `fig` with an already-loaded Plotly. */
export function figureHtml(fig: Figure, id = `ferry-plot-${crypto.randomUUID().slice(0, 8)}`): string {
  const spec = JSON.stringify(fig).replaceAll("</", "<\\/");
  return `<div id="${id}" style="width:100%;min-height:${Number(fig.layout.height ?? 360)}px"></div>\n` +
    `<script>(function(){var f=${spec};Plotly.newPlot("${id}",f.data,f.layout,{responsive:true});})();</script>`;
}

/** Where committed notebooks load Plotly from: the pinned package's file on a public npm CDN. */
export const PLOTLY_CDN = "https://cdn.jsdelivr.net/npm/plotly.js-dist-min@4.1.2/plotly.min.js";

/**
 * Wraps `fig` for display. The first call of a kernel session also inlines Plotly (about 5 MB)
 * in the HTML rendering; later ones reuse it (`embedLibrary` forces either). With
 * `FERRY_PLOTLY_CDN=1` in the kernel's environment (set by `deno task notebooks`, whose outputs are
 * committed) the HTML loads Plotly from {@link PLOTLY_CDN} instead of carrying it.
 */
export async function showFigure(
  fig: Figure,
  options: { embedLibrary?: boolean } = {},
): Promise<FigureDisplay> {
  const embed = options.embedLibrary ?? !libraryShown;
  libraryShown ||= embed;
  const library = !embed
    ? ""
    : readEnv("FERRY_PLOTLY_CDN") === "1"
    ? `<script src="${PLOTLY_CDN}"></script>\n`
    : `<script>if(!window.Plotly){${await plotlyScript()}}</script>\n`;
  const html = library + figureHtml(fig);
  const text = describeFigure(fig);
  return {
    figure: fig,
    [Symbol.for("Jupyter.display")]: () => ({
      "application/vnd.plotly.v1+json": fig,
      "text/html": html,
      "text/plain": text,
    }),
    toString: () => text,
  };
}
