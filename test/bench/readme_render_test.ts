/**
 * The README block renderers of bench/readme.ts on small hand-made results: each figure in a block
 * is the number in its results file, and results that lack what a block shows fail with a clear error.
 */
import assert from "node:assert/strict";
import { type BenchResults, BLOCKS } from "../../bench/readme.ts";

const meta = {
  date: "2026-01-02T03:04:05.000Z",
  command: "deno task bench --quick",
  machine: { cores: 3, cpu: "Test CPU" },
};

Deno.test("batching block: submit-and-wait, per-dispatch ms and the speed-up from kernels.json", () => {
  const results: BenchResults = {
    meta: { ...meta, adapter: "testpipe", chain: 7 },
    rows: [
      { group: "device", name: "empty submit-and-wait", value: 12.345, unit: "ms" },
      { group: "batching", name: "per dispatch, 7 in one submit", value: 0.1234, unit: "ms" },
      { group: "batching", name: "per dispatch, submit-and-wait each", value: 13.5, unit: "ms" },
      { group: "batching", name: "batched speed-up, chain of 7", value: 109.4, unit: "x" },
    ],
  };
  const text = BLOCKS.batching.render(results);
  for (
    const want of ["testpipe", "3 cores (Test CPU)", "12.3 ms", "0.123 ms", "chain of 7", "109×", "13.5 ms"]
  ) {
    assert.ok(text.includes(want), `"${want}" missing from: ${text}`);
  }
  assert.ok(text.includes("2026-01-02") && text.includes("`deno task bench --quick`"));
  results.rows.pop();
  assert.throws(() => BLOCKS.batching.render(results), /no row "batched speed-up, chain of 7…": rerun/);
});

Deno.test("qgemv block: one column per scheme with median, spread, f32 baseline and speed-up", () => {
  const r = (config: string, ms: number, f32Ms: number) => ({
    kernel: "qgemv",
    config,
    ms,
    msMin: ms - 0.1,
    msMax: ms + 0.2,
    f32Ms,
    f32MsMin: f32Ms,
    f32MsMax: f32Ms,
    rounds: 5,
    speedup: f32Ms / ms,
    byteRatio: 12.8,
  });
  const results: BenchResults = {
    meta: {
      ...meta,
      adapter: "testpipe",
      shape: [64, 96],
      groupSize: 32,
      results: [r("2-bit", 2.5, 10), r("4-bit", 4, 10), { kernel: "qmatmul", config: "2-bit" }],
    },
    rows: [],
  };
  const text = BLOCKS.qgemv.render(results);
  const header = text.split("\n")[0];
  assert.equal(header, "| packed GEMV, 64 × 96, g = 32 | 2-bit | 4-bit |"); // qmatmul rows left out
  for (const want of ["| 2.5 | 4 |", "2.4–2.7", "| 10 | 10 |", "4.00×", "2.50×", "12.8×", "5 rounds"]) {
    assert.ok(text.includes(want), `"${want}" missing from: ${text}`);
  }
  assert.throws(() => BLOCKS.qgemv.render({ meta, rows: [] }), /no qgemv results/);
});

Deno.test("quantize block: seconds per backend and method, HQQ's kept iterations, errors", () => {
  const results: BenchResults = {
    meta: {
      ...meta,
      n: 128,
      groupSize: 64,
      devices: [{ backend: "cpu", adapter: "ref" }, { backend: "webgpu", adapter: "testpipe" }],
      details: [
        { device: "cpu", setting: "rtn 2-bit", seconds: 0.0123, relError: 0.3 },
        { device: "cpu", setting: "hqq 2-bit", seconds: 1.5, relError: 0.25, iterations: 17 },
        { device: "webgpu", setting: "rtn 2-bit", seconds: 0.02, relError: 0.3 },
      ],
    },
    rows: [],
  };
  const lines = BLOCKS.quantize.render(results).split("\n");
  assert.equal(lines[0], "| quantize 128 × 128, g = 64 | rtn 2-bit | hqq 2-bit |");
  assert.equal(lines[2], "| cpu | 0.0123 s | 1.5 s (17 it.) |");
  assert.equal(lines[3], "| webgpu | 0.02 s | — |");
  assert.equal(lines[4], "| relative weight error | 0.3 | 0.25 |");
  assert.ok(lines.at(-1)!.includes("cpu: ref; webgpu: testpipe"));
  assert.throws(() => BLOCKS.quantize.render({ meta, rows: [] }), /no details/);
});

Deno.test("models block: median (min–max) tokens/s and submits per token per model and backend", () => {
  const results: BenchResults = {
    meta: { ...meta, devices: ["cpu: ref"], prompt: 32, newTokens: 8, warmup: 2, repeats: 5 },
    rows: [
      {
        group: "prefill",
        name: "tiny [cpu]",
        value: 1234.4,
        min: 1000,
        max: 1500,
        runs: 5,
        unit: "tokens/s",
      },
      { group: "decode", name: "tiny [cpu]", value: 99.6, min: 90, max: 101, runs: 5, unit: "tokens/s" },
      { group: "decode", name: "tiny [cpu] submits per token", value: 0, unit: "submits" },
    ],
  };
  const lines = BLOCKS.models.render(results).split("\n");
  assert.equal(lines[2], "| tiny | cpu | 1,234 (1,000–1,500) | 100 (90–101) | 0 |");
  assert.ok(lines.at(-1)!.includes("median (min–max) of 5 runs of a 32-token prompt and 8 new tokens"));
});
