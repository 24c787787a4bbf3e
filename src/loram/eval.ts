/**
 * LoRAM's evaluation of one model on a run's held-out data ([LoRAM](https://arxiv.org/abs/2502.13533)
 * §4): perplexity in-domain (the genre trained on), out-of-domain on the other Brown genres, and
 * out-of-domain on the State of the Union addresses when the data has them. Held-out documents are
 * scored one by one, so each perplexity has a 95% bootstrap interval over documents and two models
 * scored on the same documents compare by {@link pairedRatio} (a stream is scored as one text, with
 * no interval).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "../models/load.ts";
 * import { domainPerplexity, pairedRatio } from "./eval.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/llama-gqa-tied-f32", { device });
 * const doc = (s: number) => Int32Array.from({ length: 23 }, (_, i) => (s + 7 * i) % 100); // [23]
 * const docs = [doc(1), doc(2), doc(5)];
 * const p = await domainPerplexity(model, { evalIn: docs, evalOut: doc(3) }, { evalTokens: 32, evalBlock: 16 });
 * const ci = p.documents!.in_domain!;
 * assert.ok(ci.lo <= p.in_domain && p.in_domain <= ci.hi && ci.scores.length === 3);
 * assert.equal(p.out_of_domain_sotu, null); // no SOTU text given
 * assert.equal(pairedRatio(p, p, "out_of_domain"), null); // a stream: no interval
 * assert.equal(pairedRatio(p, p, "in_domain")!.value, 1); // the same scores: no change
 * ```
 * @module
 */
import { type DocumentScore, type Interval, pairedBootstrap } from "../metrics/bootstrap.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import { comparedPerplexity } from "../models/perplexity.ts";
import type { HeldOut, LoramData } from "./data.ts";

/** The held-out domains, as the keys of {@link DomainPpl}. */
export type HeldOutDomain = "in_domain" | "out_of_domain" | "out_of_domain_sotu";

/** A domain scored on documents: the 95% bootstrap interval over them and each one's score. */
export interface DomainDocuments {
  /** The perplexity's 95% bootstrap interval over documents. */
  lo: number;
  hi: number;
  /** Summed nll and scored tokens per document, in the data's order (what {@link pairedRatio} pairs). */
  scores: DocumentScore[];
}

/** Perplexity in and out of domain (`null`: the data had no SOTU text). */
export interface DomainPpl {
  /** The Brown genre trained on (validation split). */
  in_domain: number;
  /** The other Brown genres (validation split). */
  out_of_domain: number;
  /** The State of the Union addresses (validation split). */
  out_of_domain_sotu: number | null;
  /**
   * The domains scored on documents (absent for streams, and in runs written before documents).
   */
  documents?: Partial<Record<HeldOutDomain, DomainDocuments>>;
}

/** How much of each held-out text is scored, in windows of how many tokens. */
export interface DomainPplOptions {
  /** Tokens scored per document (its first ones), or per stream. */
  evalTokens: number;
  /** Tokens per perplexity window. */
  evalBlock: number;
}

/**
 * The perplexity of `model` on each held-out domain of `data`: per document (the first `evalTokens`
 * ids of each) with the interval over documents, or on the first `evalTokens` ids of a stream.
 *
 * @throws {RangeError} when a stream, or every document of a domain, has fewer than 2 ids
 */
export async function domainPerplexity(
  model: CausalLM,
  data: Pick<LoramData, "evalIn" | "evalOut" | "evalSotu">,
  options: DomainPplOptions,
): Promise<DomainPpl> {
  const { evalTokens, evalBlock } = options;
  const documents: Partial<Record<HeldOutDomain, DomainDocuments>> = {};
  const score = async (domain: HeldOutDomain, held: HeldOut): Promise<number> => {
    const capped = held instanceof Int32Array
      ? held.subarray(0, evalTokens)
      : held.map((d) => d.subarray(0, evalTokens));
    const r = await comparedPerplexity(model, capped, { blockSize: evalBlock });
    const { perplexity_lo: lo, perplexity_hi: hi } = r.columns;
    if (r.documents && lo !== undefined && hi !== undefined) {
      documents[domain] = { lo, hi, scores: r.documents };
    }
    return r.columns.perplexity;
  };
  const result: DomainPpl = {
    in_domain: await score("in_domain", data.evalIn),
    out_of_domain: await score("out_of_domain", data.evalOut),
    out_of_domain_sotu: data.evalSotu ? await score("out_of_domain_sotu", data.evalSotu) : null,
  };
  return Object.keys(documents).length > 0 ? { ...result, documents } : result;
}

/**
 * `ppl(a) / ppl(b)` on `domain` with its 95% paired bootstrap interval over documents (1000
 * resamples, seed 0: the same scores give the same interval); `hi < 1`: `a` is better beyond the
 * interval, `lo > 1`: worse. `null` when either was not scored on documents.
 *
 * @throws {RangeError} when the two were scored on different documents
 */
export function pairedRatio(a: DomainPpl, b: DomainPpl, domain: HeldOutDomain): Interval | null {
  const x = a.documents?.[domain];
  const y = b.documents?.[domain];
  return x && y ? pairedBootstrap(x.scores, y.scores) : null;
}

/**
 * `in-domain ppl 175.90 [170.12, 181.40], out-of-domain 230.12, SOTU 410.55` (an interval where
 * scored on documents; SOTU left out when not measured).
 */
export function formatDomainPpl(p: DomainPpl): string {
  const f = (domain: HeldOutDomain, v: number) => {
    const d = p.documents?.[domain];
    return v.toFixed(2) + (d ? ` [${d.lo.toFixed(2)}, ${d.hi.toFixed(2)}]` : "");
  };
  return `in-domain ppl ${f("in_domain", p.in_domain)}, out-of-domain ${
    f("out_of_domain", p.out_of_domain)
  }` +
    (p.out_of_domain_sotu === null || p.out_of_domain_sotu === undefined
      ? ""
      : `, SOTU ${f("out_of_domain_sotu", p.out_of_domain_sotu)}`);
}
