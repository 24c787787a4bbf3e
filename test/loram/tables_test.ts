import assert from "node:assert/strict";
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
    "out_of_domain_ppl",
    "out_of_domain_sotu_ppl",
    "reduction",
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
  assert.match(markdownTable(q), /\| large w\/o FT \| 200 \| 300 \| – \|/);
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

Deno.test("centralClaim: holds only when LoRAM beats both the large model w/o FT and the small model + LoRA", () => {
  assert.equal(centralClaim(run("rand", false, 0, 195)).holds, true);
  const c = centralClaim(run("rand", false, 0, 205)); // worse than the large model w/o FT (200)
  assert.equal(c.holds, false);
  assert.match(
    c.text,
    /205\.00 vs large w\/o FT 200\.00 \(not better\) and small \+ LoRA 210\.00 \(better\): the claim does not hold/,
  );
});
