/**
 * What a LoRAM run's perplexities are scored on, written next to its config as `held_out.json`: per
 * held-out domain the number of documents (or a stream), the tokens scored and a checksum of their
 * ids. A run resumed with other held-out text (another `--eval-docs`, `--eval-tokens` or genre
 * split) would pair scores of different documents, so `loramRun` refuses it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { heldOutSummary } from "./held_out.ts";
 * const docs = [Int32Array.of(1, 2, 3), Int32Array.of(4, 5)];
 * const a = heldOutSummary({ evalIn: docs, evalOut: Int32Array.of(7, 8, 9) }, 2);
 * assert.deepEqual(a.in_domain.documents, 2);
 * assert.deepEqual(a.in_domain.tokens, 4); // the first 2 ids of each document
 * assert.notDeepEqual(heldOutSummary({ evalIn: docs.slice(1), evalOut: Int32Array.of(7, 8, 9) }, 2), a);
 * ```
 * @module
 */
import { bytesOf, fnv1a } from "../host/fnv.ts";
import type { HeldOut, LoramData } from "./data.ts";

/** One held-out domain: documents (`null` for a stream), scored tokens and an FNV-1a checksum of them. */
export interface HeldOutDomainSummary {
  readonly documents: number | null;
  readonly tokens: number;
  readonly checksum: string;
}

/** `held_out.json`: every held-out domain of a run, as scored (the first `evalTokens` ids of each). */
export type HeldOutSummary = Record<string, HeldOutDomainSummary>;

/** The summary of `data`'s held-out domains, capped at `evalTokens` ids per document or stream. */
export function heldOutSummary(
  data: Pick<LoramData, "evalIn" | "evalOut" | "evalSotu">,
  evalTokens: number,
): HeldOutSummary {
  const domains: [string, HeldOut | undefined][] = [
    ["in_domain", data.evalIn],
    ["out_of_domain", data.evalOut],
    ["out_of_domain_sotu", data.evalSotu],
  ];
  const out: HeldOutSummary = {};
  for (const [name, held] of domains) {
    if (held === undefined) continue;
    const parts = held instanceof Int32Array ? [held] : held;
    // FNV-1a over the document count, then each document's scored length and ids.
    let hash = fnv1a(bytesOf(Int32Array.of(parts.length)));
    let tokens = 0;
    for (const part of parts) {
      const ids = part.subarray(0, evalTokens);
      hash = fnv1a(bytesOf(Int32Array.of(ids.length)), hash);
      hash = fnv1a(bytesOf(ids), hash);
      tokens += ids.length;
    }
    out[name] = {
      documents: held instanceof Int32Array ? null : held.length,
      tokens,
      checksum: hash.toString(16).padStart(8, "0"),
    };
  }
  return out;
}
