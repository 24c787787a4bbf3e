import { isNotFound } from "../../src/host/runtime.ts";
import assert from "node:assert/strict";
import * as arrow from "apache-arrow";
import { FormatError } from "../../src/errors.ts";
import {
  CONFIG_FILE,
  displayTable,
  formatTable,
  JUPYTER_DISPLAY,
  MetricLog,
  METRICS_FILE,
  newRunId,
  tableSize,
  tableToHtml,
  validateRunId,
} from "../../src/metrics/mod.ts";

function fieldTypes(table: arrow.Table): Record<string, string> {
  return Object.fromEntries(table.schema.fields.map((f) => [f.name, String(f.type)]));
}

function column(table: arrow.Table, name: string): unknown[] {
  const vector = table.getChild(name);
  assert.ok(vector, `missing column ${name}`);
  return Array.from({ length: vector.length }, (_, i) => vector.get(i));
}

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  assert.fail("expected a throw");
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ferry_metrics_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("MetricLog.table() types declared columns and infers the rest", () => {
  const log = new MetricLog({ runId: "typed", columns: { step: "int32", loss: "float64", split: "utf8" } });
  log.log({ step: 1, split: "train", loss: 2.5, tokens: 4096, ok: true, bytes: 12n });
  log.log({ step: 2, split: "val", loss: 2, tokens: 8192, ok: false, bytes: 2n ** 40n });
  const table = log.table();
  assert.deepEqual(fieldTypes(table), {
    run_id: "Utf8",
    step: "Int32",
    loss: "Float64",
    split: "Utf8",
    tokens: "Float64", // integer-looking numbers stay float64 unless declared
    ok: "Bool",
    bytes: "Int64",
  });
  assert.equal(table.numRows, 2);
  assert.equal(log.rows, 2);
  assert.deepEqual(column(table, "run_id"), ["typed", "typed"]);
  assert.deepEqual(column(table, "step"), [1, 2]);
  assert.deepEqual(column(table, "split"), ["train", "val"]);
  assert.deepEqual(column(table, "ok"), [true, false]);
  assert.deepEqual(column(table, "bytes"), [12n, 2n ** 40n]);
  assert.deepEqual(log.columns, {
    run_id: "utf8",
    step: "int32",
    loss: "float64",
    split: "utf8",
    tokens: "float64",
    ok: "bool",
    bytes: "int64",
  });
});

Deno.test("MetricLog.log() fills nulls for late and missing columns", () => {
  const log = new MetricLog({ runId: "late", columns: { never: "float32" } });
  log.log({ step: 1, loss: 3 });
  log.log({ step: 2, loss: 2.5 });
  log.log({ step: 3, val_loss: 2.75, note: null, loss: undefined });
  const table = log.table();
  assert.deepEqual(table.schema.names, ["run_id", "never", "step", "loss", "val_loss", "note"]);
  assert.deepEqual(column(table, "val_loss"), [null, null, 2.75]);
  assert.deepEqual(column(table, "loss"), [3, 2.5, null]);
  assert.deepEqual(column(table, "never"), [null, null, null]);
  assert.equal(String(table.getChild("never")!.type), "Float32");
  assert.equal(String(table.getChild("note")!.type), "Float64"); // only nulls so far
  assert.equal(table.getChild("val_loss")!.nullCount, 2);
  // The untyped column takes its type from its first non-null value.
  log.log({ note: "warmup done" });
  assert.equal(String(log.table().getChild("note")!.type), "Utf8");
  assert.deepEqual(column(log.table(), "note"), [null, null, null, "warmup done"]);
});

Deno.test("MetricLog.log() names the column and both types on a clash", () => {
  const log = new MetricLog({ runId: "clash", columns: { step: "int32" } });
  log.log({ step: 0, loss: 2.5 });
  const clash = errorOf(() => log.log({ step: 1, loss: "nan" }));
  assert.ok(clash instanceof TypeError);
  assert.equal(clash.message, 'Cannot log row 1: column "loss" expects float64, received string "nan"');
  const fractional = errorOf(() => log.log({ step: 1.5 }));
  assert.ok(fractional instanceof TypeError);
  assert.equal(fractional.message, 'Cannot log row 1: column "step" expects int32, received number 1.5');
  const big = errorOf(() => log.log({ step: 2 ** 31 }));
  assert.ok(big instanceof RangeError);
  assert.match(big.message, /column "step" expects int32, received 2147483648, outside/);
  const object = errorOf(() => log.log({ extra: [1, 2] as unknown as number }));
  assert.ok(object instanceof TypeError);
  assert.match(
    object.message,
    /column "extra" takes a number, string, boolean, bigint or null, received array/,
  );
});

