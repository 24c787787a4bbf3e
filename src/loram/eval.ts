/**
 * LoRAM's evaluation of one model on a run's held-out data ([LoRAM](https://arxiv.org/abs/2502.13533)
 * §4): perplexity in-domain (the genre trained on), out-of-domain on the other Brown genres, and
 * out-of-domain on the State of the Union addresses when the data has them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "../models/load.ts";
 * import { domainPerplexity } from "./eval.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/llama-gqa-tied-f32", { device });
 * const ids = Int32Array.from({ length: 40 }, (_, i) => (7 * i) % 100);
 * const p = await domainPerplexity(model, { evalIn: ids, evalOut: ids.subarray(3) }, { evalTokens: 32, evalBlock: 16 });
 * assert.ok(p.in_domain > 1 && p.out_of_domain > 1);
 * assert.equal(p.out_of_domain_sotu, null); // no SOTU stream given
 * ```
 * @module
 */
import type { CausalLM } from "../models/causal_lm.ts";
import { perplexity } from "../models/perplexity.ts";
import type { LoramData } from "./data.ts";

/** Perplexity in and out of domain (`null`: the data had no SOTU stream). */
export interface DomainPpl {
  /** The Brown genre trained on (validation split). */
  in_domain: number;
  /** The other Brown genres (validation split). */
  out_of_domain: number;
  /** The State of the Union addresses (validation split). */
  out_of_domain_sotu: number | null;
}

/** How much of each stream is scored, in windows of how many tokens. */
export interface DomainPplOptions {
  /** Tokens scored per domain (the first ones of each stream). */
  evalTokens: number;
  /** Tokens per perplexity window. */
  evalBlock: number;
}

/**
 * The perplexity of `model` on the first `evalTokens` ids of each held-out stream of `data`.
 *
 * @throws {RangeError} when a stream has fewer than 2 ids (from `perplexity`)
 */
export async function domainPerplexity(
  model: CausalLM,
  data: Pick<LoramData, "evalIn" | "evalOut" | "evalSotu">,
  options: DomainPplOptions,
): Promise<DomainPpl> {
  const { evalTokens, evalBlock } = options;
  const ppl = async (ids: Int32Array) =>
    (await perplexity(model, ids.subarray(0, evalTokens), { blockSize: evalBlock })).perplexity;
  return {
    in_domain: await ppl(data.evalIn),
    out_of_domain: await ppl(data.evalOut),
    out_of_domain_sotu: data.evalSotu ? await ppl(data.evalSotu) : null,
  };
}

/** `in-domain ppl 175.90, out-of-domain 230.12, SOTU 410.55` (SOTU left out when not measured). */
export function formatDomainPpl(p: DomainPpl): string {
  return `in-domain ppl ${p.in_domain.toFixed(2)}, out-of-domain ${p.out_of_domain.toFixed(2)}` +
    (p.out_of_domain_sotu === null || p.out_of_domain_sotu === undefined
      ? ""
      : `, SOTU ${p.out_of_domain_sotu.toFixed(2)}`);
}
