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
 * - on runs scored on documents, both tables carry 95% bootstrap intervals over documents: the
 *   in-domain perplexity's (`in_domain_ppl_lo`/`_hi`) and, for the two pairs the claim rests on, the
 *   paired ratio of in-domain perplexities (`ratio_vs_large_in`: LoRAM, or any model, over the large
 *   model w/o FT; `ratio_vs_small_lora_in`: LoRAM over the small model + LoRA), each with `_lo`/`_hi`
 *   (null where not scored on documents);
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
import type { Interval } from "../metrics/bootstrap.ts";
import { type DomainPpl, pairedRatio } from "./eval.ts";
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
const r4 = (v: number) => Math.round(v * 1e4) / 1e4;
/** Runs written before SOTU was measured have no `out_of_domain_sotu`: null, shown as "–". */
const sotu = (
  p: DomainPpl,
) => (p.out_of_domain_sotu === undefined || p.out_of_domain_sotu === null ? null : r2(p.out_of_domain_sotu));

/** The in-domain perplexity's interval over documents (null when not scored on documents). */
function inCols(p: DomainPpl): TableRow {
  const d = p.documents?.in_domain;
  return { in_domain_ppl_lo: d ? r2(d.lo) : null, in_domain_ppl_hi: d ? r2(d.hi) : null };
}

/** `NAME`, `NAME_lo`, `NAME_hi`: a paired ratio and its interval (nulls without one). */
function ratioCols(name: string, r: Interval | null): TableRow {
  return {
    [name]: r ? r4(r.value) : null,
    [`${name}_lo`]: r ? r4(r.lo) : null,
    [`${name}_hi`]: r ? r4(r.hi) : null,
  };
}

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

/**
 * The quality table (D.2.2); `runs` all on the same original model and data. Columns: `model`,
 * `in_domain_ppl` (+ `_lo`, `_hi`), `out_of_domain_ppl`, `out_of_domain_sotu_ppl`, `reduction`,
 * `ratio_vs_large_in` (+ `_lo`, `_hi`; every model but the large w/o FT), `ratio_vs_small_lora_in`
 * (+ `_lo`, `_hi`; the LoRAM rows), then training: trainable parameters, peak MiB, tokens/s.
 */
export function qualityRows(runs: readonly LoramEval[], large?: LargeLoraResult): TableRow[] {
  if (runs.length === 0) throw new RangeError("Cannot build the LoRAM quality table: no runs");
  const original = runs[0].ppl.original;
  const row = (
    model: string,
    p: DomainPpl,
    ratio: number,
    t: TrainStats | null,
    vs: { large?: DomainPpl; small?: DomainPpl },
  ): TableRow => ({
    model,
    in_domain_ppl: r2(p.in_domain),
    ...inCols(p),
    out_of_domain_ppl: r2(p.out_of_domain),
    out_of_domain_sotu_ppl: sotu(p),
    reduction: r2(ratio),
    ...ratioCols("ratio_vs_large_in", vs.large ? pairedRatio(p, vs.large, "in_domain") : null),
    ...ratioCols("ratio_vs_small_lora_in", vs.small ? pairedRatio(p, vs.small, "in_domain") : null),
    ...trainCols(t),
  });
  const rows = [row("large w/o FT", original, 1, null, {})];
  if (large) rows.push(row("large + LoRA", large.ppl, 1, large.train, { large: original }));
  for (const e of runs) {
    const label = runLabel(e);
    const ratio = e.config.nf4 ? e.params.qloram_nf4_reduction : e.params.loram_reduction;
    // Each run's models pair with the original as that run measured it (on the same documents).
    const { original: own, pruned_lora: small, loram } = e.ppl;
    rows.push(
      row(`${label}: small w/o FT`, e.ppl.pruned_aligned ?? e.ppl.pruned, ratio, null, { large: own }),
    );
    rows.push(row(`${label}: small + LoRA (infer small)`, small, ratio, e.train, { large: own }));
    rows.push(row(`${label} (infer large)`, loram, ratio, e.train, { large: own, small }));
  }
  return rows;
}

/**
 * The ablation table (D.2.4): alignment × inference on the pruned vs the recovered original, and
 * the paired in-domain ratios of the recovered original (LoRAM) over the pruned model with LoRA
 * (`ratio_vs_small_lora_in`) and over the large model w/o FT (`ratio_vs_large_in`), each with
 * `_lo`/`_hi`.
 */
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
    ...ratioCols("ratio_vs_small_lora_in", pairedRatio(e.ppl.loram, e.ppl.pruned_lora, "in_domain")),
    ...ratioCols("ratio_vs_large_in", pairedRatio(e.ppl.loram, e.ppl.original, "in_domain")),
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

/** LoRAM's central claim on one run, as {@link centralClaim} decides it. */
export interface CentralClaim {
  holds: boolean;
  text: string;
  /** In-domain `ppl(LoRAM) / ppl(large w/o FT)` with its paired 95% interval (null: no documents). */
  vs_large: Interval | null;
  /** In-domain `ppl(LoRAM) / ppl(small + LoRA)` with its paired 95% interval (null: no documents). */
  vs_small_lora: Interval | null;
}

/**
 * LoRAM's central claim on one run: the recovered adapter on the large model beats the large
 * model without fine-tuning and the small model with LoRA, in-domain. It holds only when both paired
 * ratios' 95% intervals over documents lie below 1 (no change is excluded); runs not scored on at least
 * 2 documents cannot show it.
 */
export function centralClaim(e: LoramEval): CentralClaim {
  const { original, pruned_lora: small, loram } = e.ppl;
  const vsLarge = pairedRatio(loram, original, "in_domain");
  const vsSmall = pairedRatio(loram, small, "in_domain");
  const f = (v: number) => v.toFixed(2);
  const verdict = (r: Interval | null) => {
    if (r === null) return { better: false, text: "no interval: not scored on documents" };
    const ci = `ratio ${r.value.toFixed(3)}, 95% CI ${r.lo.toFixed(3)}–${r.hi.toFixed(3)}`;
    if (r.documents < 2) return { better: false, text: `${ci}: one document, no interval` };
    if (r.hi < 1) return { better: true, text: `${ci}: better` };
    return { better: false, text: `${ci}: ${r.lo > 1 ? "worse" : "the interval holds 1"}` };
  };
  const a = verdict(vsLarge);
  const b = verdict(vsSmall);
  const holds = a.better && b.better;
  return {
    holds,
    text: `${runLabel(e)}: in-domain ppl ${f(loram.in_domain)} vs large w/o FT ${f(original.in_domain)} ` +
      `(${a.text}) and small + LoRA ${f(small.in_domain)} (${b.text}): the claim ${
        holds ? "holds" : "does not hold"
      }`,
    vs_large: vsLarge,
    vs_small_lora: vsSmall,
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
