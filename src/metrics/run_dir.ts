/**
 * Run folders: `runs/<run-id>/metrics.arrow` (an Arrow IPC file) beside
 * `runs/<run-id>/config.json`. Every write goes to a temporary name first and is then
 * renamed, so a crash never leaves a half-written file.
 *
 * @example Writing and reading a run folder
 * ```ts
 * import assert from "node:assert/strict";
 * import { tableFromArrays } from "apache-arrow";
 * import { loadRun, saveRun } from "./run_dir.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const table = tableFromArrays({ step: new Float64Array([1, 2]), loss: new Float64Array([2.5, 2.1]) });
 * const runDir = await saveRun(dir, "demo-1", table, { lr: 3e-4 });
 * const run = await loadRun(runDir);
 * assert.equal(run.table.numRows, 2);
 * assert.deepEqual(run.config, { lr: 3e-4 });
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import { isNotFound, mkdir, readFile, readTextFile, stat } from "../host/runtime.ts";
import * as arrow from "apache-arrow";
import { basename, dirname, join } from "node:path";
import { FormatError } from "../errors.ts";
import { writeFileAtomic } from "../io/atomic.ts";

/** File name of the metrics table inside a run folder. */
export const METRICS_FILE = "metrics.arrow";
/** File name of the run's parsed config inside a run folder. */
export const CONFIG_FILE = "config.json";

const RUN_ID_PATTERN = /^[A-Za-z0-9_.-]+$/;
const ARROW_MAGIC = "ARROW1";

/**
 * A fresh run id, `YYYYMMDD-HHMMSS-<4 hex>` in local time: sortable by start time, with
 * a random tail so runs started in the same second do not collide.
 *
 * @param now The start time; defaults to the current time.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { newRunId } from "./run_dir.ts";
 * assert.match(newRunId(new Date(2025, 0, 2, 3, 4, 5)), /^20250102-030405-[0-9a-f]{4}$/);
 * ```
 */
export function newRunId(now: Date = new Date()): string {
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  const date = `${pad(now.getFullYear(), 4)}${pad(now.getMonth() + 1)}${pad(now.getDate())}`;
  const time = `${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}`;
  const [a, b] = crypto.getRandomValues(new Uint8Array(2));
  return `${date}-${time}-${a.toString(16).padStart(2, "0")}${b.toString(16).padStart(2, "0")}`;
}

/**
 * Checks that a run id can name a folder safely and returns it.
 *
 * @throws {TypeError} When `runId` is not a string.
 * @throws {RangeError} When it is empty, longer than 128 characters, contains anything
 *   but letters, digits, `-`, `_` and `.`, or is made of dots only (`.`, `..`).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { validateRunId } from "./run_dir.ts";
 * assert.equal(validateRunId("lora_r8-seed.1"), "lora_r8-seed.1");
 * assert.throws(() => validateRunId("../etc"), RangeError);
 * ```
 */
export function validateRunId(runId: unknown): string {
  if (typeof runId !== "string") {
    throw new TypeError(`Cannot use run id: expected a string, received ${typeof runId}`);
  }
  if (runId.length === 0 || runId.length > 128 || !RUN_ID_PATTERN.test(runId) || /^\.+$/.test(runId)) {
    throw new RangeError(
      `Cannot use run id: use 1 to 128 letters, digits, "-", "_" or "." (not only dots): received ${
        JSON.stringify(runId)
      }`,
    );
  }
  return runId;
}

/** What {@linkcode loadRun} reads back from a run folder. */
export interface LoadedRun {
  /** The metrics table. */
  table: arrow.Table;
  /** The parsed `config.json`, or `undefined` when the run has none. */
  config: unknown;
  /** The run id, from the table's `run_id` column or else the folder name. */
  runId: string | undefined;
  /** The `metrics.arrow` file that was read. */
  path: string;
}

/**
 * Writes `table` to `<dir>/<runId>/metrics.arrow` as an Arrow IPC file and, when given,
 * `config` to `<dir>/<runId>/config.json`; both atomically.
 *
 * @param dir The folder holding run folders, e.g. `"runs"`; created if missing.
 * @returns The run folder's path.
 * @throws {RangeError} When `runId` is not a valid run id.
 * @throws {TypeError} When `config` cannot be written as JSON.
 */
