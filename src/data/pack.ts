/**
 * Tokenize-and-pack for language-model training: documents are tokenized, concatenated into one
 * stream with an EOS token after each, and cut into fixed-length blocks, the way nanoGPT's
 * `prepare.py` and HF's `group_texts` build training data. No padding inside the stream, so every
 * position is a real token and documents run across block boundaries.
 *
 * Symbols: `N` blocks, `T` block size.
 *
 * @example Next-token training pairs
 * ```ts
 * import assert from "node:assert/strict";
 * import { tokenizeAndPack } from "./pack.ts";
 *
 * // A stand-in tokenizer: one id per character code, EOS = 0.
 * const tok = { eosTokenId: 0, encode: (s: string) => [...s].map((c) => c.charCodeAt(0)) };
 * const packed = tokenizeAndPack(["ab", "cde"], tok, { blockSize: 3 }); // stream a b 0 c d e 0
 * assert.equal(packed.nTokens, 7);
 * assert.deepEqual([...packed.data], [97, 98, 0, 99, 100, 101]); // [N=2, T=3]; the tail "0" is dropped
 * assert.deepEqual([...packed.blocks[1]], [99, 100, 101]);
 * ```
 * @module
 */

import { z } from "zod";
import { parseConfig } from "../config.ts";

/** What packing needs from a tokenizer; `Tokenizer` from `src/io/tokenizer.ts` fits. */
export interface TokenEncoder {
  /** Token ids of `text`. */
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  /** The end-of-text id, appended after each document. */
  readonly eosTokenId: number | undefined;
}

/** A document: a string, or anything with a `text` field (Brown, text and JSONL documents). */
export type DocumentInput = string | { readonly text: string };

/** Options of {@linkcode tokenizeDocuments}. */
export const TokenizeOptionsSchema = z.strictObject({
  /** Append `eosTokenId` to each document. */
  addEos: z.boolean().default(false),
  /** Let the tokenizer add its own special tokens (BOS for most). Off: packing adds EOS itself. */
  addSpecialTokens: z.boolean().default(false),
});

/** What callers pass to {@linkcode tokenizeDocuments}. */
export type TokenizeOptions = z.input<typeof TokenizeOptionsSchema>;

/** Options of {@linkcode tokenizeAndPack}. */
export const PackOptionsSchema = z.strictObject({
  /** Tokens per block, `T`. For next-token training pass `T + 1` and use `x = block[:-1]`, `y = block[1:]`. */
  blockSize: z.number().int().min(1),
  /** Distance between block starts; default `blockSize` (no overlap). `blockSize - 1` with a
   * `T + 1` block gives inputs that tile the stream with no target predicted twice. */
  stride: z.number().int().min(1).optional(),
  /** Append `eosTokenId` after every document, so documents are separated in the stream. */
  addEos: z.boolean().default(true),
  /** Let the tokenizer add its own special tokens to each document. */
  addSpecialTokens: z.boolean().default(false),
  /** `"drop"`: discard the incomplete last block. `"pad"`: keep it, filled up with `padId`. */
  tail: z.enum(["drop", "pad"]).default("drop"),
  /** Id used for padding with `tail: "pad"`; default the EOS id. Mask it out of the loss (see `nPad`). */
  padId: z.number().int().min(0).optional(),
}).superRefine((o, ctx) => {
  if (o.stride !== undefined && o.stride > o.blockSize) {
    ctx.addIssue({
      code: "custom",
      path: ["stride"],
      message: `must be at most blockSize (${o.blockSize}) so no token is skipped`,
      input: o.stride,
    });
  }
});

/** What callers pass to {@linkcode tokenizeAndPack}. */
export type PackOptions = z.input<typeof PackOptionsSchema>;

/** The result of {@linkcode tokenizeAndPack}. */
export interface PackedBlocks {
  /** Every block, row-major: `[N, T]`. */
  readonly data: Int32Array;
  /** Block `i` as a view into `data`: `[T]`. */
  readonly blocks: readonly Int32Array[];
  /** `T`. */
  readonly blockSize: number;
  /** Tokens in the concatenated stream (documents and EOS tokens), before cutting. */
  readonly nTokens: number;
  /** Padding tokens at the end of the last block; 0 unless `tail: "pad"`. */
  readonly nPad: number;
}

const textOf = (doc: DocumentInput) => typeof doc === "string" ? doc : doc.text;

function requireEos(tokenizer: TokenEncoder, what: string): number {
  const eos = tokenizer.eosTokenId;
  if (eos === undefined) {
    throw new TypeError(
      `Cannot ${what}: the tokenizer has no EOS token; pass addEos: false or a tokenizer_config.json`,
    );
  }
  return eos;
}

/**
 * Tokenizes each document separately.
 *
 * @param docs The documents.
 * @param tokenizer The tokenizer.
 * @param options `addEos` (default `false`) and `addSpecialTokens` (default `false`).
 * @returns One `Int32Array` of token ids per document, in order.
 * @throws {TypeError} When `addEos` is set and the tokenizer has no EOS token.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tokenizeDocuments } from "./pack.ts";
 *
 * const tok = { eosTokenId: 0, encode: (s: string) => [...s].map((c) => c.charCodeAt(0)) };
 * const ids = tokenizeDocuments([{ text: "hi" }, "!"], tok, { addEos: true });
 * assert.deepEqual(ids, [Int32Array.of(104, 105, 0), Int32Array.of(33, 0)]);
 * ```
 */
