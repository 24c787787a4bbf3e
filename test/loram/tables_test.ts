import assert from "node:assert/strict";
import { bootstrapPerplexity } from "../../src/metrics/bootstrap.ts";
import type { LoramEval } from "../../src/loram/pipeline.ts";
import { parseLoramRunConfig } from "../../src/loram/run_config.ts";
import {
  ablationRows,
  centralClaim,
  markdownTable,
  memoryRows,
  qualityRows,
  runLabel,
} from "../../src/loram/tables.ts";

const p = (i: number, o: number, sotu: number | null = o + 100) => ({
  in_domain: i,
  out_of_domain: o,
  out_of_domain_sotu: sotu,
});
const train = {
  trainable_params: 100,
  steps: 2,
  tokens: 64,
  tokens_per_s: 50.4,
  final_loss: 3,
  peak_bytes: { total: 3 << 20, weights: 2 << 20, lora: 1024 },
};
function run(method: "rand" | "stru", nf4: boolean, align: number, loram: number): LoramEval {
  return {
    config: parseLoramRunConfig({
      model: "m",
      out: "o",
      method,
      ratio: 0.5,
      nf4,
      align: { steps: align },
      train: { steps: 2 },
    }),
    criterion: "random",
    sparsity: 0.5,
    ppl: {
      original: p(200, 300),
      pruned: p(220, 310),
      pruned_aligned: align ? p(215, 305) : null,
      pruned_lora: p(210, 305),
      loram: p(loram, 301),
    },
    params: { loram_reduction: 1.5, qloram_nf4_reduction: 4.2 } as LoramEval["params"],
    train,
  };
}

Deno.test("qualityRows / ablationRows: one row per model, the right perplexities and ratios", () => {
  const runs = [run("rand", false, 0, 195), run("stru", true, 10, 205)];
  assert.deepEqual(runs.map(runLabel), ["LoRAM-Rand", "QLoRAM-Stru+align"]);
  const q = qualityRows(runs, { ppl: p(190, 299), train });
  assert.deepEqual(q.map((r) => [r.model, r.in_domain_ppl, r.reduction]), [
    ["large w/o FT", 200, 1],
    ["large + LoRA", 190, 1],
    ["LoRAM-Rand: small w/o FT", 220, 1.5],
    ["LoRAM-Rand: small + LoRA (infer small)", 210, 1.5],
    ["LoRAM-Rand (infer large)", 195, 1.5],
    ["QLoRAM-Stru+align: small w/o FT", 215, 4.2],
    ["QLoRAM-Stru+align: small + LoRA (infer small)", 210, 4.2],
    ["QLoRAM-Stru+align (infer large)", 205, 4.2],
  ]);
  assert.deepEqual(q.map((r) => [r.out_of_domain_ppl, r.out_of_domain_sotu_ppl]), [
    [300, 400],
    [299, 399],
    [310, 410],
    [305, 405],
    [301, 401],
    [305, 405],
    [305, 405],
    [301, 401],
  ]);
  // Every column D.2.2 asks for: perplexities, reduction, trainable parameters, ledger peaks, tokens/s.
  assert.deepEqual(Object.keys(q[1]), [
    "model",
    "in_domain_ppl",
    "in_domain_ppl_lo",
    "in_domain_ppl_hi",
    "out_of_domain_ppl",
    "out_of_domain_sotu_ppl",
    "reduction",
    "ratio_vs_large_in",
    "ratio_vs_large_in_lo",
    "ratio_vs_large_in_hi",
    "ratio_vs_small_lora_in",
    "ratio_vs_small_lora_in_lo",
    "ratio_vs_small_lora_in_hi",
    "trainable_params",
    "peak_weights_mib",
    "peak_lora_mib",
    "peak_grads_mib",
    "peak_optimizer_mib",
    "peak_activations_mib",
    "peak_total_mib",
    "tokens_per_s",
  ]);
  assert.equal(q[1].peak_weights_mib, 2);
  assert.equal(q[1].tokens_per_s, 50);
  assert.equal(q[0].trainable_params, null);
  // Streams only: no intervals, the columns are there and null.
  assert.ok(q.every((r) => r.in_domain_ppl_lo === null && r.ratio_vs_large_in === null));
  const a = ablationRows(runs);
  assert.deepEqual(
    a.map((r) => [r.align_steps, r.pruned_in_ppl, r.infer_pruned_in_ppl, r.infer_original_in_ppl]),
    [[0, 220, 210, 195], [10, 215, 210, 205]],
  );
  assert.deepEqual(a.map((r) => [r.infer_pruned_sotu_ppl, r.infer_original_sotu_ppl]), [[405, 401], [
    405,
    401,
  ]]);
  assert.match(markdownTable(a), /^\| method \| nf4 \| align_steps/);
  assert.throws(() => qualityRows([]), /no runs/);
});

