/** The CPU references' `exp` against `Math.exp`: relative error, edge cases, the whole normal range. */
import assert from "node:assert/strict";
import { exp } from "../../src/ops/_exp.ts";

Deno.test("exp equals Math.exp to 1e-12 relative over the normal range, and at its edges", () => {
  let worst = 0;
  let at = 0;
  const check = (x: number) => {
    const want = Math.exp(x);
    const rel = Math.abs(exp(x) - want) / want;
    if (rel > worst) [worst, at] = [rel, x];
  };
  for (let i = 0; i <= 200_000; i++) check(-708 + (1417 * i) / 200_000); // [−708, 709]
  for (let i = 0; i < 100_000; i++) check(Math.sin(i) * 30); // softmax's usual inputs
  for (const x of [0, -0, 1, -1, 1e-300, -1e-300, 0.5, -0.5, 1 / 128, 708.3, -708.3, 707.9]) check(x);
  assert.ok(worst < 1e-12, `worst relative error ${worst} at x = ${at}`);
  assert.equal(exp(0), 1);
  assert.equal(exp(-Infinity), 0);
  assert.equal(exp(Infinity), Infinity);
  assert.ok(Number.isNaN(exp(NaN)));
  assert.equal(exp(-800), Math.exp(-800)); // 0 in double
  assert.equal(exp(-740), Math.exp(-740)); // subnormal: deferred to Math.exp
  assert.equal(exp(710), Infinity);
});
