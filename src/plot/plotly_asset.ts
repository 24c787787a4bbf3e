/**
 * The Plotly library as text, read from the pinned npm package (`plotly.js-dist-min`) to inline in
 * HTML: reports and notebooks work offline. Plotly runs in the browser only; Ferry never executes it.
 * @module
 */
import { readTextFile } from "../host/runtime.ts";
import { fileURLToPath } from "node:url";

let cached: string | undefined;

/** `plotly.min.js` of the pinned package (about 3.5 MB), read once. */
export async function plotlyScript(): Promise<string> {
  if (cached !== undefined) return cached;
  const hint = 'add "plotly.js-dist-min": "npm:plotly.js-dist-min@4.1.2" to deno.json "imports" with ' +
    '"nodeModulesDir": "auto"';
  let url: URL;
  try {
    url = new URL(import.meta.resolve("plotly.js-dist-min"));
  } catch (err) {
    throw new Error(`Cannot find the plotly.js-dist-min package: ${(err as Error).message}; ${hint}`);
  }
  if (url.protocol !== "file:") {
    throw new Error(`Cannot find plotly.js-dist-min on disk: it resolved to ${url.href}; ${hint}`);
  }
  cached = await readTextFile(fileURLToPath(new URL("plotly.min.js", url)));
  return cached;
}
