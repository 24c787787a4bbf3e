/**
 * Documents from plain text and JSONL files. A document is `{ id, text }`; ids are derived from
 * the file's base name (not its full path), so moving a corpus folder doesn't change which split
 * a document lands in (see `splits.ts`).
 *
 * @example JSONL in memory
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseJsonl } from "./text.ts";
 *
 * const docs = parseJsonl('{"text": "one"}\n\n{"text": "two"}\n', {}, "toy.jsonl");
 * assert.deepEqual(docs, [{ id: "toy.jsonl:1", text: "one" }, { id: "toy.jsonl:3", text: "two" }]);
 * ```
 * @module
 */

import { readTextFile } from "../host/runtime.ts";
import { z } from "zod";
import { parseConfig } from "../config.ts";
import { FormatError } from "../errors.ts";

/** A document: a stable id and its text. */
export interface TextDocument {
  /** Stable identifier; splits hash it, so keep it independent of where files live. */
  readonly id: string;
  /** The text. */
  readonly text: string;
}

/** Options of {@linkcode loadTextFile}. */
export const TextFileOptionsSchema = z.strictObject({
  /** `"paragraphs"`: one document per blank-line-separated block; `"file"`: the whole file. */
  split: z.enum(["paragraphs", "file"]).default("paragraphs"),
});

/** What callers pass to {@linkcode loadTextFile}. */
export type TextFileOptions = z.input<typeof TextFileOptionsSchema>;

/** Options of {@linkcode loadJsonl} and {@linkcode parseJsonl}. */
export const JsonlOptionsSchema = z.strictObject({
  /** Field holding the text. */
  field: z.string().min(1).default("text"),
  /** Field holding the id (string or number); omitted, the id is `<file name>:<line>`. */
  idField: z.string().min(1).optional(),
});

/** What callers pass to {@linkcode loadJsonl} and {@linkcode parseJsonl}. */
export type JsonlOptions = z.input<typeof JsonlOptionsSchema>;

const baseName = (path: string) => path.replace(/[\\/]+$/, "").split(/[\\/]/).pop() ?? path;

/**
 * Splits text into paragraphs: blocks separated by one or more blank lines (lines holding only
 * whitespace count as blank). Line endings are normalised to `\n`; blocks are trimmed and empty
 * ones dropped.
 *
 * @param text The text.
 * @returns The paragraphs, in order.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitParagraphs } from "./text.ts";
 *
 * assert.deepEqual(splitParagraphs("a\nb\r\n\r\n \n\nc\n"), ["a\nb", "c"]);
 * ```
 */
export function splitParagraphs(text: string): string[] {
  return text.replace(/\r\n?/g, "\n").split(/\n[ \t]*\n/).map((p) => p.trim()).filter((p) => p !== "");
}

/**
 * Reads a UTF-8 text file as documents.
 *
 * @param path The file.
 * @param options `split`: `"paragraphs"` (default; ids `<name>#0`, `<name>#1`, …) or `"file"` (one
 *   document with id `<name>`, text as read, minus a byte-order mark).
 * @returns The documents.
 * @throws {ConfigError} For an unknown option.
 */
export async function loadTextFile(path: string, options: TextFileOptions = {}): Promise<TextDocument[]> {
  const { split } = parseConfig("TextFileOptions", TextFileOptionsSchema, options);
  const text = (await readTextFile(path)).replace(/^\uFEFF/, "");
  const name = baseName(path);
  if (split === "file") return [{ id: name, text }];
  return splitParagraphs(text).map((p, i) => ({ id: `${name}#${i}`, text: p }));
}

/**
 * Reads several text files, in the order given, as {@linkcode loadTextFile} does for each.
 *
 * @param paths The files.
 * @param options As {@linkcode loadTextFile}.
 * @returns The documents of all files, concatenated.
 */
export async function loadTextFiles(
  paths: readonly string[],
  options: TextFileOptions = {},
): Promise<TextDocument[]> {
  const perFile = await Promise.all(paths.map((p) => loadTextFile(p, options)));
  return perFile.flat();
}

/**
 * Reads a JSONL file: one JSON object per line with the text in `field` (default `"text"`).
 * Blank lines are skipped. The whole file is read at once.
 *
 * @param path The file.
 * @param options `field` and `idField`.
 * @returns One document per non-blank line.
 * @throws {FormatError} On the first bad line, naming the file and the 1-based line number.
 * @throws {ConfigError} For an unknown option.
 */
export async function loadJsonl(path: string, options: JsonlOptions = {}): Promise<TextDocument[]> {
  return parseJsonl(await readTextFile(path), options, path);
}

/**
 * Parses JSONL content, as {@linkcode loadJsonl} does.
 *
 * @param content The JSONL text.
 * @param options `field` (default `"text"`) and `idField`.
 * @param source The file it came from, for ids (its base name) and error messages.
 * @returns One document per non-blank line; ids are `<base name of source>:<line>` unless `idField` is set.
 * @throws {FormatError} On the first bad line: invalid JSON, not an object, a missing or non-string
 *   text field, or a missing id.
 */
export function parseJsonl(
  content: string,
  options: JsonlOptions = {},
  source = "input.jsonl",
): TextDocument[] {
  const { field, idField } = parseConfig("JsonlOptions", JsonlOptionsSchema, options);
  const name = baseName(source);
  const docs: TextDocument[] = [];
  const lines = content.replace(/^\uFEFF/, "").split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    const fail = (problem: string): never => {
      throw new FormatError(`Cannot read JSONL ${source}: line ${i + 1}: ${problem}`, source);
    };
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch (err) {
      fail(`invalid JSON: ${(err as Error).message}`);
    }
    if (typeof record !== "object" || record === null || Array.isArray(record)) {
      fail(`expected a JSON object, received ${Array.isArray(record) ? "an array" : JSON.stringify(record)}`);
    }
    const obj = record as Record<string, unknown>;
    const text = obj[field];
    if (typeof text !== "string") {
      fail(
        `field "${field}" must be a string: received ${text === undefined ? "no such field" : typeof text}`,
      );
    }
    let id = `${name}:${i + 1}`;
    if (idField !== undefined) {
      const raw = obj[idField];
      if (typeof raw !== "string" && typeof raw !== "number") {
        fail(
          `field "${idField}" must be a string or number: received ${
            raw === undefined ? "no such field" : typeof raw
          }`,
        );
      }
      id = String(raw);
    }
    docs.push({ id, text: text as string });
  }
  return docs;
}
