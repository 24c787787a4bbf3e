/**
 * LoRAM's data on the Brown corpus: in-domain is one genre, out-of-domain the other genres, and
 * alignment (continual pre-training, B.4) reads the other genres' training split, so it never sees
 * the in-domain text. Splits are the corpus's deterministic document splits (`splitDocuments`).
 *
 * @example
 * ```ts ignore
 * const tokenizer = await Tokenizer.fromDir("examples/models/brown-dense");
 * const data = await brownLoramData(tokenizer, "cn", { block: 128 });
 * ```
 * @module
 */
import { BROWN_GENRES, type BrownDocument, type BrownGenre, loadBrown } from "../data/brown.ts";
import { type TokenEncoder, tokenizeAndPack, tokenStream } from "../data/pack.ts";
import { splitDocuments } from "../data/splits.ts";

/** The token data of a run (blocks are `T + 1` ids, as the Trainer reads them). */
export interface LoramData {
  /** General text: alignment and calibration blocks. */
  readonly align: readonly Int32Array[];
  /** In-domain training blocks. */
  readonly train: readonly Int32Array[];
  /** In-domain held-out ids (a token stream). */
  readonly evalIn: Int32Array;
  /** Out-of-domain held-out ids. */
  readonly evalOut: Int32Array;
  /** In-domain eval blocks for the training curve (`train.evalEvery`). */
  readonly evalBlocks?: readonly Int32Array[];
}

/** Options of {@link brownLoramData}. */
export interface BrownLoramDataOptions {
  /** Tokens each block predicts (`T`; blocks hold `T + 1` ids). Default 128. */
  block?: number;
  /** Held-out tokens per domain (the out-of-domain ones shared evenly by the other genres). Default 4096. */
  evalTokens?: number;
  /** In-domain eval blocks for the training curve. Default 16. */
  evalBlocks?: number;
}

/**
 * In-domain (`genre`) training blocks and held-out ids, out-of-domain held-out ids, and alignment
 * blocks from the other genres' training split.
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
  const { block = 128, evalTokens = 4096, evalBlocks = 16 } = options;
  const splits = splitDocuments(await loadBrown());
  const of = (docs: BrownDocument[], g: string) => docs.filter((d) => d.genre === g);
  const pack = (docs: BrownDocument[]) =>
    tokenizeAndPack(docs, tokenizer, { blockSize: block + 1, stride: block }).blocks;
  const others = BROWN_GENRES.filter((g) => g !== genre);
  const share = Math.max(2, Math.floor(evalTokens / others.length));
  const outParts = others.map((g) =>
    tokenStream(of(splits.validation, g), tokenizer, { addEos: true, maxTokens: share })
  );
  const evalOut = new Int32Array(outParts.reduce((n, p) => n + p.length, 0));
  outParts.reduce((at, p) => (evalOut.set(p, at), at + p.length), 0);
  return {
    align: pack(splits.train.filter((d) => d.genre !== genre)),
    train: pack(of(splits.train, genre)),
    evalIn: tokenStream(of(splits.validation, genre), tokenizer, { addEos: true, maxTokens: evalTokens }),
    evalOut,
    evalBlocks: pack(of(splits.validation, genre)).slice(0, evalBlocks),
  };
}