export function tokenizeDocuments(
  docs: Iterable<DocumentInput>,
  tokenizer: TokenEncoder,
  options: TokenizeOptions = {},
): Int32Array[] {
  const { addEos, addSpecialTokens } = parseConfig("TokenizeOptions", TokenizeOptionsSchema, options);
  const eos = addEos ? requireEos(tokenizer, "tokenize documents") : 0;
  const out: Int32Array[] = [];
  for (const doc of docs) {
    const ids = tokenizer.encode(textOf(doc), { addSpecialTokens });
    const arr = new Int32Array(ids.length + (addEos ? 1 : 0));
    arr.set(ids);
    if (addEos) arr[ids.length] = eos;
    out.push(arr);
  }
  return out;
}

/**
 * The documents' ids as one stream (EOS after each with `addEos`), cut to `maxTokens`; documents
 * past the cut are not tokenized.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tokenStream } from "./pack.ts";
 * const tok = { eosTokenId: 0, encode: (s: string) => [...s].map((c) => c.charCodeAt(0)) };
 * assert.deepEqual(tokenStream(["hi", "yo"], tok, { addEos: true, maxTokens: 4 }), Int32Array.of(104, 105, 0, 121));
 * ```
 */
export function tokenStream(
  docs: Iterable<DocumentInput>,
  tokenizer: TokenEncoder,
  options: TokenizeOptions & { maxTokens?: number } = {},
): Int32Array {
  const { maxTokens, ...tokenize } = options;
  const parts: Int32Array[] = [];
  let n = 0;
  for (const doc of docs) {
    if (maxTokens !== undefined && n >= maxTokens) break;
    const [ids] = tokenizeDocuments([doc], tokenizer, tokenize);
    parts.push(ids);
    n += ids.length;
  }
  const out = new Int32Array(maxTokens === undefined ? n : Math.min(n, maxTokens));
  let at = 0;
  for (const p of parts) {
    const take = Math.min(p.length, out.length - at);
    out.set(p.subarray(0, take), at);
    at += take;
  }
  return out;
}

/** The token arrays one after another (a stream built from separately tokenized documents). */
export function concatTokens(parts: readonly Int32Array[]): Int32Array {
  const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

/**
 * Tokenizes documents, concatenates them with EOS after each, and cuts the stream into blocks of
 * `blockSize` tokens starting every `stride` tokens.
 *
 * The stream rarely divides evenly. With `tail: "drop"` (default) the tokens after the last full
 * block are discarded (fewer than `stride` of them), as nanoGPT and HF's `group_texts` do. With
 * `tail: "pad"` one more block holds them, filled with `padId`; `nPad` says how many
 * pad tokens it has, at its end.
 *
 * @param docs The documents, in order.
 * @param tokenizer The tokenizer; it needs an EOS id when `addEos` is set (the default).
 * @param options `blockSize` (required), `stride`, `addEos`, `addSpecialTokens`, `tail`, `padId`.
 * @returns The blocks, `[N, T]`.
 * @throws {ConfigError} When `blockSize` or `stride` is not a positive integer, or `stride > blockSize`.
 * @throws {TypeError} When EOS is needed (`addEos`, or padding without `padId`) and the tokenizer has none.
 */
export function tokenizeAndPack(
  docs: Iterable<DocumentInput>,
  tokenizer: TokenEncoder,
  options: PackOptions,
): PackedBlocks {
  const config = parseConfig("PackOptions", PackOptionsSchema, options);
  const { blockSize, addEos, tail } = config;
  const stride = config.stride ?? blockSize;
  const padId = tail === "pad" ? config.padId ?? requireEos(tokenizer, "pad the last block") : 0;
  const perDoc = tokenizeDocuments(docs, tokenizer, { addEos, addSpecialTokens: config.addSpecialTokens });

  let n = 0;
  for (const ids of perDoc) n += ids.length;
  const stream = new Int32Array(n); // [nTokens]
  let at = 0;
  for (const ids of perDoc) {
    stream.set(ids, at);
    at += ids.length;
  }

  const starts: number[] = [];
  for (let s = 0; s + blockSize <= n; s += stride) starts.push(s);
  const last = starts.length > 0 ? starts[starts.length - 1] : -stride;
  // With overlap several windows run past the end; the first of them already reaches it.
  if (tail === "pad" && last + blockSize < n) starts.push(last + stride);

  const data = new Int32Array(starts.length * blockSize); // [N, T]
  let nPad = 0;
  for (let b = 0; b < starts.length; b++) {
    const window = stream.subarray(starts[b], Math.min(starts[b] + blockSize, n));
    data.set(window, b * blockSize);
    if (window.length < blockSize) {
      nPad = blockSize - window.length;
      data.fill(padId, b * blockSize + window.length, (b + 1) * blockSize);
    }
  }
  const blocks = starts.map((_, b) => data.subarray(b * blockSize, (b + 1) * blockSize));
  return { data, blocks, blockSize, nTokens: n, nPad };
}
