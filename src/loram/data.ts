/**
 * LoRAM's data: in-domain is one Brown genre; out-of-domain is the other Brown genres and a second
 * text domain, the State of the Union addresses (political speech, `loadSotu`). Alignment
 * (continual pre-training, B.4) and calibration read the other genres' *training* split, so they
 * never see the in-domain text, and every held-out document comes from a *validation* split
 * (`splitDocuments`, deterministic by document id): training and evaluation text are disjoint.
 * Held-out text stays whole documents (their openings), so evaluation can give intervals over
 * documents (`domainPerplexity`, `pairedRatio`).
 *
 * @example
 * ```ts ignore
 * const tokenizer = await Tokenizer.fromDir("examples/models/brown-dense");
 * const data = await brownLoramData(tokenizer, "cj", { block: 128 });
 * data.evalIn; // cj's 10 validation documents, the first 512 ids of each
 * data.evalSotu; // 16 of the 23 SOTU validation addresses, evenly spaced through the years
 * ```
 * @module
 */
import { BROWN_GENRES, type BrownDocument, type BrownGenre, loadBrown } from "../data/brown.ts";
import { type DocumentInput, type TokenEncoder, tokenizeAndPack, tokenStream } from "../data/pack.ts";
import { loadSotu } from "../data/sotu.ts";
import { splitDocuments } from "../data/splits.ts";

/**
 * One held-out domain: documents (each scored from its own start; intervals over documents), or a
 * stream (scored as one text, no interval).
 */
export type HeldOut = Int32Array | readonly Int32Array[];

/** The token data of a run (blocks are `T + 1` ids, as the Trainer reads them). */
export interface LoramData {
  /** General text: alignment and calibration blocks. */
  readonly align: readonly Int32Array[];
  /** In-domain training blocks. */
  readonly train: readonly Int32Array[];
  /** In-domain held-out documents (or a stream). */
  readonly evalIn: HeldOut;
  /** Out-of-domain held-out documents (Brown: the other genres), or a stream. */
  readonly evalOut: HeldOut;
  /** Held-out documents of the second out-of-domain text (the State of the Union addresses); optional. */
  readonly evalSotu?: HeldOut;
  /** In-domain eval blocks for the training curve (`train.evalEvery`). */
  readonly evalBlocks?: readonly Int32Array[];
}

/** Options of {@link brownLoramData}. */
export interface BrownLoramDataOptions {
  /** Tokens each block predicts (`T`; blocks hold `T + 1` ids). Default 128. */
  block?: number;
  /** Tokens kept per held-out document (its opening, EOS last when it fits). Default 512. */
  evalTokens?: number;
  /**
   * Held-out documents per domain at most: this many, evenly spaced through the domain's validation
   * documents (so every genre and era contributes). Default 16.
   */
  evalDocs?: number;
  /** In-domain eval blocks for the training curve. Default 16. */
  evalBlocks?: number;
  /** Also build `evalSotu` from the SOTU validation split (default true). */
  sotu?: boolean;
  /**
   * Alignment and calibration text: this many of the other genres' training documents, evenly
   * spaced through them (so every genre contributes); default all of them (about 1M tokens, the
   * slowest part here). 0 gives no alignment blocks (enough for `rand` without alignment).
   */
  alignDocs?: number;
}

/**
 * Held-out documents: at most `docs` of `documents`, evenly spaced through them, each the first
 * `tokens` ids of its text with EOS after it (only a prefix of the text is tokenized: 16 characters
 * per wanted id, a wide margin over BPE's 3–5). Deterministic: the same input gives the same ids.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { heldOutDocuments } from "./data.ts";
 * const tok = { eosTokenId: 0, encode: (s: string) => [...s].map((c) => c.charCodeAt(0)) };
 * assert.deepEqual(heldOutDocuments(["ab", "cdef", "g"], tok, { tokens: 3, docs: 2 }), [
 *   Int32Array.of(97, 98, 0), // "ab" + EOS
 *   Int32Array.of(99, 100, 101), // "cdef", cut
 * ]);
 * ```
 */
export function heldOutDocuments(
  documents: readonly DocumentInput[],
  tokenizer: TokenEncoder,
  options: { tokens: number; docs: number },
): Int32Array[] {
  const chars = options.tokens * 16;
  return evenlySpaced(documents, options.docs).map((d) =>
    tokenStream([(typeof d === "string" ? d : d.text).slice(0, chars)], tokenizer, {
      addEos: true,
      maxTokens: options.tokens,
    })
  );
}

/**
 * In-domain (`genre`) training blocks and held-out documents; out-of-domain held-out documents from
 * the other genres and from the State of the Union addresses (validation splits, at most `evalDocs`
 * each, see {@link heldOutDocuments}); alignment blocks from the other genres' training split.
 *
 * @throws {RangeError} for an unknown genre, a bad count, or a genre without validation documents
 */
export async function brownLoramData(
  tokenizer: TokenEncoder,
  genre: BrownGenre,
  options: BrownLoramDataOptions = {},
): Promise<LoramData> {
  if (!BROWN_GENRES.includes(genre)) {
    throw new RangeError(
      `Unknown Brown genre ${JSON.stringify(genre)}: expected one of ${BROWN_GENRES.join(", ")}`,
    );
  }
  const { block = 128, evalTokens = 512, evalDocs = 16, evalBlocks = 16, sotu = true, alignDocs } = options;
  if (alignDocs !== undefined && !(Number.isInteger(alignDocs) && alignDocs >= 0)) {
    throw new RangeError(`alignDocs must be a non-negative integer: received ${alignDocs}`);
  }
  for (const [name, v, min] of [["evalTokens", evalTokens, 2], ["evalDocs", evalDocs, 1]] as const) {
    if (!(Number.isInteger(v) && v >= min)) {
      throw new RangeError(`${name} must be an integer ≥ ${min}: received ${v}`);
    }
  }
  const splits = splitDocuments(await loadBrown());
  const of = (docs: BrownDocument[], g: string) => docs.filter((d) => d.genre === g);
  const pack = (docs: BrownDocument[]) =>
    tokenizeAndPack(docs, tokenizer, { blockSize: block + 1, stride: block }).blocks;
  const held = (docs: readonly DocumentInput[]) =>
    heldOutDocuments(docs, tokenizer, { tokens: evalTokens, docs: evalDocs });
  const inDomain = of(splits.validation, genre);
  if (inDomain.length === 0) {
    const counts = BROWN_GENRES.map((g) => `${g} ${of(splits.validation, g).length}`).join(", ");
    throw new RangeError(
      `Cannot evaluate on Brown genre ${genre}: it has no validation document; choose a genre that has ` +
        `(validation documents: ${counts})`,
    );
  }
  const sotuDocs = sotu ? splitDocuments(await loadSotu()).validation : [];
  return {
    align: pack(evenlySpaced(splits.train.filter((d) => d.genre !== genre), alignDocs)),
    train: pack(of(splits.train, genre)),
    evalIn: held(inDomain),
    evalOut: held(splits.validation.filter((d) => d.genre !== genre)),
    ...(sotu ? { evalSotu: held(sotuDocs) } : {}),
    evalBlocks: pack(inDomain).slice(0, evalBlocks),
  };
}

/** `n` items evenly spaced through `items` (all of them when `n` is undefined or not smaller). */
function evenlySpaced<T>(items: readonly T[], n: number | undefined): T[] {
  if (n === undefined || n >= items.length) return [...items];
  return Array.from({ length: n }, (_, i) => items[Math.floor((i * items.length) / n)]);
}
