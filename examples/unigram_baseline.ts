/**
 * The unigram baseline for Ferry's embedded demo models: the per-token perplexity, per Brown genre,
 * of an add-one (Laplace) smoothed unigram model fitted on the train split, with the shared
 * tokenizer in `examples/models/tokenizer/`. A trained model must clearly beat it.
 *
 * Reproduce `examples/models/tokenizer/unigram_baseline.json` (deterministic):
 *
 *     deno run --allow-read --allow-write --allow-env examples/unigram_baseline.ts
 *
 * Tokens are counted the way the models are trained and evaluated: each text is encoded without
 * special tokens and followed by one `<|endoftext|>` (as `tokenizeAndPack` does). Perplexity is
 * pooled over all tokens of a genre (`exp(Σ NLL / Σ tokens)`), not averaged over texts. Bits per
 * byte (`Σ NLL / ln 2 / UTF-8 bytes of the texts`, EOS tokens included in the NLL) compares across
 * tokenizers. The splits are `splitDocuments`' defaults (seed 0, 80/10/10), which by chance put
 * no mystery (`cl`) text in validation, no press review (`cc`) in test, and all six science-fiction
 * (`cm`) texts in train; those rows read `—`.
 * @module
 */

import * as runtime from "../src/host/runtime.ts";
import { BROWN_GENRE_NAMES, BROWN_GENRES, type BrownDocument, loadBrown } from "../src/data/brown.ts";
import { splitDocuments } from "../src/data/splits.ts";
import { fitUnigram, type UnigramModel } from "../src/data/unigram.ts";
import { Tokenizer } from "../src/io/tokenizer.ts";

const TOKENIZER_DIR = "examples/models/tokenizer";
const OUT = `${TOKENIZER_DIR}/unigram_baseline.json`;
/** `splitDocuments`' defaults, spelled out: the split the models train and evaluate on. */
const SPLIT = { seed: 0, ratios: { train: 0.8, validation: 0.1, test: 0.1 } };
const COMMAND = "deno run --allow-read --allow-write --allow-env examples/unigram_baseline.ts";

/** The score of a set of texts: pooled over their tokens. */
interface Row {
  texts: number;
  tokens: number;
  perplexity: number;
  nllPerToken: number;
  bitsPerByte: number;
}

const tokenizer = await Tokenizer.fromDir(TOKENIZER_DIR);
const eos = tokenizer.eosTokenId;
if (eos === undefined) throw new Error(`The tokenizer in ${TOKENIZER_DIR} has no EOS token`);
/** A text's ids as the models see them: the text, then EOS. */
const encode = (doc: BrownDocument) => [...tokenizer.encode(doc.text, { addSpecialTokens: false }), eos];

const splits = splitDocuments(await loadBrown(), SPLIT);
const model = fitUnigram(splits.train.flatMap(encode), tokenizer.vocabSize, { alpha: 1 });

/** Pools the NLL of `docs`; `null` when there are none. */
function score(model: UnigramModel, docs: BrownDocument[]): Row | null {
  if (docs.length === 0) return null;
  let nll = 0, tokens = 0, bytes = 0;
  for (const doc of docs) {
    const s = model.score(encode(doc));
    nll += s.totalNll;
    tokens += s.nTokens;
    bytes += new TextEncoder().encode(doc.text).length;
  }
  const round = (x: number) => Number(x.toFixed(4));
  return {
    texts: docs.length,
    tokens,
    perplexity: round(Math.exp(nll / tokens)),
    nllPerToken: round(nll / tokens),
    bitsPerByte: round(nll / Math.LN2 / bytes),
  };
}

/** Per-genre and overall rows of one split. */
function evaluate(docs: BrownDocument[]) {
  const genres = Object.fromEntries(
    BROWN_GENRES.map((g) => [g, score(model, docs.filter((d) => d.genre === g))]),
  );
  return { overall: score(model, docs), genres };
}

/** Ties the numbers to the exact tokenizer file they were computed with. */
const tokenizerSha256 = Array.from(
  new Uint8Array(
    await crypto.subtle.digest("SHA-256", await runtime.readFile(`${TOKENIZER_DIR}/tokenizer.json`)),
  ),
  (b) => b.toString(16).padStart(2, "0"),
).join("");

const results = {
  description: "Add-one smoothed unigram model fitted on the Brown train split; per-token perplexity " +
    "per genre (pooled over tokens, each text followed by <|endoftext|>).",
  command: COMMAND,
  tokenizer: TOKENIZER_DIR,
  tokenizerSha256,
  vocabSize: tokenizer.vocabSize,
  alpha: 1,
  split: SPLIT,
  train: { texts: splits.train.length, tokens: model.nTrain },
  validation: evaluate(splits.validation),
  test: evaluate(splits.test),
};

// The table: validation in full, test perplexity beside it.
const cell = (row: Row | null, f: (r: Row) => string, width: number) => (row ? f(row) : "—").padStart(width);
console.log(
  `Unigram baseline (add-one), vocab ${tokenizer.vocabSize}, fitted on ${splits.train.length} train ` +
    `texts (${model.nTrain} tokens)\n`,
);
console.log(
  `${"genre".padEnd(48)} ${"val texts".padStart(9)} ${"val tokens".padStart(10)} ${"val ppl".padStart(8)} ` +
    `${"val bits/B".padStart(10)} ${"test ppl".padStart(8)}`,
);
const line = (label: string, v: Row | null, t: Row | null) =>
  console.log(
    `${label.padEnd(48)} ${cell(v, (r) => String(r.texts), 9)} ${cell(v, (r) => String(r.tokens), 10)} ` +
      `${cell(v, (r) => r.perplexity.toFixed(1), 8)} ${cell(v, (r) => r.bitsPerByte.toFixed(3), 10)} ` +
      `${cell(t, (r) => r.perplexity.toFixed(1), 8)}`,
  );
for (const g of BROWN_GENRES) {
  line(`${g}  ${BROWN_GENRE_NAMES[g]}`, results.validation.genres[g], results.test.genres[g]);
}
line("overall", results.validation.overall, results.test.overall);

await runtime.writeTextFile(OUT, JSON.stringify(results, null, 2) + "\n");
console.log(`\nWrote ${OUT}\nReproduce: ${COMMAND}`);
