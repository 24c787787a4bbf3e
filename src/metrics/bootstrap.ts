/**
 * Confidence intervals for perplexity by the bootstrap over documents: a corpus's perplexity is
 * `exp(Σ nll / Σ tokens)` over its documents, and documents (not tokens) are the independent units,
 * so each resample draws the documents with replacement ([Efron & Tibshirani 1993], the percentile
 * interval). {@link pairedBootstrap} compares two methods scored on the same documents: it resamples
 * the documents once for both, so the interval of the ratio `ppl_a / ppl_b` reflects the
 * documents' shared difficulty, and `a` beats `b` beyond the interval when its upper end is below 1.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { bootstrapPerplexity, pairedBootstrap } from "./bootstrap.ts";
 * const docs = [{ nll: 230, tokens: 100 }, { nll: 480, tokens: 200 }, { nll: 120, tokens: 50 }];
 * const ci = bootstrapPerplexity(docs, { resamples: 500, seed: 1 });
 * assert.ok(ci.lo <= ci.perplexity && ci.perplexity <= ci.hi);
 * const better = docs.map((d) => ({ nll: d.nll - 0.1 * d.tokens, tokens: d.tokens }));
 * assert.ok(pairedBootstrap(better, docs, { seed: 1 }).hi < 1); // 10% fewer nats per token, everywhere
 * ```
 * @module
 */

/** One document's summed negative log-likelihood (nats) over its scored tokens. */
export interface DocumentScore {
  readonly nll: number;
  readonly tokens: number;
}

/** Options of the bootstrap. */
export interface BootstrapOptions {
  /** Resamples (default 1000). */
  resamples?: number;
  /** Two-sided confidence level (default 0.95). */
  level?: number;
  /** Seed of the resampling (default 0): the same seed gives the same interval. */
  seed?: number;
}

/** A point estimate with its percentile interval. */
export interface Interval {
  /** The estimate on all the documents. */
  readonly value: number;
  readonly lo: number;
  readonly hi: number;
  readonly level: number;
  readonly documents: number;
  readonly tokens: number;
}

/** {@link Interval} of a perplexity, with the estimate also as `perplexity`. */
export interface PerplexityInterval extends Interval {
  readonly perplexity: number;
}

/** Mulberry32: a small seeded generator in [0, 1). */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function check(what: string, docs: readonly DocumentScore[], options: BootstrapOptions) {
  const { resamples = 1000, level = 0.95, seed = 0 } = options;
  if (docs.length === 0) throw new RangeError(`Cannot bootstrap ${what}: no documents`);
  if (!(Number.isInteger(resamples) && resamples >= 10)) {
    throw new RangeError(
      `Cannot bootstrap ${what}: resamples must be an integer ≥ 10: received ${resamples}`,
    );
  }
  if (!(level > 0 && level < 1)) {
    throw new RangeError(`Cannot bootstrap ${what}: level must lie in (0, 1): received ${level}`);
  }
  for (const [i, d] of docs.entries()) {
    if (!(Number.isFinite(d.nll) && Number.isInteger(d.tokens) && d.tokens >= 0)) {
      throw new RangeError(
        `Cannot bootstrap ${what}: document ${i} has nll ${d.nll} over ${d.tokens} tokens; ` +
          "expected a finite nll and a non-negative integer token count",
      );
    }
  }
  if (docs.every((d) => d.tokens === 0)) throw new RangeError(`Cannot bootstrap ${what}: no scored tokens`);
  return { resamples, level, seed };
}

/** The `q`-quantile of sorted `xs` (linear interpolation). */
function quantile(xs: Float64Array, q: number): number {
  const at = q * (xs.length - 1);
  const i = Math.floor(at);
  return i + 1 < xs.length ? xs[i] + (xs[i + 1] - xs[i]) * (at - i) : xs[i];
}

/** Resamples document indices and evaluates `stat` on each draw; returns the sorted statistics. */
function resample(
  n: number,
  options: Required<BootstrapOptions>,
  stat: (pick: Int32Array) => number,
): Float64Array {
  const rand = generator(options.seed);
  const out = new Float64Array(options.resamples);
  const pick = new Int32Array(n);
  for (let r = 0; r < options.resamples; r++) {
    for (let i = 0; i < n; i++) pick[i] = Math.floor(rand() * n);
    out[r] = stat(pick);
  }
  return out.sort();
}

const pplOf = (docs: readonly DocumentScore[], pick?: Int32Array) => {
  let nll = 0;
  let tokens = 0;
  const n = pick ? pick.length : docs.length;
  for (let i = 0; i < n; i++) {
    const d = docs[pick ? pick[i] : i];
    nll += d.nll;
    tokens += d.tokens;
  }
  return tokens > 0 ? Math.exp(nll / tokens) : NaN;
};

/**
 * The perplexity of `docs` and its bootstrap percentile interval over documents.
 *
 * @throws {RangeError} on no documents, no scored tokens, a non-finite nll, or bad options
 */
export function bootstrapPerplexity(
  docs: readonly DocumentScore[],
  options: BootstrapOptions = {},
): PerplexityInterval {
  const opts = check("a perplexity", docs, options);
  const draws = resample(docs.length, opts, (pick) => pplOf(docs, pick)).filter((x) => !Number.isNaN(x));
  const alpha = (1 - opts.level) / 2;
  const value = pplOf(docs);
  return {
    value,
    perplexity: value,
    lo: quantile(draws, alpha),
    hi: quantile(draws, 1 - alpha),
    level: opts.level,
    documents: docs.length,
    tokens: docs.reduce((n, d) => n + d.tokens, 0),
  };
}

/**
 * The ratio `ppl(a) / ppl(b)` of two methods scored on the same documents (same order, same token
 * counts), with its paired bootstrap interval. `hi < 1`: `a` is better beyond the interval.
 *
 * @throws {RangeError} when the two lists differ in length or in a document's token count
 */
export function pairedBootstrap(
  a: readonly DocumentScore[],
  b: readonly DocumentScore[],
  options: BootstrapOptions = {},
): Interval {
  const opts = check("a ratio", a, options);
  check("a ratio", b, options);
  if (a.length !== b.length || a.some((d, i) => d.tokens !== b[i].tokens)) {
    throw new RangeError(
      `Cannot bootstrap a ratio: the two methods must be scored on the same documents ` +
        `(${a.length} vs ${b.length} documents, or different token counts)`,
    );
  }
  const ratio = (pick?: Int32Array) => pplOf(a, pick) / pplOf(b, pick);
  const draws = resample(a.length, opts, ratio).filter((x) => !Number.isNaN(x));
  const alpha = (1 - opts.level) / 2;
  return {
    value: ratio(),
    lo: quantile(draws, alpha),
    hi: quantile(draws, 1 - alpha),
    level: opts.level,
    documents: a.length,
    tokens: a.reduce((n, d) => n + d.tokens, 0),
  };
}
