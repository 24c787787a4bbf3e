/**
 * LoRAM's tables from finished runs ([LoRAM](https://arxiv.org/abs/2502.13533) Table 1, Fig. 6;
 * ALGORITHMS.md D.2.2 and D.2.4), as rows for Arrow tables, reports and Markdown:
 *
 * - quality: large w/o FT, large + LoRA (when given), and per run the pruned model w/o FT, the
 *   pruned model with its adapter (inference on the small model) and LoRAM (the recovered adapter
 *   merged into the original); perplexity in-domain (the genre trained on) and out-of-domain (the
 *   other Brown genres; the State of the Union addresses), reduction ratio, trainable parameters,
 *   peak ledger bytes by category during training, tokens/s;
 * - ablation: per run, alignment on/off × inference on the pruned vs the recovered original model;
 * - memory: per run, the parameter bytes the ledger held while LoRA trained next to the formula.
 *
 * The training curves (D.2.3) are in `curves.ts`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { markdownTable } from "./tables.ts";
 * assert.equal(markdownTable([{ a: 1, b: "x" }]), "| a | b |\n| --: | --- |\n| 1 | x |");
 * ```
 * @module
 */
import type { DomainPpl } from "./eval.ts";
import type { LoramEval } from "./pipeline.ts";
import type { TrainStats } from "./train_lora.ts";

/** One row of a table: column → value. */
export type TableRow = Record<string, string | number | boolean | null>;

/** A LoRA baseline trained on the original model (the paper's "large + LoRA"). */
export interface LargeLoraResult {
  ppl: DomainPpl;
  train: TrainStats;
}

const MIB = 2 ** 20;
const mib = (b: number | undefined) => (b === undefined ? null : Math.round((b / MIB) * 100) / 100);
const r2 = (v: number) => Math.round(v * 100) / 100;
/** Runs written before SOTU was measured have no `out_of_domain_sotu`: null, shown as "–". */
const sotu = (
  p: DomainPpl,
) => (p.out_of_domain_sotu === undefined || p.out_of_domain_sotu === null ? null : r2(p.out_of_domain_sotu));

function trainCols(t: TrainStats | null): TableRow {
  return {
    trainable_params: t?.trainable_params ?? null,
    peak_weights_mib: mib(t?.peak_bytes.weights),
    peak_lora_mib: mib(t?.peak_bytes.lora),
    peak_grads_mib: mib(t?.peak_bytes.grads),
    peak_optimizer_mib: mib(t?.peak_bytes.optimizer),
    peak_activations_mib: mib(t?.peak_bytes.activations),
    peak_total_mib: mib(t?.peak_bytes.total),
    tokens_per_s: t ? Math.round(t.tokens_per_s) : null,
  };
}

/** The label of a run: `LoRAM-Rand`, `QLoRAM-Stru`, with `+align` when aligned. */
export function runLabel(e: LoramEval): string {
  const m = e.config.method;
  return `${e.config.nf4 ? "QLoRAM" : "LoRAM"}-${m[0].toUpperCase()}${m.slice(1)}${
    e.config.align.steps > 0 ? "+align" : ""
  }`;
}

/** The quality table (D.2.2); `runs` all on the same original model and data. */
export function qualityRows(runs: readonly LoramEval[], large?: LargeLoraResult): TableRow[] {
  if (runs.length === 0) throw new RangeError("Cannot build the LoRAM quality table: no runs");
  const row = (model: string, p: DomainPpl, ratio: number, t: TrainStats | null): TableRow => ({
    model,
    in_domain_ppl: r2(p.in_domain),
    out_of_domain_ppl: r2(p.out_of_domain),
    out_of_domain_sotu_ppl: sotu(p),
    reduction: r2(ratio),
    ...trainCols(t),
  });
  const rows = [row("large w/o FT", runs[0].ppl.original, 1, null)];
  if (large) rows.push(row("large + LoRA", large.ppl, 1, large.train));
  for (const e of runs) {
    const label = runLabel(e);
    const ratio = e.config.nf4 ? e.params.qloram_nf4_reduction : e.params.loram_reduction;
    rows.push(row(`${label}: small w/o FT`, e.ppl.pruned_aligned ?? e.ppl.pruned, ratio, null));
    rows.push(row(`${label}: small + LoRA (infer small)`, e.ppl.pruned_lora, ratio, e.train));
    rows.push(row(`${label} (infer large)`, e.ppl.loram, ratio, e.train));
  }
  return rows;
}