Deno.test("qualityRows: a run without a SOTU figure (older eval.json, or no SOTU stream) shows null", () => {
  const e = run("rand", false, 0, 195);
  e.ppl.loram = p(195, 301, null);
  delete (e.ppl.original as Partial<ReturnType<typeof p>>).out_of_domain_sotu; // written before SOTU existed
  const q = qualityRows([e]);
  assert.equal(q[0].out_of_domain_sotu_ppl, null);
  assert.equal(q[3].out_of_domain_sotu_ppl, null);
  assert.equal(q[2].out_of_domain_sotu_ppl, 405);
  assert.match(markdownTable(q), /\| large w\/o FT \| 200 \| – \| – \| 300 \| – \|/);
  assert.equal(ablationRows([e])[0].infer_original_sotu_ppl, null);
});

Deno.test("memoryRows: ledger vs formula weight bytes per run; NF4 offsets kept on the host count for the formula", () => {
  const f = run("rand", false, 0, 195);
  f.params = {
    ...f.params,
    params: 1000,
    pruned_params: 600,
    measured_weight_bytes: 2400,
    formula_weight_bytes: 2400,
    host_offset_bytes: 0,
  };
  const q = run("stru", true, 0, 195);
  q.params = {
    ...q.params,
    params: 1000,
    pruned_params: 600,
    measured_weight_bytes: 900,
    formula_weight_bytes: 956,
    host_offset_bytes: 56,
  };
  const off = run("rand", false, 0, 195);
  off.params = { ...f.params, measured_weight_bytes: 2404 };
  assert.deepEqual(memoryRows([f, q, off]), [
    {
      run: "LoRAM-Rand",
      params: 1000,
      pruned_params: 600,
      ledger_weight_bytes: 2400,
      formula_weight_bytes: 2400,
      host_offset_bytes: 0,
      match: true,
    },
    {
      run: "QLoRAM-Stru",
      params: 1000,
      pruned_params: 600,
      ledger_weight_bytes: 900,
      formula_weight_bytes: 956,
      host_offset_bytes: 56,
      match: true,
    },
    {
      run: "LoRAM-Rand",
      params: 1000,
      pruned_params: 600,
      ledger_weight_bytes: 2404,
      formula_weight_bytes: 2400,
      host_offset_bytes: 0,
      match: false,
    },
  ]);
});

/** A perplexity scored on documents: each document's nll per token (`rates`) over `tokens` tokens. */
function scored(rates: number[], tokens: number[], out = 300) {
  const scores = rates.map((r, i) => ({ nll: r * tokens[i], tokens: tokens[i] }));
  const ci = bootstrapPerplexity(scores);
  return { ...p(ci.perplexity, out), documents: { in_domain: { lo: ci.lo, hi: ci.hi, scores } } };
}
const TOKENS = [40, 25, 61, 33, 50, 18];
const BASE = [5.3, 5.1, 5.4, 5.2, 5.25, 5.35];
/** A run whose models are scored on the same six documents. */
function scoredRun(loram: number[], small = BASE.map((r) => r + 0.05), original = BASE): LoramEval {
  const e = run("rand", false, 0, 0);
  e.ppl = {
    original: scored(original, TOKENS),
    pruned: scored(BASE.map((r) => r + 0.2), TOKENS),
    pruned_aligned: null,
    pruned_lora: scored(small, TOKENS),
    loram: scored(loram, TOKENS),
  };
  return e;
}