Deno.test("MetricLog.log() leaves the log unchanged when it rejects a row", () => {
  const log = new MetricLog({ runId: "atomic-row" });
  log.log({ loss: 1 });
  assert.throws(() => log.log({ fresh: 5, loss: true }), TypeError);
  assert.equal(log.rows, 1);
  assert.deepEqual(log.table().schema.names, ["run_id", "loss"]);
  assert.deepEqual(log.toJSON(), [{ run_id: "atomic-row", loss: 1 }]);
});

Deno.test("MetricLog rejects a reserved or empty column name and an unknown declared type", () => {
  const log = new MetricLog({ runId: "names" });
  log.log({ run_id: "names", loss: 1 }); // the log's own id is accepted
  assert.throws(() => log.log({ run_id: "other" }), /column "run_id": it is reserved/);
  assert.throws(() => log.log({ "": 1 }), RangeError);
  const bad = errorOf(() => new MetricLog({ columns: { step: "int" as "int32" } }));
  assert.ok(bad instanceof RangeError);
  assert.equal(
    bad.message,
    'Cannot declare column "step": type must be one of float64, float32, int32, int64, utf8, bool: received string "int"',
  );
});

Deno.test("MetricLog.toJSON() returns rows with run_id and nulls", () => {
  const log = new MetricLog({ runId: "json" });
  log.log({ step: 1, big: 2n ** 60n });
  log.log({ step: 2, small: 3n });
  assert.deepEqual(log.toJSON(), [
    { run_id: "json", step: 1, big: "1152921504606846976", small: null },
    { run_id: "json", step: 2, big: null, small: 3 },
  ]);
  assert.equal(JSON.parse(JSON.stringify(log)).length, 2);
});

Deno.test("MetricLog.save() and MetricLog.load() round-trip values, types and config", async () => {
  await withTempDir(async (dir) => {
    const config = { model: "tiny", lora: { r: 8, targetModules: ["q_proj"] } };
    const log = new MetricLog({ runId: "round-trip", columns: { step: "int32", bytes: "int64" }, config });
    log.log({ step: 0, split: "train", loss: 2.5, bytes: 7, skipped: false });
    log.log({ step: 1, split: "val", loss: Number.NaN, lr: 3e-4 });
    const runDir = await log.save(dir);
    assert.equal(runDir, `${dir}/round-trip`);
    assert.deepEqual((await Array.fromAsync(Deno.readDir(runDir))).map((e) => e.name).sort(), [
      CONFIG_FILE,
      METRICS_FILE,
    ]);

    // An Arrow IPC *file* starts and ends with the magic "ARROW1" (a stream does not).
    const bytes = await Deno.readFile(`${runDir}/${METRICS_FILE}`);
    const text = new TextDecoder();
    assert.equal(text.decode(bytes.subarray(0, 6)), "ARROW1");
    assert.equal(text.decode(bytes.subarray(bytes.length - 6)), "ARROW1");

    for (const path of [runDir, `${runDir}/${METRICS_FILE}`]) {
      const run = await MetricLog.load(path);
      assert.equal(run.runId, "round-trip");
      assert.equal(run.path, `${runDir}/${METRICS_FILE}`);
      assert.deepEqual(run.config, config);
      assert.deepEqual(fieldTypes(run.table), fieldTypes(log.table()));
      assert.deepEqual(fieldTypes(run.table), {
        run_id: "Utf8",
        step: "Int32",
        bytes: "Int64",
        split: "Utf8",
        loss: "Float64",
        skipped: "Bool",
        lr: "Float64",
      });
      assert.deepEqual(column(run.table, "step"), [0, 1]);
      assert.deepEqual(column(run.table, "bytes"), [7n, null]);
      assert.deepEqual(column(run.table, "split"), ["train", "val"]);
      assert.deepEqual(column(run.table, "loss"), [2.5, Number.NaN]);
      assert.deepEqual(column(run.table, "skipped"), [false, null]);
      assert.deepEqual(column(run.table, "lr"), [null, 3e-4]);
    }
  });
});

