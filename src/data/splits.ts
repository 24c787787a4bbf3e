/**
 * Deterministic train / validation / test splits by document. Each document's split depends only
 * on its id, the seed and the ratios, never on the other documents or their order: adding files to
 * a corpus never moves an existing document to another split, and evaluation text never leaks
 * into training.
 *
 * The position of a document is `u = hash(seed, id) ∈ [0, 1)`; it goes to `train` when
 * `u < ratios.train`, to `validation` when `u < ratios.train + ratios.validation`, else to `test`.
 * Split sizes therefore follow the ratios in expectation, not exactly (binomial noise: for 500
 * documents at 10 %, 50 ± 7).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitDocuments, splitOf } from "./splits.ts";
 *
 * const docs = Array.from({ length: 1000 }, (_, i) => ({ id: `doc${i}`, text: "…" }));
 * const { train, validation, test } = splitDocuments(docs, { seed: 1 });
 * assert.equal(train.length + validation.length + test.length, 1000);
 * assert.ok(validation.every((d) => splitOf(d.id, { seed: 1 }) === "validation"));
 * assert.ok(test.length > 50 && test.length < 150); // 100 expected
 * ```
 * @module
 */

import { z } from "zod";
import { parseConfig } from "../config.ts";
import { fnv1a } from "../host/fnv.ts";

/** The three splits. */
export type SplitName = "train" | "validation" | "test";

/** The split names in order. */
export const SPLIT_NAMES: readonly SplitName[] = Object.freeze(["train", "validation", "test"] as const);

const Ratio = z.number().min(0).max(1);

/** Options of {@linkcode splitDocuments} and {@linkcode splitOf}. */
export const SplitOptionsSchema = z.strictObject({
  /** Seed mixed into the hash; another seed gives another, equally deterministic, split. */
  seed: z.number().int().default(0),
  /** Expected fraction of documents in each split; they must sum to 1. */
  ratios: z.strictObject({ train: Ratio, validation: Ratio, test: Ratio })
    .default({ train: 0.8, validation: 0.1, test: 0.1 })
    .superRefine((r, ctx) => {
      const sum = r.train + r.validation + r.test;
      if (Math.abs(sum - 1) > 1e-6) {
        ctx.addIssue({ code: "custom", message: "train + validation + test must equal 1", input: sum });
      }
    }),
});

/** What callers pass to {@linkcode splitDocuments} and {@linkcode splitOf}. */
export type SplitOptions = z.input<typeof SplitOptionsSchema>;
type SplitConfig = z.output<typeof SplitOptionsSchema>;

const encoder = new TextEncoder();

/**
 * The position of a document in `[0, 1)`: FNV-1a (32-bit) over the UTF-8 bytes of
 * `` `${seed}:${id}` ``, then MurmurHash3's 32-bit finaliser to spread nearby ids, divided by 2³².
 * Stable across runtimes and versions; documented so other tools can reproduce a split.
 *
 * @param id The document id.
 * @param seed The seed.
 * @returns A number in `[0, 1)`.
 */
export function splitHash(id: string, seed = 0): number {
  let h = fnv1a(encoder.encode(`${seed}:${id}`));
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

function assign(id: string, { seed, ratios: r }: SplitConfig): SplitName {
  const u = splitHash(id, seed);
  // The zero checks keep an empty split empty when the other ratios sum to just under 1.
  if (u < r.train || (r.validation === 0 && r.test === 0)) return "train";
  if (u < r.train + r.validation || r.test === 0) return "validation";
  return "test";
}

/**
 * The split a document id lands in.
 *
 * @param id The document id.
 * @param options `seed` (default 0) and `ratios` (default 0.8 / 0.1 / 0.1).
 * @returns `"train"`, `"validation"` or `"test"`.
 * @throws {ConfigError} When the ratios are out of `[0, 1]` or don't sum to 1.
 */
export function splitOf(id: string, options: SplitOptions = {}): SplitName {
  return assign(id, parseConfig("SplitOptions", SplitOptionsSchema, options));
}

/**
 * Splits documents by id into train, validation and test, keeping their order within each split.
 *
 * @typeParam T Anything with a string `id` (Brown, text and JSONL documents).
 * @param docs The documents.
 * @param options `seed` (default 0) and `ratios` (default 0.8 / 0.1 / 0.1).
 * @returns The three lists; every document is in exactly one.
 * @throws {ConfigError} When the ratios are out of `[0, 1]` or don't sum to 1.
 */
export function splitDocuments<T extends { readonly id: string }>(
  docs: Iterable<T>,
  options: SplitOptions = {},
): Record<SplitName, T[]> {
  const config = parseConfig("SplitOptions", SplitOptionsSchema, options);
  const out: Record<SplitName, T[]> = { train: [], validation: [], test: [] };
  for (const doc of docs) out[assign(doc.id, config)].push(doc);
  return out;
}
