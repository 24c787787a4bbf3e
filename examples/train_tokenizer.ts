/**
 * Trains the byte-level BPE tokenizer shared by Ferry's embedded demo models (the Mixtral-layout
 * MoE and the Llama-layout dense model) on the **train split** of the Brown corpus, and writes it
 * as a Hugging Face `tokenizer.json` + `tokenizer_config.json` that `src/io/tokenizer.ts` loads.
 *
 * Reproduce the committed files (deterministic: same bytes on every run):
 *
 *     deno run --allow-read --allow-write --allow-env --allow-ffi --allow-sys examples/train_tokenizer.ts
 *
 * Options: `--vocab-size N` (default 4096, special tokens included), `--out DIR` (default
 * `examples/models/tokenizer`).
 *
 * How:
 * 1. Brown (`loadBrown`), split by `splitDocuments` with its defaults (seed 0, 80/10/10), the
 *    split the models train and evaluate on. Only the 402 train texts are seen here.
 * 2. The merges come from Hugging Face's Rust `BpeTrainer` through `@anush008/tokenizers` (native
 *    Node-API builds of HF tokenizers: hence `--allow-ffi`, and `--allow-sys` for its platform
 *    probe), with GPT-2's `ByteLevel` pre-tokenizer (GPT-2 regex, bytes mapped to printable
 *    characters, no prefix space).
 *    Those bindings expose `train(files)` but not the trainer's options, so it trains to the
 *    default 30,000 tokens. BPE training is greedy, one merge at a time, and the target size only
 *    says when to stop: the merges for a smaller vocabulary are a prefix of that list. This script
 *    keeps the prefix that fills the vocabulary.
 * 3. Vocabulary layout: ids 0–255 are the 256 bytes (id = byte value, so every string encodes,
 *    even characters absent from Brown); then the merged tokens in merge order; then the special
 *    tokens `<|endoftext|>` (EOS, also BOS as in GPT-2) and `<|pad|>`. 4096 ids in all.
 * 4. Self-checks: Ferry's `Tokenizer` loads the file, round-trips every validation text exactly,
 *    and gives the same ids as the Rust tokenizer reading the same file.
 *
 * Vocabulary size, the trade-off. Measured on the validation split (words split at whitespace,
 * punctuation attached; Llama-3's 128k vocabulary gives 1.26 tokens/word there), with the embedding
 * rows a model pays for each size and how often the last 200 merged tokens occur in the training
 * text (the examples a model gets to learn them from):
 *
 * | vocab | tokens/word | bytes/token | embedding params at d = 256 | last merges seen (median) |
 * | ----- | ----------- | ----------- | --------------------------- | ------------------------- |
 * | 2048  | 1.98        | 3.00        | 0.52 M                      | 177                       |
 * | 4096  | 1.73        | 3.44        | 1.05 M                      | 64                        |
 * | 8192  | 1.55        | 3.84        | 2.10 M                      | 23                        |
 *
 * 4096 it is. Doubling to 8192 saves 10 % of the tokens but doubles the embedding and LM-head
 * tables, a large share of a model of a few million parameters, and its new tokens occur only
 * a few dozen times in 0.93 M training words, thin data to learn an embedding from. Halving to 2048 makes every
 * sequence 14 % longer (attention and every layer pay per token) and shrinks the text a fixed
 * context window holds. 4096 is also a multiple of 64, as kernels like.
 * @module
 */

import * as runtime from "../src/host/runtime.ts";
import { parseArgs } from "node:util";
import * as hf from "@anush008/tokenizers";
import { loadBrown } from "../src/data/brown.ts";
import { splitDocuments } from "../src/data/splits.ts";
import { Tokenizer } from "../src/io/tokenizer.ts";

/** The special tokens, appended after the BPE tokens in this order. */
const SPECIAL_TOKENS = ["<|endoftext|>", "<|pad|>"] as const;
const COMMAND =
  "deno run --allow-read --allow-write --allow-env --allow-ffi --allow-sys examples/train_tokenizer.ts";

// ---------------------------------------------------------------------------------------
// Byte-level alphabet

/**
 * GPT-2's `bytes_to_unicode`: each byte becomes one printable character, so BPE works on strings
 * with no whitespace or control characters. Printable Latin-1 bytes map to themselves; the other
 * 68 go to U+0100 onwards (space 0x20 → `Ġ`, newline 0x0A → `Ċ`).
 */
function byteToUnicode(): string[] {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
  const chars: string[] = [];
  let next = 0x100;
  for (let b = 0; b < 256; b++) chars.push(String.fromCodePoint(printable(b) ? b : next++));
  return chars;
}

// ---------------------------------------------------------------------------------------
// Training

/** Trains HF's Rust BPE on `text` (the bindings read files, one line per sequence); returns its merges. */
async function trainMerges(text: string): Promise<[string, string][]> {
  const dir = await runtime.makeTempDir("ferry-bpe-");
  try {
    await runtime.writeTextFile(`${dir}/train.txt`, text);
    const trainer = new hf.Tokenizer(hf.BPE.empty());
    trainer.setPreTokenizer(hf.byteLevelPreTokenizer(false, true));
    trainer.train([`${dir}/train.txt`]);
    trainer.save(`${dir}/trained.json`, false);
    const merges: unknown[] = JSON.parse(await runtime.readTextFile(`${dir}/trained.json`)).model.merges;
    // tokenizers ≥ 0.20 saves merges as pairs, older versions as "a b" strings.
    return merges.map((m) => (Array.isArray(m) ? m : String(m).split(" ")) as [string, string]);
  } finally {
    await runtime.remove(dir, { recursive: true });
  }
}

