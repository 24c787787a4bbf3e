/**
 * The unigram baseline: an add-α smoothed (Laplace for α = 1) unigram language model over token
 * ids, and its perplexity on held-out ids. It ignores context entirely, so it is the bar any
 * trained language model with the same tokenizer must clearly beat.
 *
 * Fitted on `N` training tokens over a vocabulary of `V` ids, where token `t` occurs `c(t)` times:
 *
 *     p(t) = (c(t) + α) / (N + α·V)
 *     perplexity = exp(−(1/M) · Σᵢ ln p(tᵢ))      over the M evaluation tokens
 *
 * Every id in `[0, V)` gets probability mass, so unseen tokens (and special tokens that never
 * occur, such as padding) cost a finite amount. Perplexity is per token: it compares models that
 * share a tokenizer; across tokenizers compare bits per byte (`totalNll / ln 2 / bytes`).
 *
 * @example Fit once, evaluate several sets
 * ```ts
 * import assert from "node:assert/strict";
 * import { fitUnigram } from "./unigram.ts";
 *
 * const model = fitUnigram([0, 0, 1], 3); // counts 2, 1, 0 → p = 3/6, 2/6, 1/6
 * assert.ok(Math.abs(model.perplexity([0]) - 2) < 1e-12);
 * assert.ok(Math.abs(model.perplexity([2]) - 6) < 1e-12);
 * ```
 * @module
 */

import { z } from "zod";
import { parseConfig } from "../config.ts";

/** Options of {@linkcode fitUnigram} and {@linkcode unigramPerplexity}. */
export const UnigramOptionsSchema = z.strictObject({
  /** Pseudo-count added to every id: 1 is Laplace (add-one) smoothing; > 0 keeps unseen ids finite. */
  alpha: z.number().positive().default(1),
});

/** What callers pass to {@linkcode fitUnigram} and {@linkcode unigramPerplexity}. */
export type UnigramOptions = z.input<typeof UnigramOptionsSchema>;

/** The negative log-likelihood of a token sequence under a {@linkcode UnigramModel}. */
export interface UnigramScore {
  /** `Σ −ln p(tᵢ)` in nats, for pooling several sets: `exp(Σ totalNll / Σ nTokens)`. */
  readonly totalNll: number;
  /** Number of tokens scored, `M`. */
  readonly nTokens: number;
  /** Mean NLL per token in nats (the cross-entropy a language model's loss reports). */
  readonly nllPerToken: number;
  /** `exp(nllPerToken)`. */
  readonly perplexity: number;
}

/** A fitted unigram model: log-probabilities for every id in `[0, vocabSize)`. */
export interface UnigramModel {
  /** Vocabulary size `V`. */
  readonly vocabSize: number;
  /** Training tokens `N`. */
  readonly nTrain: number;
  /** `ln p(t)` for each id `t`, `[V]`. */
  readonly logProbs: Float64Array;
  /**
   * Scores evaluation ids.
   * @throws {RangeError} When `ids` is empty or has an id outside `[0, vocabSize)`.
   */
  score(ids: ArrayLike<number>): UnigramScore;
  /**
   * The perplexity of evaluation ids, `score(ids).perplexity`.
   * @throws {RangeError} As `score`.
   */
  perplexity(ids: ArrayLike<number>): number;
}

/**
 * Fits an add-α smoothed unigram model on training token ids.
 *
 * @param trainIds Training ids (an array or a typed array such as `Int32Array`); may be empty,
 *   which gives the uniform distribution.
 * @param vocabSize Vocabulary size `V`: every id must be an integer in `[0, V)`.
 * @param options `alpha` (default 1, Laplace smoothing).
 * @returns The model.
 * @throws {RangeError} When `vocabSize` is not a positive integer or an id is out of range.
 * @throws {ConfigError} For an invalid `alpha` or an unknown option.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fitUnigram } from "./unigram.ts";
 *
 * const model = fitUnigram(new Int32Array([1, 1, 1]), 2, { alpha: 1 }); // p = 1/5, 4/5
 * assert.ok(Math.abs(Math.exp(model.logProbs[1]) - 0.8) < 1e-12);
 * ```
 */
export function fitUnigram(
  trainIds: ArrayLike<number>,
  vocabSize: number,
  options: UnigramOptions = {},
): UnigramModel {
  const { alpha } = parseConfig("UnigramOptions", UnigramOptionsSchema, options);
  if (!Number.isInteger(vocabSize) || vocabSize < 1) {
    throw new RangeError(
      `Cannot fit a unigram model: vocabSize must be a positive integer, received ${vocabSize}`,
    );
  }
  const counts = new Float64Array(vocabSize);
  for (let i = 0; i < trainIds.length; i++) counts[checkId(trainIds[i], i, vocabSize, "training")]++;
  const logDenominator = Math.log(trainIds.length + alpha * vocabSize);
  const logProbs = counts.map((c) => Math.log(c + alpha) - logDenominator);

  const score = (ids: ArrayLike<number>): UnigramScore => {
    if (ids.length === 0) {
      throw new RangeError("Cannot score an empty sequence: perplexity needs at least one token");
    }
    let totalNll = 0;
    for (let i = 0; i < ids.length; i++) totalNll -= logProbs[checkId(ids[i], i, vocabSize, "evaluation")];
    const nllPerToken = totalNll / ids.length;
    return { totalNll, nTokens: ids.length, nllPerToken, perplexity: Math.exp(nllPerToken) };
  };
  return { vocabSize, nTrain: trainIds.length, logProbs, score, perplexity: (ids) => score(ids).perplexity };
}

/**
 * The perplexity of `evalIds` under an add-α smoothed unigram model fitted on `trainIds`:
 * `fitUnigram(trainIds, vocabSize, options).perplexity(evalIds)`.
 *
 * @param trainIds Training ids.
 * @param evalIds Evaluation ids (at least one).
 * @param vocabSize Vocabulary size `V`.
 * @param options `alpha` (default 1, Laplace smoothing).
 * @returns The perplexity per token.
 * @throws {RangeError} As {@linkcode fitUnigram}, or when `evalIds` is empty.
 *
 * @example By hand
 * ```ts
 * import assert from "node:assert/strict";
 * import { unigramPerplexity } from "./unigram.ts";
 *
 * // V = 3, train 0 0 1: p = (2+1)/6, (1+1)/6, (0+1)/6. Eval 0 2: exp(−(ln 1/2 + ln 1/6)/2) = √12.
 * assert.ok(Math.abs(unigramPerplexity([0, 0, 1], [0, 2], 3) - Math.sqrt(12)) < 1e-12);
 * ```
 */
export function unigramPerplexity(
  trainIds: ArrayLike<number>,
  evalIds: ArrayLike<number>,
  vocabSize: number,
  options: UnigramOptions = {},
): number {
  return fitUnigram(trainIds, vocabSize, options).perplexity(evalIds);
}

function checkId(id: number, index: number, vocabSize: number, which: string): number {
  if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
    throw new RangeError(
      `Cannot use ${which} id ${id} at index ${index}: ids must be integers in [0, ${vocabSize})`,
    );
  }
  return id;
}