Deno.test("MetricLog.saveConfig() writes config.json now and again on save()", async () => {
  await withTempDir(async (dir) => {
    const log = new MetricLog({ runId: "cfg" });
    const runDir = await log.saveConfig({ lr: 1e-3, steps: 10n }, dir);
    assert.equal(
      await Deno.readTextFile(`${runDir}/${CONFIG_FILE}`),
      '{\n  "lr": 0.001,\n  "steps": "10"\n}\n',
    );
    log.log({ loss: 1 });
    await log.save(dir);
    assert.deepEqual((await MetricLog.load(runDir)).config, { lr: 1e-3, steps: "10" });
    // A log without a config writes none, and load() reports none.
    const bare = new MetricLog({ runId: "bare" });
    const bareDir = await bare.save(dir);
    const run = await MetricLog.load(bareDir);
    assert.equal(run.config, undefined);
    assert.equal(run.table.numRows, 0);
    assert.deepEqual(run.table.schema.names, ["run_id"]);
  });
});

Deno.test("MetricLog.save() writes atomically and leaves no temporary file", async () => {
  await withTempDir(async (dir) => {
    const log = new MetricLog({ runId: "atomic", config: { a: 1 } });
    log.log({ loss: 1 });
    await log.save(dir);
    log.log({ loss: 0.5 });
    await log.save(dir); // replaces the previous files
    const names = (await Array.fromAsync(Deno.readDir(`${dir}/atomic`))).map((e) => e.name).sort();
    assert.deepEqual(names, [CONFIG_FILE, METRICS_FILE]);
    assert.equal((await MetricLog.load(`${dir}/atomic`)).table.numRows, 2);

    // A config that cannot be JSON fails before anything is written.
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const broken = new MetricLog({ runId: "broken", config: circular });
    broken.log({ loss: 1 });
    await assert.rejects(() => broken.save(dir), /Cannot save run config: it is not JSON-serialisable/);
    await assert.rejects(() => Deno.stat(`${dir}/broken`), Deno.errors.NotFound);
    assert.deepEqual((await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name).sort(), ["atomic"]);
  });
});

Deno.test("MetricLog.load() explains a missing run, a foreign file and bad JSON", async () => {
  await withTempDir(async (dir) => {
    const notFound = (text: string) => (err: unknown) =>
      isNotFound(err) && (err as Error).message.includes(text);
    await assert.rejects(() => MetricLog.load(`${dir}/nope`), notFound(`${dir}/nope does not exist`));
    await Deno.mkdir(`${dir}/empty`);
    await assert.rejects(() => MetricLog.load(`${dir}/empty`), notFound(`no ${METRICS_FILE} in`));
    await Deno.writeTextFile(`${dir}/fake.arrow`, "not arrow at all");
    await assert.rejects(() => MetricLog.load(`${dir}/fake.arrow`), FormatError, "is not an Arrow IPC file");
    await Deno.writeFile(`${dir}/empty.arrow`, new Uint8Array());
    await assert.rejects(() => MetricLog.load(`${dir}/empty.arrow`), FormatError);

    const log = new MetricLog({ runId: "badjson" });
    const runDir = await log.save(dir);
    await Deno.writeTextFile(`${runDir}/${CONFIG_FILE}`, "{ nope");
    await assert.rejects(() => MetricLog.load(runDir), FormatError, "is not valid JSON");
  });
});

Deno.test("MetricLog run ids default to a timestamp and are validated", () => {
  assert.match(new MetricLog().runId, /^\d{8}-\d{6}-[0-9a-f]{4}$/);
  assert.match(newRunId(new Date(2025, 11, 31, 23, 59, 58)), /^20251231-235958-[0-9a-f]{4}$/);
  for (const id of ["lora_r8", "run-1.2", "A", "x".repeat(128)]) {
    assert.equal(new MetricLog({ runId: id }).runId, id);
  }
  for (const id of ["", "a/b", "../up", "..", ".", "has space", "ünï", "x".repeat(129), "a\\b"]) {
    const err = errorOf(() => new MetricLog({ runId: id }));
    assert.ok(err instanceof RangeError, `expected RangeError for ${JSON.stringify(id)}`);
    assert.match(err.message, /^Cannot use run id: use 1 to 128 letters, digits, "-", "_" or "\."/);
    assert.ok(err.message.endsWith(`received ${JSON.stringify(id)}`));
  }
  assert.throws(() => validateRunId(42), TypeError);
});