/** The ablation table (D.2.4): alignment × inference on the pruned vs the recovered original. */
export function ablationRows(runs: readonly LoramEval[]): TableRow[] {
  return runs.map((e) => ({
    method: e.config.method,
    nf4: e.config.nf4,
    align_steps: e.config.align.steps,
    pruned_in_ppl: r2((e.ppl.pruned_aligned ?? e.ppl.pruned).in_domain),
    infer_pruned_in_ppl: r2(e.ppl.pruned_lora.in_domain),
    infer_original_in_ppl: r2(e.ppl.loram.in_domain),
    infer_pruned_out_ppl: r2(e.ppl.pruned_lora.out_of_domain),
    infer_original_out_ppl: r2(e.ppl.loram.out_of_domain),
    infer_pruned_sotu_ppl: sotu(e.ppl.pruned_lora),
    infer_original_sotu_ppl: sotu(e.ppl.loram),
  }));
}

/**
 * Parameter memory while LoRA trained (B.7): the ledger's `weights` peak next to the formula from
 * the shapes (f32 `4·N_P`, or NF4 + double-quant bytes of the projections + `4·rest`), the NF4
 * offsets Ferry keeps on the host, and the config-only counts.
 */
export function memoryRows(runs: readonly LoramEval[]): TableRow[] {
  return runs.map((e) => ({
    run: runLabel(e),
    params: e.params.params,
    pruned_params: e.params.pruned_params,
    ledger_weight_bytes: e.params.measured_weight_bytes,
    formula_weight_bytes: e.params.formula_weight_bytes,
    host_offset_bytes: e.params.host_offset_bytes,
    match: e.params.measured_weight_bytes + e.params.host_offset_bytes === e.params.formula_weight_bytes,
  }));
}

/**
 * LoRAM's central claim on one run: the recovered adapter on the large model beats the large
 * model without fine-tuning and the small model with LoRA, in-domain.
 */
export function centralClaim(e: LoramEval): { holds: boolean; text: string } {
  const { original, pruned_lora: small, loram } = e.ppl;
  const beatsLarge = loram.in_domain < original.in_domain;
  const beatsSmall = loram.in_domain < small.in_domain;
  const f = (v: number) => v.toFixed(2);
  return {
    holds: beatsLarge && beatsSmall,
    text: `${runLabel(e)}: in-domain ppl ${f(loram.in_domain)} vs large w/o FT ${f(original.in_domain)} ` +
      `(${beatsLarge ? "better" : "not better"}) and small + LoRA ${f(small.in_domain)} ` +
      `(${beatsSmall ? "better" : "not better"}): the claim ${
        beatsLarge && beatsSmall ? "holds" : "does not hold"
      }`,
  };
}

/** Rows as a Markdown table (numbers right-aligned, null as "–"). */
export function markdownTable(rows: readonly TableRow[]): string {
  if (rows.length === 0) return "";
  const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cell = (v: unknown) => (v === null || v === undefined ? "–" : String(v));
  const numeric = cols.map((c) => rows.every((r) => typeof r[c] === "number" || r[c] === null));
  return [
    `| ${cols.join(" | ")} |`,
    `| ${numeric.map((n) => (n ? "--:" : "---")).join(" | ")} |`,
    ...rows.map((r) => `| ${cols.map((c) => cell(r[c])).join(" | ")} |`),
  ].join("\n");
}
