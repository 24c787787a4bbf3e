import assert from "node:assert/strict";
import * as arrow from "apache-arrow";
import { MetricLog } from "../../src/metrics/metric_log.ts";
import {
  barChart,
  describeFigure,
  lineChart,
  reportHtml,
  showFigure,
  writeReport,
} from "../../src/plot/mod.ts";

const log = new MetricLog({ runId: "plot-test" });
for (let step = 0; step < 5; step++) {
  log.log({ step, split: "train", loss: 5 - step, lr: 1e-3 });
  if (step % 2 === 0) log.log({ step, split: "eval", loss: 5.5 - step });
}

Deno.test("lineChart: one trace per group and y column, from a MetricLog or an Arrow table, nulls skipped", () => {
  for (const source of [log, log.table()]) {
    const fig = lineChart(source, { x: "step", y: "loss", groupBy: "split", title: "Loss", logY: true });
    assert.deepEqual(fig.data.map((t) => [t.name, t.x, t.y]), [
      ["train", [0, 1, 2, 3, 4], [5, 4, 3, 2, 1]],
      ["eval", [0, 2, 4], [5.5, 3.5, 1.5]],
    ]);
    assert.deepEqual(fig.layout.yaxis, { title: { text: "loss" }, type: "log" });
  }
  // Two y columns without groups: one trace per column; lr is null on eval rows and is skipped.
  const both = lineChart(log, { x: "step", y: ["loss", "lr"] });
  assert.deepEqual(both.data.map((t) => [t.name, t.y.length]), [["loss", 8], ["lr", 5]]);
});

Deno.test("barChart groups bars by a column; unknown columns are a clear error", () => {
  const rows = [
    { bits: 2, method: "rtn", rel_error: 0.43 },
    { bits: 2, method: "hqq", rel_error: 0.41 },
    { bits: 4, method: "rtn", rel_error: 0.09 },
    { bits: 4, method: "hqq", rel_error: 0.08 },
  ];
  const fig = barChart(rows, { x: "bits", y: "rel_error", groupBy: "method" });
  assert.equal(fig.layout.barmode, "group");
  assert.deepEqual(fig.data.map((t) => [t.type, t.name, t.x, t.y]), [
    ["bar", "rtn", ["2", "4"], [0.43, 0.09]],
    ["bar", "hqq", ["2", "4"], [0.41, 0.08]],
  ]);
  assert.throws(
    () => barChart(rows, { x: "bits", y: "error" }),
    /Cannot chart column "error": the rows have bits/,
  );
});

Deno.test("showFigure renders Plotly JSON, HTML with the library once, and a text summary", async () => {
  const fig = lineChart(log, { x: "step", y: "loss", groupBy: "split", title: "Loss" });
  const first = (await showFigure(fig, { embedLibrary: true }))[Symbol.for("Jupyter.display")]();
  const second = (await showFigure(fig))[Symbol.for("Jupyter.display")]();
  assert.equal(first["application/vnd.plotly.v1+json"], fig);
  assert.ok(first["text/html"].length > 1_000_000, "the first display inlines Plotly");
  assert.ok(second["text/html"].length < 10_000, "later displays reuse it");
  assert.match(second["text/html"], /Plotly\.newPlot\("ferry-plot-[0-9a-f]{8}"/);
  assert.equal(first["text/plain"], describeFigure(fig));
  assert.equal(describeFigure(fig), "Loss: 2 traces (train, eval), 8 points");
});

Deno.test("writeReport writes one offline HTML file atomically with tables, figures and escaped text", async () => {
  const dir = await Deno.makeTempDir();
  const path = await writeReport(`${dir}/report.html`, "Run <1>", [
    { heading: "Curve", figure: lineChart(log, { x: "step", y: "loss", groupBy: "split" }) },
    { heading: "Table", table: log, text: "a < b & c" },
  ]);
  const html = await Deno.readTextFile(path);
  assert.match(html, /<title>Run &lt;1&gt;<\/title>/);
  assert.match(html, /<p>a &lt; b &amp; c<\/p>/);
  assert.match(html, /<td[^>]*>eval<\/td>/);
  assert.ok(html.includes('Plotly.newPlot("figure-0"'));
  assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["report.html"]); // no temporary left
  const plain = await reportHtml("No figures", [{ text: "x" }]);
  assert.ok(plain.length < 5000, "no library without figures");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("writeReport creates the report's folder when it is missing", async () => {
  const dir = await Deno.makeTempDir();
  const path = await writeReport(`${dir}/runs/new/report.html`, "Nested", [{ text: "x" }]);
  assert.match(await Deno.readTextFile(path), /<h1>Nested<\/h1>/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("reportHtml shows a run's id once, not on every row", async () => {
  const a = new MetricLog({ runId: "run-a" }).log({ step: 0, loss: 2 }).log({ step: 1, loss: 1 });
  const b = new MetricLog({ runId: "run-a" }).log({ kind: "quantize", bits: 2 });
  const one = await reportHtml("One run", [{ table: a }, { table: b }]);
  assert.equal(one.match(/run-a/g)?.length, 1);
  assert.match(one, /<h1>One run<\/h1>\n<p><small>run_id run-a<\/small><\/p>/);
  assert.doesNotMatch(one, />run_id</); // no column header

  const c = new MetricLog({ runId: "run-c" }).log({ step: 0, loss: 3 });
  const two = await reportHtml("Two runs", [{ table: a }, { table: c }]);
  assert.equal(two.match(/run-a/g)?.length, 1);
  assert.equal(two.match(/run-c/g)?.length, 1);
  assert.ok(two.indexOf("run_id run-a") < two.indexOf("run_id run-c"), "each id above its table");

  const mixed = arrow.tableFromArrays({ run_id: ["x", "y"], loss: new Float64Array([1, 2]) });
  const kept = await reportHtml("Mixed", [{ table: mixed }]);
  assert.match(kept, />run_id</); // rows of several runs keep the column
  assert.match(kept, /<td>x<\/td>/);
});

Deno.test("showFigure: FERRY_PLOTLY_CDN=1 loads Plotly from the CDN instead of inlining it", async () => {
  const { showFigure, PLOTLY_CDN } = await import("../../src/plot/display.ts");
  const { lineChart } = await import("../../src/plot/figure.ts");
  const fig = lineChart([{ step: 0, loss: 2 }, { step: 1, loss: 1 }], { x: "step", y: "loss" });
  Deno.env.set("FERRY_PLOTLY_CDN", "1");
  try {
    const html =
      (await showFigure(fig, { embedLibrary: true }))[Symbol.for("Jupyter.display")]()["text/html"];
    assert.ok(html.startsWith(`<script src="${PLOTLY_CDN}"></script>`));
    assert.ok(html.length < 10_000, `${html.length} bytes`);
  } finally {
    Deno.env.delete("FERRY_PLOTLY_CDN");
  }
  const inline =
    (await showFigure(fig, { embedLibrary: true }))[Symbol.for("Jupyter.display")]()["text/html"];
  assert.ok(inline.length > 1_000_000, "the offline default inlines the library");
});
