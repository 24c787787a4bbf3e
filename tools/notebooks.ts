/**
 * Executes the notebooks in `notebooks/` headless, in order, with the Deno Jupyter kernel, and writes
 * each back with its outputs (tables, plots), so a reader on a code host sees the results without
 * running anything. A failing cell stops the run with the notebook's name and the error.
 *
 * Run: `deno task notebooks [NAME.ipynb …]` (default: every notebook). Needs Jupyter and the Deno
 * kernelspec (`deno jupyter --install`).
 * @module
 */
import { writeFileAtomic } from "../src/io/atomic.ts";

const names = Deno.args.length > 0
  ? Deno.args.map((a) => a.replace(/^notebooks\//, ""))
  : [...Deno.readDirSync("notebooks")].map((e) => e.name).filter((n) => n.endsWith(".ipynb")).sort();

for (const name of names) {
  const started = performance.now();
  const out = await Deno.makeTempDir({ prefix: "ferry-notebook-" });
  try {
    const r = await new Deno.Command("jupyter", {
      args: [
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        "--ExecutePreprocessor.timeout=900",
        `notebooks/${name}`,
        "--output-dir",
        out,
      ],
      // Committed outputs load Plotly from a CDN instead of carrying 5 MB of it (src/plot/display.ts).
      env: { FERRY_PLOTLY_CDN: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output().catch((err) => {
      throw new Error(`Cannot run jupyter (${err.message}): install Jupyter and run deno jupyter --install`);
    });
    if (!r.success) {
      throw new Error(`${name} failed:\n${new TextDecoder().decode(r.stderr).slice(-3000)}`);
    }
    // Written back atomically, with a trailing newline as the committed files have.
    const text = await Deno.readTextFile(`${out}/${name}`);
    await writeFileAtomic(`notebooks/${name}`, text.endsWith("\n") ? text : text + "\n");
    console.log(`${name}: executed in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
}
