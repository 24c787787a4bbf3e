/** Magnitude, Wanda and 2:4 masks: exact sparsity, the right weights pruned, the N:M pattern, clear errors. */
import assert from "node:assert/strict";
import {
  applyMask,
  magnitudeMask,
  pruneWeight,
  semiStructuredMask,
  wandaMask,
} from "../../../src/compressors/prune/masks.ts";
import { randn, uniform } from "../../_helpers.ts";

const zeros = (m: Uint8Array) => m.reduce((n, b) => n + (b === 0 ? 1 : 0), 0);

Deno.test("magnitudeMask prunes exactly ⌊S·n⌋ of the smallest |W| on odd shapes", () => {
  for (const [rows, cols] of [[7, 13], [1, 9], [5, 1]]) {
    const w = randn(rows * cols, rows * 31 + cols);
    for (const s of [0, 0.1, 0.5, 0.77]) {
      const m = magnitudeMask(w, [rows, cols], s);
      const k = Math.floor(s * rows * cols);
      assert.equal(zeros(m.mask), k, `[${rows}, ${cols}] at ${s}`);
      assert.equal(m.sparsity, k / (rows * cols));
      const keptMin = Math.min(...[...w].filter((_, i) => m.mask[i]).map(Math.abs));
      const prunedMax = Math.max(-Infinity, ...[...w].filter((_, i) => !m.mask[i]).map(Math.abs));
      assert.ok(prunedMax <= keptMin, `a pruned |w| ${prunedMax} exceeds a kept one ${keptMin}`);
    }
  }
  // Ties: with all-equal magnitudes the earliest weights go first.
  assert.deepEqual([...magnitudeMask(Float32Array.of(1, -1, 1, -1), [2, 2], 0.5).mask], [0, 0, 1, 1]);
});

Deno.test("wandaMask prunes ⌊S·cols⌋ per output row by |W|·‖X‖", () => {
  const [rows, cols] = [6, 11];
  const w = randn(rows * cols, 5);
  const norms = uniform(cols, 6, 0.1, 3);
  const m = wandaMask(w, [rows, cols], norms, 0.5);
  for (let r = 0; r < rows; r++) {
    const row = m.mask.subarray(r * cols, (r + 1) * cols);
    assert.equal(zeros(row), 5, `row ${r}`);
    const score = (c: number) => Math.abs(w[r * cols + c]) * norms[c];
    const kept = [...row.keys()].filter((c) => row[c]).map(score);
    const pruned = [...row.keys()].filter((c) => !row[c]).map(score);
    assert.ok(Math.max(...pruned) <= Math.min(...kept), `row ${r}: a pruned score exceeds a kept one`);
  }
  assert.equal(m.sparsity, 30 / 66);
});

Deno.test("Wanda keeps the weight whose input has the large norm where magnitude would not", () => {
  // One row, two inputs: |w0| = 1 > |w1| = 0.5, but input 1 is 10× larger (‖X1‖ = 10 vs ‖X0‖ = 1).
  const w = Float32Array.of(1, 0.5);
  const norms = Float32Array.of(1, 10);
  assert.deepEqual([...magnitudeMask(w, [1, 2], 0.5).mask], [1, 0]);
  assert.deepEqual([...wandaMask(w, [1, 2], norms, 0.5).mask], [0, 1]);
  // Per row, not per matrix: row 1's weights are all tiny, yet it keeps half of them.
  const w2 = Float32Array.of(5, 6, 7, 8, 0.01, 0.02, 0.03, 0.04);
  const m = wandaMask(w2, [2, 4], Float32Array.of(1, 1, 1, 1), 0.5);
  assert.deepEqual([...m.mask], [0, 0, 1, 1, 0, 0, 1, 1]);
});

