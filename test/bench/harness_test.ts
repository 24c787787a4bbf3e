/**
 * The benchmark harness: spreads of repeated timings, alternating measurement, and the output checks
 * that make a wrong kernel fail its benchmark.
 */
import assert from "node:assert/strict";
import { checkOutput, maxRelErr, spread, timeAlternating, timeStats } from "../../bench/_harness.ts";

Deno.test("spread: median, min, max and count of unsorted runs", () => {
  assert.deepEqual(spread([5, 1, 3]), { median: 3, min: 1, max: 5, runs: 3 });
  assert.deepEqual(spread([4, 2, 8, 6]), { median: 6, min: 2, max: 8, runs: 4 }); // upper median
  assert.throws(() => spread([]), /at least once/);
});

Deno.test("timeStats runs the warm-ups untimed and at least minRuns timed runs", async () => {
  let calls = 0;
  const s = await timeStats(() => calls++, { warmup: 2, minRuns: 4, minMs: 0, maxRuns: 4 });
  assert.equal(s.runs, 4);
  assert.equal(calls, 6);
  assert.ok(s.min <= s.median && s.median <= s.max);
});

Deno.test("timeAlternating interleaves the functions round by round", async () => {
  const order: string[] = [];
  const t = await timeAlternating({ a: () => order.push("a"), b: () => order.push("b") }, {
    warmup: 1,
    rounds: 3,
  });
  assert.equal(order.join(""), "abababab"); // one warm-up round, then three timed rounds
  assert.equal(t.a.runs, 3);
  assert.equal(t.b.runs, 3);
});

Deno.test("maxRelErr is max |got − want| over max |want|, NaN-propagating", () => {
  assert.equal(maxRelErr([1, 2, 4], [1, 2, 4]), 0);
  assert.equal(maxRelErr([1, 3, 4], [1, 2, 4]), 0.25);
  assert.equal(maxRelErr([0.5], [0]), 0.5); // all-zero reference: the absolute error
  assert.ok(Number.isNaN(maxRelErr([1, NaN], [1, 2])));
  assert.throws(() => maxRelErr([1], [1, 2]), /1 values, its reference 2/);
});

Deno.test("checkOutput returns the error within tolerance and throws, naming the output, beyond it", () => {
  assert.equal(checkOutput("ok", [1, 2.0001], [1, 2], 1e-3), maxRelErr([1, 2.0001], [1, 2]));
  assert.throws(
    () => checkOutput("matmul 7³", [1, 3], [1, 2], 1e-3),
    /matmul 7³ is off its TypeScript reference/,
  );
  assert.throws(() => checkOutput("nan", [NaN], [1], 1), /nan is off/);
  assert.equal(checkOutput("bit-exact copy", [1, 2], [1, 2], 0), 0);
});