/**
 * The vocabulary and merges of a `vocabSize`-token tokenizer (special tokens included): the 256
 * bytes, then the tokens of the first merges until the vocabulary is full. A merge whose result is
 * already a token (`"a" + "bc"` after `"ab" + "c"`) adds a rule but no token, as in HF's trainer.
 */
function truncate(merges: [string, string][], vocabSize: number) {
  const vocab = new Map(byteToUnicode().map((c, id) => [c, id]));
  const kept: string[] = [];
  const bpeSize = vocabSize - SPECIAL_TOKENS.length;
  for (const [a, b] of merges) {
    if (vocab.size >= bpeSize) break;
    if (!vocab.has(a) || !vocab.has(b)) throw new Error(`Merge "${a} ${b}" uses a token not yet made`);
    if (!vocab.has(a + b)) vocab.set(a + b, vocab.size);
    kept.push(`${a} ${b}`);
  }
  if (vocab.size < bpeSize) {
    throw new RangeError(`--vocab-size ${vocabSize} is more than training produced (${vocab.size + 2})`);
  }
  for (const token of SPECIAL_TOKENS) vocab.set(token, vocab.size);
  return { vocab: Object.fromEntries(vocab), merges: kept };
}

// ---------------------------------------------------------------------------------------
// Files

/** `tokenizer.json`, laid out like GPT-2's: ByteLevel pre-tokenizer and decoder, no normalizer. */
function tokenizerJson(vocab: Record<string, number>, merges: string[]) {
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: SPECIAL_TOKENS.map((content) => ({
      id: vocab[content],
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: null, // nothing added on encode: packing appends EOS itself
    decoder: byteLevel,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

/** `tokenizer_config.json`: names BOS/EOS/PAD for Ferry and HF, and keeps decoding exact. */
function tokenizerConfig(vocab: Record<string, number>) {
  const [eos, pad] = SPECIAL_TOKENS;
  return {
    tokenizer_class: "PreTrainedTokenizerFast",
    bos_token: eos,
    eos_token: eos,
    pad_token: pad,
    unk_token: null,
    clean_up_tokenization_spaces: false,
    added_tokens_decoder: Object.fromEntries(SPECIAL_TOKENS.map((content) => [
      String(vocab[content]),
      { content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true },
    ])),
  };
}

// ---------------------------------------------------------------------------------------
// Main

async function main(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: {
      "vocab-size": { type: "string", default: "4096" },
      out: { type: "string", default: "examples/models/tokenizer" },
    },
  });
  const vocabSize = Number(values["vocab-size"]);
  if (!Number.isInteger(vocabSize) || vocabSize < 256 + SPECIAL_TOKENS.length + 1) {
    throw new RangeError(`--vocab-size must be an integer ≥ 259: received ${values["vocab-size"]}`);
  }
  const out = values.out;

  const { train, validation } = splitDocuments(await loadBrown());
  console.log(`Brown train split: ${train.length} texts, ${count(train, (d) => d.wordCount)} Brown tokens`);

  const t0 = performance.now();
  const allMerges = await trainMerges(train.map((d) => d.text).join("\n\n") + "\n");
  const { vocab, merges } = truncate(allMerges, vocabSize);
  console.log(
    `Trained ${allMerges.length} merges in ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
      `kept ${merges.length} for ${vocabSize} tokens`,
  );
  const alphabet = new Set(hf.byteLevelAlphabet());
  if (alphabet.size !== 256 || !byteToUnicode().every((c) => alphabet.has(c))) {
    throw new Error("The byte-to-character map differs from HF tokenizers' ByteLevel alphabet");
  }

  await runtime.mkdir(out, { recursive: true });
  const json = `${out}/tokenizer.json`;
  await runtime.writeTextFile(json, JSON.stringify(tokenizerJson(vocab, merges), null, 2) + "\n");
  await runtime.writeTextFile(
    `${out}/tokenizer_config.json`,
    JSON.stringify(tokenizerConfig(vocab), null, 2) + "\n",
  );
  console.log(`Wrote ${json} and tokenizer_config.json`);

  // Self-checks on the validation split, through Ferry's wrapper and through the Rust library.
  const tok = await Tokenizer.fromDir(out);
  const rust = hf.Tokenizer.fromFile(json);
  let tokens = 0;
  for (const doc of validation) {
    const ids = tok.encode(doc.text);
    if (tok.decode(ids) !== doc.text) throw new Error(`Round trip failed on Brown text ${doc.id}`);
    const rustIds = (await rust.encode(doc.text)).getIds();
    if (rustIds.join() !== ids.join()) throw new Error(`JS and Rust tokenizers differ on ${doc.id}`);
    tokens += ids.length;
  }
  const words = count(validation, (d) => d.text.split(/\s+/).filter((w) => w !== "").length);
  const bytes = count(validation, (d) => new TextEncoder().encode(d.text).length);
  console.log(
    `Validation (${validation.length} texts): round trip exact, JS ids = Rust ids; ${tokens} tokens, ` +
      `${(tokens / words).toFixed(3)} tokens/word, ` +
      `${(tokens / count(validation, (d) => d.wordCount)).toFixed(3)} tokens/Brown token, ` +
      `${(bytes / tokens).toFixed(2)} bytes/token`,
  );
  console.log(`vocabSize ${tok.vocabSize}, eos ${tok.eosTokenId}, bos ${tok.bosTokenId}`);
  console.log(`Reproduce: ${COMMAND}${vocabSize === 4096 ? "" : ` --vocab-size ${vocabSize}`}`);
}

function count<T>(items: T[], f: (item: T) => number): number {
  return items.reduce((sum, item) => sum + f(item), 0);
}

if (import.meta.main) {
  try {
    await main(runtime.args());
  } catch (err) {
    console.error(`train_tokenizer: ${(err as Error).message}`);
    runtime.exit(1);
  }
}
