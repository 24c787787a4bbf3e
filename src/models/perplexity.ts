/**
 * Perplexity with the usual sliding-window definition (as in the transformers docs'
 * "Perplexity of fixed-length models"): windows of `blockSize` tokens start every `stride`
 * tokens; each window scores only the tokens the previous window did not, with the rest of
 * the window as context. The result is the token-weighted mean negative log-likelihood.
 *
 * @example
 * ```ts ignore
 * import { createDevice, loadModel, perplexity } from "../mod.ts";
 * const model = await loadModel("examples/models/dense", { device: await createDevice() });
 * const { perplexity: ppl, tokens } = await perplexity(model, ids, { blockSize: 256, stride: 128 });
 * ```
 * @module
 */
import {
  type BootstrapOptions,
  bootstrapPerplexity,
  type DocumentScore,
  pairedBootstrap,
  type PerplexityInterval,
} from "../metrics/bootstrap.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** What perplexity needs from a model: a full-sequence forward. `CausalLM` implements it. */
export interface ScoringModel {
  forward(ids: Int32Array): { logits: Tensor };
}

/** Options for {@link perplexity}. */
export interface PerplexityOptions {
  /** Window length (the model's context at most). */
  blockSize: number;
  /** Step between window starts (default `blockSize`: disjoint windows). */
  stride?: number;
  /** Called after each window with the tokens scored so far. */
  onProgress?: (scored: number, total: number) => void;
}

/** What {@link perplexity} returns. */
export interface PerplexityResult {
  /** Mean negative log-likelihood per scored token, in nats. */
  loss: number;
  /** exp(loss). */
  perplexity: number;
  /** Number of scored tokens (every token but the first). */
  tokens: number;
  windows: number;
}

/** Scores `tokens` under `model` with sliding windows. */
export async function perplexity(
  model: ScoringModel,
  tokens: Int32Array | readonly number[],
  options: PerplexityOptions,
): Promise<PerplexityResult> {
  const ids = Int32Array.from(tokens);
  const { blockSize, stride = blockSize, onProgress } = options;
  if (!Number.isInteger(blockSize) || blockSize < 2) {
    throw new RangeError(
      `Cannot compute perplexity: blockSize must be an integer >= 2: received ${blockSize}`,
    );
  }
  if (!Number.isInteger(stride) || stride < 1 || stride > blockSize) {
    throw new RangeError(
      `Cannot compute perplexity: stride must be an integer in [1, blockSize]: received ${stride}`,
    );
  }
  if (ids.length < 2) {
    throw new RangeError(`Cannot compute perplexity: need at least 2 tokens: received ${ids.length}`);
  }
  let nll = 0;
  let scored = 0;
  let windows = 0;
  let prevEnd = 0;
  for (let begin = 0; begin < ids.length; begin += stride) {
    const end = Math.min(begin + blockSize, ids.length);
    // Score positions [max(prevEnd, begin + 1), end): each predicted from the logits one before.
    const first = Math.max(prevEnd, begin + 1);
    if (first < end) {
      const window = ids.subarray(begin, end);
      const { logits } = model.forward(window); // [T, V]
      const data = await logits.toArray() as Float32Array;
      const v = logits.shape[1];
      logits.dispose();
      for (let j = first; j < end; j++) {
        nll -= logSoftmaxAt(data, (j - 1 - begin) * v, v, ids[j]);
        scored++;
      }
      windows++;
      onProgress?.(scored, ids.length - 1);
    }
    prevEnd = end;
    if (end === ids.length) break;
  }
  const loss = nll / scored;
  return { loss, perplexity: Math.exp(loss), tokens: scored, windows };
}

/** What {@link documentPerplexity} returns. */
export interface DocumentPerplexityResult {
  /** Each document's summed nll and scored tokens (documents under 2 tokens score none). */
  documents: DocumentScore[];
  /** The corpus perplexity `exp(Σ nll / Σ tokens)` and its bootstrap interval over documents. */
  interval: PerplexityInterval;
}

/**
 * Perplexity of a corpus scored document by document (each from its own start, sliding windows as
 * {@link perplexity}), with a bootstrap confidence interval over documents: what a table comparing
 * methods needs (score every method on the same documents, then `pairedBootstrap`).
 *
 * @throws {RangeError} when no document has 2 tokens, or on bad window or bootstrap options
 */
export async function documentPerplexity(
  model: ScoringModel,
  docs: readonly (Int32Array | readonly number[])[],
  options: PerplexityOptions & BootstrapOptions,
): Promise<DocumentPerplexityResult> {
  const { onProgress, ...rest } = options;
  const documents: DocumentScore[] = [];
  const total = docs.reduce((n, d) => n + Math.max(0, d.length - 1), 0);
  let done = 0;
  for (const doc of docs) {
    if (doc.length < 2) {
      documents.push({ nll: 0, tokens: 0 });
      continue;
    }
    const r = await perplexity(model, doc, rest);
    documents.push({ nll: r.loss * r.tokens, tokens: r.tokens });
    done += r.tokens;
    onProgress?.(done, total);
  }
  if (done === 0) throw new RangeError("Cannot compute perplexity: no document has 2 tokens");
  return { documents, interval: bootstrapPerplexity(documents, options) };
}

/** What {@link comparedPerplexity} returns: a table row's columns and, on documents, their scores. */
export interface ComparedPerplexity {
  /** `perplexity`; on documents also `perplexity_lo`, `perplexity_hi` and the paired change against
   * the baseline in percent, `change_lo_pct`, `change_hi_pct` (95%). */
  columns: { perplexity: number } & Record<string, number>;
  /** Per-document scores (on documents): pass them as the next calls' `baseline`. */
  documents?: DocumentScore[];
}

/**
 * A method's perplexity for a table that compares methods: on a stream (`Int32Array`) the plain
 * sliding-window perplexity; on documents, the pooled perplexity with its bootstrap interval over
 * documents and the paired interval of its change against `baseline` (the reference method's scores
 * on the same documents; the first call, without one, is its own baseline).
 */
export async function comparedPerplexity(
  model: ScoringModel,
  evaluation: Int32Array | readonly Int32Array[],
  options: { blockSize: number },
  baseline?: readonly DocumentScore[],
): Promise<ComparedPerplexity> {
  if (evaluation instanceof Int32Array) {
    return { columns: { perplexity: (await perplexity(model, evaluation, options)).perplexity } };
  }
  const r = await documentPerplexity(model, evaluation, options);
  const change = pairedBootstrap(r.documents, baseline ?? r.documents);
  return {
    columns: {
      perplexity: r.interval.perplexity,
      perplexity_lo: r.interval.lo,
      perplexity_hi: r.interval.hi,
      change_lo_pct: 100 * (change.lo - 1),
      change_hi_pct: 100 * (change.hi - 1),
    },
    documents: r.documents,
  };
}

/** log softmax(row)[target] in float64, for the row of length `v` starting at `offset`. */
export function logSoftmaxAt(logits: Float32Array, offset: number, v: number, target: number): number {
  if (target < 0 || target >= v) {
    throw new RangeError(`Cannot score token ${target}: it is outside the vocabulary of ${v}`);
  }
  let max = -Infinity;
  for (let i = 0; i < v; i++) max = Math.max(max, logits[offset + i]);
  let sum = 0;
  for (let i = 0; i < v; i++) sum += Math.exp(logits[offset + i] - max);
  return logits[offset + target] - max - Math.log(sum);
}