Deno.test("qualityRows / ablationRows on documents: in-domain intervals and the paired ratios vs large w/o FT and vs small + LoRA", () => {
  // LoRAM 0.1 nats per token below the large model on every document, 0.15 below small + LoRA: the
  // paired ratios are exp(-0.1) and exp(-0.15) on every resample, so the intervals are those points.
  const e = scoredRun(BASE.map((r) => r - 0.1));
  const q = qualityRows([e]);
  const loram = q.find((r) => r.model === "LoRAM-Rand (infer large)")!;
  const r4 = (v: number) => Math.round(v * 1e4) / 1e4;
  assert.deepEqual(
    [loram.ratio_vs_large_in, loram.ratio_vs_large_in_lo, loram.ratio_vs_large_in_hi],
    [r4(Math.exp(-0.1)), r4(Math.exp(-0.1)), r4(Math.exp(-0.1))],
  );
  assert.deepEqual(
    [loram.ratio_vs_small_lora_in, loram.ratio_vs_small_lora_in_lo, loram.ratio_vs_small_lora_in_hi],
    [r4(Math.exp(-0.15)), r4(Math.exp(-0.15)), r4(Math.exp(-0.15))],
  );
  const ci = e.ppl.loram.documents!.in_domain!;
  assert.deepEqual([loram.in_domain_ppl_lo, loram.in_domain_ppl_hi], [
    Math.round(ci.lo * 100) / 100,
    Math.round(ci.hi * 100) / 100,
  ]);
  assert.ok((loram.in_domain_ppl_lo as number) < (loram.in_domain_ppl_hi as number));
  // The large model is the reference (no ratio); the small models have their ratio vs large only.
  assert.equal(q[0].ratio_vs_large_in, null);
  const small = q.find((r) => r.model === "LoRAM-Rand: small + LoRA (infer small)")!;
  assert.equal(small.ratio_vs_large_in, r4(Math.exp(0.05)));
  assert.equal(small.ratio_vs_small_lora_in, null);
  const [a] = ablationRows([e]);
  assert.deepEqual([a.ratio_vs_small_lora_in, a.ratio_vs_large_in], [
    r4(Math.exp(-0.15)),
    r4(Math.exp(-0.1)),
  ]);
  assert.deepEqual(Object.keys(a).slice(-6), [
    "ratio_vs_small_lora_in",
    "ratio_vs_small_lora_in_lo",
    "ratio_vs_small_lora_in_hi",
    "ratio_vs_large_in",
    "ratio_vs_large_in_lo",
    "ratio_vs_large_in_hi",
  ]);
  assert.match(markdownTable(q), /\| ratio_vs_large_in \| ratio_vs_large_in_lo \|/);
});

Deno.test("centralClaim: holds only when both paired intervals lie below 1", () => {
  const better = centralClaim(scoredRun(BASE.map((r) => r - 0.1)));
  assert.equal(better.holds, true);
  assert.match(
    better.text,
    /ratio 0\.905, 95% CI 0\.905–0\.905: better\) and small \+ LoRA .*: better\): the claim holds$/,
  );
  assert.equal(better.vs_large!.documents, 6);
  // Lower perplexity than both, but by changes of both signs across documents: no change is not excluded.
  const mixed = centralClaim(scoredRun(BASE.map((r, i) => r + (i % 2 === 0 ? -0.3 : 0.25))));
  assert.ok(mixed.vs_large!.value < 1 && mixed.vs_small_lora!.value < 1);
  assert.ok(mixed.vs_large!.lo < 1 && mixed.vs_large!.hi > 1);
  assert.equal(mixed.holds, false);
  assert.match(mixed.text, /the interval holds 1\).*: the claim does not hold$/);
  // Worse than the large model on every document.
  const worse = centralClaim(scoredRun(BASE.map((r) => r + 0.02), BASE.map((r) => r + 0.05)));
  assert.equal(worse.holds, false);
  assert.match(worse.text, /vs large w\/o FT \d+\.\d\d \(ratio 1\.020, 95% CI 1\.020–1\.020: worse\)/);
  // One document (a genre with one validation document): a point, not an interval.
  const one = run("rand", false, 0, 0);
  const doc = (rate: number) => scored([rate], [50]);
  one.ppl = { ...one.ppl, original: doc(5.3), pruned_lora: doc(5.25), loram: doc(5.1) };
  const c1 = centralClaim(one);
  assert.equal(c1.holds, false);
  assert.match(c1.text, /one document, no interval/);
  // Streams (or an eval.json from before documents): lower perplexity alone decides nothing.
  const stream = centralClaim(run("rand", false, 0, 195));
  assert.equal(stream.holds, false);
  assert.equal(stream.vs_large, null);
  assert.match(
    stream.text,
    /195\.00 vs large w\/o FT 200\.00 \(no interval: not scored on documents\) and small \+ LoRA 210\.00 \(no interval: not scored on documents\): the claim does not hold/,
  );
});