Deno.test("2:4 keeps exactly two of every four consecutive inputs, by magnitude or Wanda score", () => {
  const [rows, cols] = [5, 12];
  const w = randn(rows * cols, 9);
  const norms = uniform(cols, 10, 0.1, 4);
  for (const inputNorms of [undefined, norms]) {
    const m = semiStructuredMask(w, [rows, cols], { inputNorms });
    assert.equal(m.sparsity, 0.5);
    assert.equal(m.method, "2:4");
    for (let g = 0; g < w.length; g += 4) {
      const group = [0, 1, 2, 3];
      assert.equal(group.filter((j) => m.mask[g + j]).length, 2, `group at ${g}`);
      const score = (j: number) => Math.abs(w[g + j]) * (inputNorms ? inputNorms[(g + j) % cols] : 1);
      const kept = group.filter((j) => m.mask[g + j]).map(score);
      const pruned = group.filter((j) => !m.mask[g + j]).map(score);
      assert.ok(Math.max(...pruned) <= Math.min(...kept), `group at ${g}`);
    }
  }
  const m48 = semiStructuredMask(w, [rows, cols], { n: 4, m: 6 });
  assert.equal(m48.method, "4:6");
  assert.equal(zeros(m48.mask), w.length / 3);
});

Deno.test("pruneWeight returns the masked weight and refuses bad input clearly", () => {
  const w = Float32Array.of(0.3, -2, 0.1, 4, -0.2, 1, 0.5, -3); // [2, 4]
  const r = pruneWeight(w, [2, 4], { method: "magnitude", sparsity: 0.25 });
  assert.deepEqual([...r.pruned], [w[0], -2, 0, 4, 0, 1, 0.5, -3]); // 0.1 and -0.2 are the smallest
  assert.deepEqual([...r.mask], [1, 1, 0, 1, 0, 1, 1, 1]);
  assert.equal(r.sparsity, 0.25);
  assert.deepEqual(applyMask(w, r.mask), r.pruned);
  const wanda = pruneWeight(w, [2, 4], {
    method: "wanda",
    sparsity: 0.5,
    inputNorms: Float32Array.of(1, 1, 100, 1),
  });
  // Scores |w|·‖x‖: row 0 [0.3, 2, 10, 4], row 1 [0.2, 1, 50, 3]: the input with norm 100 survives.
  assert.deepEqual([...wanda.mask], [0, 0, 1, 1, 0, 0, 1, 1]);
  const ok = (opts: Parameters<typeof pruneWeight>[2], shape: [number, number] = [2, 4]) => () =>
    pruneWeight(w, shape, opts);
  assert.throws(ok({ method: "magnitude", sparsity: 1 }), /sparsity must be in \[0, 1\): received 1/);
  assert.throws(ok({ method: "magnitude", sparsity: -0.1 }), /sparsity must be in \[0, 1\)/);
  assert.throws(ok({ method: "magnitude" }), /sparsity is required/);
  assert.throws(ok({ method: "wanda", sparsity: 0.5 }), /inputNorms is required/);
  assert.throws(
    ok({ method: "wanda", sparsity: 0.5, inputNorms: Float32Array.of(1, 1) }),
    /inputNorms must be a Float32Array of the 4 input columns: received length 2/,
  );
  assert.throws(
    ok({ method: "wanda", sparsity: 0.5, inputNorms: Float32Array.of(1, -1, 1, 1) }),
    /inputNorms\[1\] = -1 is not a finite norm/,
  );
  assert.throws(
    ok({ method: "2:4" }, [4, 2]),
    /the 2 input columns are not divisible by 4; use magnitude or wanda/,
  );
  assert.throws(
    ok({ method: "2:4", sparsity: 0.6 }),
    /prunes exactly half: sparsity must be 0\.5 or left out: received 0\.6/,
  );
  assert.throws(
    ok({ method: "magnitude", sparsity: 0.5 }, [3, 3]),
    /expected a Float32Array of shape \[rows, cols\].*8 values and shape \[3,3\]/,
  );
  assert.throws(
    ok({ method: "nm" as never, sparsity: 0.5 }),
    /unknown method "nm": expected one of magnitude, wanda, 2:4/,
  );
  assert.throws(
    () => pruneWeight(Float32Array.of(1, NaN), [1, 2], { method: "magnitude", sparsity: 0.5 }),
    /weight\[1\] = NaN is not finite/,
  );
  assert.throws(
    () => applyMask(w, new Uint8Array(3)),
    /Cannot apply mask: it has 3 entries but the weight has 8/,
  );
});