export async function saveRun(
  dir: string,
  runId: string,
  table: arrow.Table,
  config?: unknown,
): Promise<string> {
  const runDir = join(dir, validateRunId(runId));
  const json = config === undefined ? undefined : configJson(config);
  await mkdir(runDir, { recursive: true });
  await writeFileAtomic(join(runDir, METRICS_FILE), arrow.tableToIPC(table, "file"));
  if (json !== undefined) await writeFileAtomic(join(runDir, CONFIG_FILE), json);
  return runDir;
}

/**
 * Writes only `<dir>/<runId>/config.json`, atomically.
 *
 * @returns The run folder's path.
 * @throws {TypeError} When `config` cannot be written as JSON.
 */
export async function saveRunConfig(dir: string, runId: string, config: unknown): Promise<string> {
  const runDir = join(dir, validateRunId(runId));
  const json = configJson(config);
  await mkdir(runDir, { recursive: true });
  await writeFileAtomic(join(runDir, CONFIG_FILE), json);
  return runDir;
}

/**
 * Reads a run back: either a run folder (its `metrics.arrow` and, if present,
 * `config.json`) or an Arrow IPC file directly (with the sibling `config.json` only when
 * the file is named `metrics.arrow`).
 *
 * @throws {Deno.errors.NotFound} When the path or the folder's `metrics.arrow` is missing.
 * @throws {FormatError} When the file is not an Arrow IPC file or `config.json` is not JSON.
 */
export async function loadRun(path: string): Promise<LoadedRun> {
  const info = await orNotFound(stat(path), `Cannot load run: ${path} does not exist`);
  const file = info.isDirectory ? join(path, METRICS_FILE) : path;
  const runDir = info.isDirectory ? path : dirname(path);
  const bytes = await orNotFound(readFile(file), `Cannot load run: no ${METRICS_FILE} in ${path}`);
  const table = decodeIpc(bytes, file);
  const configPath = info.isDirectory || basename(file) === METRICS_FILE
    ? join(runDir, CONFIG_FILE)
    : undefined;
  const config = configPath === undefined ? undefined : await readConfig(configPath);
  return { table, config, runId: runIdOf(table, runDir), path: file };
}

function configJson(config: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(config, (_key, value) => typeof value === "bigint" ? value.toString() : value, 2);
  } catch (err) {
    throw new TypeError(`Cannot save run config: it is not JSON-serialisable: ${(err as Error).message}`);
  }
  if (json === undefined) {
    throw new TypeError(`Cannot save run config: expected a JSON value, received ${typeof config}`);
  }
  return `${json}\n`;
}

function decodeIpc(bytes: Uint8Array, file: string): arrow.Table {
  // tableFromIPC accepts an empty buffer as an empty table; a run file always has the magic.
  const head = new TextDecoder().decode(bytes.subarray(0, ARROW_MAGIC.length));
  const stream = bytes.length >= 8 &&
    new DataView(bytes.buffer, bytes.byteOffset).getUint32(0, true) === 0xffffffff;
  if (head !== ARROW_MAGIC && !stream) {
    throw new FormatError(`Cannot load run: ${file} is not an Arrow IPC file (no "ARROW1" magic)`, file);
  }
  try {
    return arrow.tableFromIPC(bytes);
  } catch (err) {
    throw new FormatError(
      `Cannot load run: ${file} is a damaged Arrow IPC file: ${(err as Error).message}`,
      file,
    );
  }
}

async function readConfig(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readTextFile(path);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new FormatError(`Cannot load run: ${path} is not valid JSON: ${(err as Error).message}`, path);
  }
}

function runIdOf(table: arrow.Table, runDir: string): string | undefined {
  const column = table.getChild("run_id");
  const first = column && column.length > 0 ? column.get(0) : undefined;
  if (typeof first === "string") return first;
  const name = basename(runDir);
  return RUN_ID_PATTERN.test(name) && !/^\.+$/.test(name) ? name : undefined;
}

/** Awaits `promise`, replacing a NotFound error's message with `message`. */
async function orNotFound<T>(promise: Promise<T>, message: string): Promise<T> {
  try {
    return await promise;
  } catch (err) {
    if (isNotFound(err)) throw Object.assign(new Error(message, { cause: err }), { code: "ENOENT" });
    throw err;
  }
}
