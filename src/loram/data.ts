/**
 * LoRAM's data: in-domain is one Brown genre; out-of-domain is the other Brown genres and a second
 * text domain, the State of the Union addresses (political speech, `loadSotu`). Alignment
 * (continual pre-training, B.4) and calibration read the other genres' *training* split, so they
 * never see the in-domain text, and every held-out stream comes from a *validation* split
 * (`splitDocuments`, deterministic by document id): training and evaluation text are disjoint.
 *
 * @example
 * ```ts ignore
 * const tokenizer = await Tokenizer.fromDir("examples/models/brown-dense");
 * const data = await brownLoramData(tokenizer, "cn", { block: 128 });
 * data.evalSotu; // 4096 ids: the opening of every SOTU validation address, in equal shares
 * ```
 * @module
 */
import { BROWN_GENRES, type BrownDocument, type BrownGenre, loadBrown } from "../data/brown.ts";
import {
  concatTokens,
  type DocumentInput,
  type TokenEncoder,
  tokenizeAndPack,
  tokenStream,
} from "../data/pack.ts";
import { loadSotu } from "../data/sotu.ts";
import { splitDocuments } from "../data/splits.ts";

/** The token data of a run (blocks are `T + 1` ids, as the Trainer reads them). */
export interface LoramData {
  /** General text: alignment and calibration blocks. */
  readonly align: readonly Int32Array[];
  /** In-domain training blocks. */
  readonly train: readonly Int32Array[];
  /** In-domain held-out ids (a token stream). */
  readonly evalIn: Int32Array;
  /** Out-of-domain held-out ids (Brown: the other genres). */
  readonly evalOut: Int32Array;
  /** Held-out ids of the second out-of-domain text (the State of the Union addresses); optional. */
  readonly evalSotu?: Int32Array;
  /** In-domain eval blocks for the training curve (`train.evalEvery`). */
  readonly evalBlocks?: readonly Int32Array[];
}

/** Options of {@link brownLoramData}. */
export interface BrownLoramDataOptions {
  /** Tokens each block predicts (`T`; blocks hold `T + 1` ids). Default 128. */
  block?: number;
  /** Held-out tokens per domain (each out-of-domain one shared evenly by its groups). Default 4096. */
  evalTokens?: number;
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
 * One held-out stream of about `total` ids shared evenly by `groups` (at least 2 ids each): the
 * first `⌊total / groups⌋` ids of each group's documents, concatenated in order. Only a prefix of
 * each document's text is tokenized (16 characters per wanted id, a wide margin over BPE's 3–5).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { evenStream } from "./data.ts";
 * const tok = { eosTokenId: 0, encode: (s: string) => [...s].map((c) => c.charCodeAt(0)) };
 * assert.deepEqual(evenStream([["ab", "c"], ["xyz"]], tok, 4), Int32Array.of(97, 98, 120, 121));
 * ```
 */
export function evenStream(
  groups: readonly (readonly DocumentInput[])[],
  tokenizer: TokenEncoder,
  total: number,
): Int32Array {
  if (groups.length === 0) return new Int32Array(0);
  const share = Math.max(2, Math.floor(total / groups.length));
  const chars = share * 16;
  const parts = groups.map((docs) =>
    tokenStream(
      docs.map((d) => (typeof d === "string" ? d : d.text).slice(0, chars)),
      tokenizer,
      { addEos: true, maxTokens: share },
    )
  );
  return concatTokens(parts);
}

/**
 * In-domain (`genre`) training blocks and held-out ids; out-of-domain held-out ids from the other
 * genres and from the State of the Union addresses (each validation address one group of
 * {@link evenStream}, so every era contributes); alignment blocks from the other genres' training
 * split.
 *
 * @throws {RangeError} for an unknown genre
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
  const { block = 128, evalTokens = 4096, evalBlocks = 16, sotu = true, alignDocs } = options;
  if (alignDocs !== undefined && !(Number.isInteger(alignDocs) && alignDocs >= 0)) {
    throw new RangeError(`alignDocs must be a non-negative integer: received ${alignDocs}`);
  }
  const splits = splitDocuments(await loadBrown());
  const of = (docs: BrownDocument[], g: string) => docs.filter((d) => d.genre === g);
  const pack = (docs: BrownDocument[]) =>
    tokenizeAndPack(docs, tokenizer, { blockSize: block + 1, stride: block }).blocks;
  const others = BROWN_GENRES.filter((g) => g !== genre);
  const sotuDocs = sotu ? splitDocuments(await loadSotu()).validation : [];
  return {
    align: pack(evenlySpaced(splits.train.filter((d) => d.genre !== genre), alignDocs)),
    train: pack(of(splits.train, genre)),
    evalIn: tokenStream(of(splits.validation, genre), tokenizer, { addEos: true, maxTokens: evalTokens }),
    evalOut: evenStream(others.map((g) => of(splits.validation, g)), tokenizer, evalTokens),
    ...(sotu ? { evalSotu: evenStream(sotuDocs.map((d) => [d]), tokenizer, evalTokens) } : {}),
    evalBlocks: pack(of(splits.validation, genre)).slice(0, evalBlocks),
  };
}

/** `n` items evenly spaced through `items` (all of them when `n` is undefined or not smaller). */
function evenlySpaced<T>(items: readonly T[], n: number | undefined): T[] {
  if (n === undefined || n >= items.length) return [...items];
  return Array.from({ length: n }, (_, i) => items[Math.floor((i * items.length) / n)]);
}
