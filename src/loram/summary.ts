/**
 * The compact LoRAM table: one row per run, read from {@link qualityRows}' rows. It puts the three
 * in-domain perplexities of a run side by side (pruned → pruned + LoRA → LoRAM, the recovered adapter
 * merged into the original), the two paired ratios the central claim rests on with their 95%
 * intervals, and out-of-domain perplexity of LoRA inferred on the pruned model next to LoRAM's.
 * `examples/loram.ts` writes it as `summary.md`; the README's LoRAM table is that file.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { summaryRows } from "./summary.ts";
 * const base = { in_domain_ppl_lo: 90, in_domain_ppl_hi: 110, out_of_domain_ppl: 80, out_of_domain_sotu_ppl: 30 };
 * const rows = summaryRows([{ model: "large w/o FT", in_domain_ppl: 100, reduction: 1, ...base }], "cj");
 * assert.equal(rows[0]["in-domain (cj): pruned → + LoRA → LoRAM"], "100.0 (90.0–110.0)");
 * ```
 * @module
 */
import type { TableRow } from "./tables.ts";

const INFER_LARGE = " (infer large)";

/** One decimal, or "–" when absent. */
const f1 = (v: TableRow[string] | undefined) => (typeof v === "number" ? v.toFixed(1) : "–");

/** `value (lo–hi)` of a ratio column, or "–" when the row has none. */
function ratio(r: TableRow, name: string): string {
  const v = r[name];
  if (typeof v !== "number") return "–";
  return `${v.toFixed(3)} (${(r[`${name}_lo`] as number).toFixed(3)}–${
    (r[`${name}_hi`] as number).toFixed(3)
  })`;
}

/**
 * The compact table from the quality rows of one original model: the large model without and with
 * LoRA (when trained), then every run in the order it was given.
 *
 * @param quality rows from {@link qualityRows} (or their JSON in `table.json`)
 * @param genre the in-domain genre, for the column name
 * @throws {RangeError} when the rows lack the large model w/o FT or a run lacks one of its three rows
 */
export function summaryRows(quality: readonly TableRow[], genre: string): TableRow[] {
  const byModel = new Map(quality.map((r) => [String(r.model), r]));
  const get = (model: string) => {
    const r = byModel.get(model);
    if (!r) {
      throw new RangeError(
        `Cannot build the LoRAM summary: no quality row "${model}"; pass qualityRows' rows`,
      );
    }
    return r;
  };
  const inCol = `in-domain (${genre}): pruned → + LoRA → LoRAM`;
  const mib = (
    r: TableRow,
  ) => (typeof r.peak_weights_mib === "number" ? `${r.peak_weights_mib.toFixed(2)} MiB` : "–");
  const large = get("large w/o FT");
  const rows: TableRow[] = [{
    run: "large w/o FT",
    reduction: "1.00×",
    "weights while training": "–",
    [inCol]: `${f1(large.in_domain_ppl)} (${f1(large.in_domain_ppl_lo)}–${f1(large.in_domain_ppl_hi)})`,
    "LoRAM / large w/o FT": "–",
    "LoRAM / + LoRA": "–",
    "other genres: + LoRA / LoRAM": f1(large.out_of_domain_ppl),
    "SOTU: + LoRA / LoRAM": f1(large.out_of_domain_sotu_ppl),
  }];
  const lora = byModel.get("large + LoRA");
  if (lora) {
    rows.push({
      run: "large + LoRA",
      reduction: "1.00×",
      "weights while training": mib(lora),
      [inCol]: f1(lora.in_domain_ppl),
      "LoRAM / large w/o FT": ratio(lora, "ratio_vs_large_in"),
      "LoRAM / + LoRA": "–",
      "other genres: + LoRA / LoRAM": f1(lora.out_of_domain_ppl),
      "SOTU: + LoRA / LoRAM": f1(lora.out_of_domain_sotu_ppl),
    });
  }
  for (const r of quality) {
    const model = String(r.model);
    if (!model.endsWith(INFER_LARGE)) continue;
    const label = model.slice(0, -INFER_LARGE.length);
    const pruned = get(`${label}: small w/o FT`);
    const small = get(`${label}: small + LoRA (infer small)`);
    rows.push({
      run: label.replace("+align", " + align"),
      reduction: `${(pruned.reduction as number).toFixed(2)}×`,
      "weights while training": mib(small),
      [inCol]: `${f1(pruned.in_domain_ppl)} → ${f1(small.in_domain_ppl)} → ${f1(r.in_domain_ppl)}`,
      "LoRAM / large w/o FT": ratio(r, "ratio_vs_large_in"),
      "LoRAM / + LoRA": ratio(r, "ratio_vs_small_lora_in"),
      "other genres: + LoRA / LoRAM": `${f1(small.out_of_domain_ppl)} / ${f1(r.out_of_domain_ppl)}`,
      "SOTU: + LoRA / LoRAM": `${f1(small.out_of_domain_sotu_ppl)} / ${f1(r.out_of_domain_sotu_ppl)}`,
    });
  }
  return rows;
}