Deno.test("MetricLog.format() and toHtml() show the values", () => {
  const log = new MetricLog({ runId: "fmt", columns: { step: "int32" } });
  log.log({ step: 1, split: "train", loss: 2.345678912 });
  log.log({ step: 10, split: "<val>", loss: 12 });
  const text = log.format();
  const lines = text.split("\n");
  assert.deepEqual(lines[0].split(/\s+/), ["run_id", "step", "split", "loss"]);
  assert.deepEqual(lines[1].split(/\s+/), ["utf8", "int32", "utf8", "float64"]);
  assert.match(lines[2], /^fmt\s+1\s+train\s+2\.34568$/);
  assert.match(lines[3], /^fmt\s+10\s+<val>\s+12$/);
  assert.equal(lines[4], "[2 rows × 4 columns]");
  // Numbers are right-aligned: the columns end at the same offset.
  assert.equal(lines[2].indexOf(" 1 ") + 2, lines[3].indexOf("10") + 2);

  const html = log.toHtml();
  assert.match(html, /<th title="int32" style="text-align:right;">step<\/th>/);
  assert.match(html, /<td>train<\/td><td style="text-align:right;">2.34568<\/td>/);
  assert.ok(html.includes("&#60;val&#62;") && !html.includes("<val>"), "cells are escaped");
  assert.match(html, /2 rows × 4 columns/);
});

Deno.test("formatTable() and tableToHtml() truncate long tables around an ellipsis", () => {
  const log = new MetricLog({ runId: "long" });
  for (let step = 0; step < 100; step++) log.log({ step, loss: step === 50 ? null : 1 / (step + 1) });
  const text = formatTable(log.table(), { maxRows: 4 });
  const lines = text.split("\n");
  assert.equal(lines.length, 2 + 5 + 1);
  assert.match(lines[2], /^long\s+0\s+1$/);
  assert.match(lines[4], /^…\s+…\s+…$/);
  assert.match(lines[6], /^long\s+99\s+0\.01$/);
  assert.equal(lines[7], "[100 rows × 3 columns; 96 rows not shown]"); // rows hidden, not columns
  assert.equal(tableSize(1, 1, 1), "1 row × 1 column; 1 row not shown");
  const html = tableToHtml(log.table(), { maxRows: 100 });
  assert.equal(html.match(/<tr>/g)?.length, 101);
  assert.ok(html.includes('<td style="text-align:right;opacity:0.5;"><i>null</i></td>'), "nulls are muted");
  assert.throws(() => formatTable(log.table(), { maxRows: -1 }), RangeError);
});

Deno.test("MetricLog and displayTable() return a Jupyter mime bundle", () => {
  assert.equal(JUPYTER_DISPLAY, Symbol.for("Jupyter.display"));
  const log = new MetricLog({ runId: "nb" });
  log.log({ step: 1, loss: 0.75 });
  const bundle = log[JUPYTER_DISPLAY]();
  assert.deepEqual(Object.keys(bundle).sort(), ["text/html", "text/plain"]);
  assert.match(bundle["text/html"], /<table>[\s\S]*<td style="text-align:right;">0.75<\/td>/);
  assert.match(bundle["text/plain"], /^MetricLog nb\n/);
  assert.match(bundle["text/plain"], /0\.75/);
  // The kernel looks the method up by the registered symbol.
  const viaSymbol = (log as unknown as Record<symbol, () => unknown>)[Symbol.for("Jupyter.display")]();
  assert.deepEqual(viaSymbol, bundle);

  const view = displayTable(log.table(), { maxRows: 5 });
  assert.deepEqual(view[JUPYTER_DISPLAY](), { "text/html": view.html, "text/plain": view.text });
  assert.equal(String(view), view.text);
});

// An independent Arrow reader (pyarrow, arrow-rs, DuckDB) is not installed on this
// machine, so the IPC file is only checked for the file-format magic above and read
// back with apache-arrow itself.
