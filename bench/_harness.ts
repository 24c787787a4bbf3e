/**
 * Benchmark plumbing: timing with warm-up and repeats, the result table, and the
 * JSON file. Benchmarks print a table and write JSON; they never assert on time.
 * @module
 */
import { writeFileAtomic } from "../src/io/atomic.ts";

/** One benchmark row: a measured value next to the limit it is judged against. */
export interface BenchRow {
  group: string;
  name: string;
  /** The measurement; for repeated timings, the median of the runs. */
  value: number;
  unit: string;
  /** The machine's limit (or a peer) measured in the same run, in the same unit. */
  limit?: number;
  limitName?: string;
  /** Target from the issue, in the same unit, when one exists. */
  target?: number;
  /** Spread of a repeated measurement: the smallest and largest run, in `unit`, and how many runs. */
  min?: number;
  max?: number;
  runs?: number;
  note?: string;
}

/** Median, smallest and largest of repeated measurements, and how many there were. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  runs: number;
}

/** The {@link Spread} of `xs` (the upper median for an even count). */
export function spread(xs: readonly number[]): Spread {
  if (xs.length === 0) throw new RangeError("spread of no measurements: run the timed code at least once");
  const s = [...xs].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], min: s[0], max: s[s.length - 1], runs: s.length };
}

/** Options of {@link timeStats}: warm-up calls, then at least `minRuns` and `minMs`, at most `maxRuns`. */
export interface TimeOptions {
  warmup?: number;
  minRuns?: number;
  minMs?: number;
  maxRuns?: number;
}

/** Wall times in ms of `fn` (after `warmup` calls), repeating for at least `minMs`: their {@link Spread}. */
export async function timeStats(
  fn: () => unknown | Promise<unknown>,
  { warmup = 1, minRuns = 3, minMs = 300, maxRuns = 50 }: TimeOptions = {},
): Promise<Spread> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  const start = performance.now();
  while (times.length < minRuns || (performance.now() - start < minMs && times.length < maxRuns)) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return spread(times);
}

/** Median wall time in ms of `fn` (after `warmup` calls), repeating for at least `minMs`. */
export async function timeMs(
  fn: () => unknown | Promise<unknown>,
  options: TimeOptions = {},
): Promise<number> {
  return (await timeStats(fn, options)).median;
}

/**
 * Wall times in ms of several functions measured in turns: each round runs every function once, in
 * order, so all of them see the same machine state (load, clocks, caches) instead of one of them
 * getting a quiet minute and another a busy one. Each function is called `warmup` times first.
 */
export async function timeAlternating<K extends string>(
  fns: Record<K, () => unknown | Promise<unknown>>,
  { warmup = 1, rounds = 5 } = {},
): Promise<Record<K, Spread>> {
  const keys = Object.keys(fns) as K[];
  for (let i = 0; i < warmup; i++) for (const k of keys) await fns[k]();
  const times = Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<K, number[]>;
  for (let r = 0; r < rounds; r++) {
    for (const k of keys) {
      const t0 = performance.now();
      await fns[k]();
      times[k].push(performance.now() - t0);
    }
  }
  return Object.fromEntries(keys.map((k) => [k, spread(times[k])])) as Record<K, Spread>;
}

/** max |got − want| / max |want|: one number for how far an output is from its reference. */
export function maxRelErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) {
    throw new RangeError(`output has ${got.length} values, its reference ${want.length}`);
  }
  let err = 0, mag = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    err = d > err || Number.isNaN(d) ? d : err;
    mag = Math.max(mag, Math.abs(want[i]));
  }
  return mag === 0 ? err : err / mag;
}

/**
 * Checks a benchmarked output against its TypeScript reference and returns {@link maxRelErr}; a
 * wrong (or NaN) output throws, so a broken kernel fails the benchmark instead of timing garbage.
 */
export function checkOutput(
  what: string,
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  tolerance: number,
): number {
  const err = maxRelErr(got, want);
  if (!(err <= tolerance)) {
    throw new Error(
      `Benchmark check failed: ${what} is off its TypeScript reference by ${err} (max |got − want| / ` +
        `max |want|; allowed ${tolerance}). The kernel is wrong on this input: run its op tests ` +
        `(deno test -A test/ops/) and fix it before trusting any timing.`,
    );
  }
  return err;
}

function fmt(v: number | undefined): string {
  if (v === undefined || Number.isNaN(v)) return "";
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 10 ? v.toFixed(1) : a >= 0.01 ? v.toFixed(2) : v.toExponential(2);
}

/** Prints rows as an aligned table, with the fraction of the limit and the target verdict. */
export function printTable(title: string, rows: BenchRow[]): void {
  const header = ["group", "benchmark", "value", "unit", "limit", "fraction", "target", "met", "note"];
  const body = rows.map((r) => [
    r.group,
    r.name,
    fmt(r.value) + (r.min !== undefined && r.max !== undefined ? ` (${fmt(r.min)}–${fmt(r.max)})` : ""),
    r.unit,
    r.limit !== undefined ? `${fmt(r.limit)} (${r.limitName ?? "limit"})` : "",
    r.limit ? `${(100 * r.value / r.limit).toFixed(1)}%` : "",
    r.target !== undefined ? fmt(r.target) : "",
    r.target !== undefined ? (r.value >= r.target ? "yes" : "no") : "",
    r.note ?? "",
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => i >= 2 && i !== 3 && i !== 8 ? c.padStart(widths[i]) : c.padEnd(widths[i])).join(
      "  ",
    );
  console.log(`\n${title}`);
  console.log(line(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const b of body) console.log(line(b));
}

/** The machine a result was measured on: what a reader needs to compare it with their own. */
export async function machineFacts(): Promise<Record<string, unknown>> {
  const cpuinfo = await Deno.readTextFile("/proc/cpuinfo").catch(() => "");
  return {
    os: `${Deno.build.os} ${Deno.build.arch}`,
    cpu: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    cores: navigator.hardwareConcurrency,
    deno: Deno.version.deno,
  };
}

/**
 * Writes `{ meta, rows }` as pretty JSON to `path` (temporary name, then rename). `meta` gains the
 * date, the command that reproduces the file and the machine ({@link machineFacts}) unless it
 * already has them.
 */
export async function writeJson(
  path: string,
  meta: Record<string, unknown>,
  rows: BenchRow[],
): Promise<void> {
  const dir = path.slice(0, path.lastIndexOf("/"));
  if (dir) await Deno.mkdir(dir, { recursive: true });
  const full = {
    date: new Date().toISOString(),
    command: benchCommand(),
    machine: await machineFacts(),
    ...meta,
  };
  await writeFileAtomic(path, JSON.stringify({ meta: full, rows }, null, 2) + "\n");
}

/** `deno task bench:NAME ARGS…` when run through a task, else `deno run -A FILE ARGS…`. */
export function benchCommand(): string {
  const file = new URL(Deno.mainModule).pathname.split("/").slice(-2).join("/"); // bench/x.ts
  const task: Record<string, string> = {
    "bench/kernels.ts": "deno task bench",
    "bench/models.ts": "deno task bench:models",
    "bench/training.ts": "deno task bench:training",
    "bench/peers.ts": "deno task bench:peers",
    "bench/quant.ts": "deno task bench:quant",
    "bench/quantize.ts": "deno task bench:quant",
  };
  return [task[file] ?? `deno run -A ${file}`, ...Deno.args].join(" ");
}
