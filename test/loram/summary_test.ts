import assert from "node:assert/strict";
import { summaryRows } from "../../src/loram/summary.ts";
import type { TableRow } from "../../src/loram/tables.ts";

/** A quality row as `qualityRows` writes it (only the columns the summary reads). */
function row(model: string, inPpl: number, extra: TableRow = {}): TableRow {
  return {
    model,
    in_domain_ppl: inPpl,
    in_domain_ppl_lo: inPpl - 10,
    in_domain_ppl_hi: inPpl + 12.25,
    out_of_domain_ppl: inPpl - 20,
    out_of_domain_sotu_ppl: inPpl / 3,
    reduction: 1,
    ratio_vs_large_in: null,
    ratio_vs_large_in_lo: null,
    ratio_vs_large_in_hi: null,
    ratio_vs_small_lora_in: null,
    ratio_vs_small_lora_in_lo: null,
    ratio_vs_small_lora_in_hi: null,
    peak_weights_mib: null,
    ...extra,
  };
}
const vsLarge = (v: number) => ({
  ratio_vs_large_in: v,
  ratio_vs_large_in_lo: v - 0.01,
  ratio_vs_large_in_hi: v + 0.02,
});

const QUALITY = [
  row("large w/o FT", 99.06),
  row("large + LoRA", 97.6, { peak_weights_mib: 47.21, ...vsLarge(0.985) }),
  row("LoRAM-Rand+align: small w/o FT", 131.1, { reduction: 1.57, ...vsLarge(1.3) }),
  row("LoRAM-Rand+align: small + LoRA (infer small)", 124, { reduction: 1.57, peak_weights_mib: 30.13 }),
  row("LoRAM-Rand+align (infer large)", 98.84, {
    reduction: 1.57,
    peak_weights_mib: 30.13,
    ...vsLarge(0.998),
    ratio_vs_small_lora_in: 0.797,
    ratio_vs_small_lora_in_lo: 0.777,
    ratio_vs_small_lora_in_hi: 0.8171,
  }),
];

Deno.test("summaryRows: one row per run, the three in-domain perplexities and both paired ratios side by side", () => {
  const rows = summaryRows(QUALITY, "cj");
  assert.deepEqual(rows.map((r) => r.run), ["large w/o FT", "large + LoRA", "LoRAM-Rand + align"]);
  const col = "in-domain (cj): pruned → + LoRA → LoRAM";
  assert.deepEqual(rows.map((r) => r[col]), ["99.1 (89.1–111.3)", "97.6", "131.1 → 124.0 → 98.8"]);
  assert.deepEqual(rows[2], {
    run: "LoRAM-Rand + align",
    reduction: "1.57×",
    "weights while training": "30.13 MiB",
    [col]: "131.1 → 124.0 → 98.8",
    "LoRAM / large w/o FT": "0.998 (0.988–1.018)",
    "LoRAM / + LoRA": "0.797 (0.777–0.817)",
    "other genres: + LoRA / LoRAM": "104.0 / 78.8",
    "SOTU: + LoRA / LoRAM": "41.3 / 32.9",
  });
  assert.equal(rows[1]["LoRAM / large w/o FT"], "0.985 (0.975–1.005)");
  assert.equal(rows[1]["weights while training"], "47.21 MiB");
  // Without a LoRA baseline on the original, that row is left out.
  assert.equal(summaryRows(QUALITY.filter((r) => r.model !== "large + LoRA"), "cj").length, 2);
});

Deno.test("summaryRows: missing rows are named", () => {
  assert.throws(() => summaryRows(QUALITY.slice(1), "cj"), /no quality row "large w\/o FT"/);
  assert.throws(
    () => summaryRows(QUALITY.filter((r) => !String(r.model).endsWith("(infer small)")), "cj"),
    /no quality row "LoRAM-Rand\+align: small \+ LoRA \(infer small\)"/,
  );
});
