import assert from "node:assert/strict";
import type { LoramEval } from "../../src/loram/pipeline.ts";
import { parseLoramRunConfig } from "../../src/loram/run_config.ts";
import { ablationRows, centralClaim, markdownTable, qualityRows, runLabel } from "../../src/loram/tables.ts";

const p = (i: number, o: number) => ({ in_domain: i, out_of_domain: o });
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
  assert.equal(q[1].peak_weights_mib, 2);
  assert.equal(q[1].tokens_per_s, 50);
  assert.equal(q[0].trainable_params, null);
  const a = ablationRows(runs);
  assert.deepEqual(
    a.map((r) => [r.align_steps, r.pruned_in_ppl, r.infer_pruned_in_ppl, r.infer_original_in_ppl]),
    [[0, 220, 210, 195], [10, 215, 210, 205]],
  );
  assert.match(markdownTable(a), /^\| method \| nf4 \| align_steps/);
  assert.throws(() => qualityRows([]), /no runs/);
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
