/**
 * Real text for the commands that run a checkpoint on data (`sweep`, `activations`): calibration
 * from the training split of Brown genres and evaluation documents from the validation split (the
 * two never overlap), tokenized by the checkpoint's own tokenizer.
 * @module
 */
import { type BrownGenre, loadBrown } from "../data/brown.ts";
import { tokenStream } from "../data/pack.ts";
import { splitDocuments } from "../data/splits.ts";
import { Tokenizer } from "../io/tokenizer.ts";
import type { ModelConfig } from "../models/config.ts";
import { parseBrownGenres, UsageError } from "./_common.ts";

/** `--data brown` or `brown:GENRE[,GENRE]`. */
export function parseBrownData(command: string, data: string): BrownGenre[] {
  const genres = parseBrownGenres(command, data);
  if (!genres) {
    throw new UsageError(`${command}: --data must be brown or brown:GENRE[,GENRE]: received ${data}`);
  }
  return genres;
}

/**
 * The first `tokens` ids of the genres' training-split documents (EOS after each) and the same ids
 * cut into blocks of at most 128 (or the model's context).
 *
 * @throws {UsageError} when the tokenizer produces ids outside the model's vocabulary
 */
export async function calibrationIds(
  command: string,
  dir: string,
  config: ModelConfig,
  genres: BrownGenre[],
  tokens: number,
): Promise<{ ids: Int32Array; blockSize: number; sequences: Int32Array[] }> {
  const tokenizer = await Tokenizer.fromDir(dir);
  const docs = splitDocuments(await loadBrown({ genres })).train;
  const ids = tokenStream(docs, tokenizer, { addEos: true, maxTokens: tokens });
  checkVocab(command, ids, config);
  const blockSize = Math.min(128, config.maxPositionEmbeddings);
  const sequences = Array.from(
    { length: Math.ceil(ids.length / blockSize) },
    (_, i) => ids.subarray(i * blockSize, (i + 1) * blockSize),
  );
  return { ids, blockSize, sequences };
}

function checkVocab(command: string, ids: Int32Array, config: ModelConfig): void {
  const maxId = ids.reduce((m, v) => Math.max(m, v), 0);
  if (maxId >= config.vocabSize) {
    throw new UsageError(
      `${command}: the tokenizer produced id ${maxId}, outside the model's vocabulary of ${config.vocabSize}; ` +
        `tokenizer.json does not belong to this model`,
    );
  }
}

/**
 * Whole validation-split documents of the genres (each tokenized on its own, EOS appended), in the
 * split's order, until about `tokens` ids: evaluation text with document boundaries, for
 * perplexities with bootstrap intervals over documents.
 *
 * @throws {UsageError} when the tokenizer produces ids outside the model's vocabulary
 */
export async function evaluationDocuments(
  command: string,
  dir: string,
  config: ModelConfig,
  genres: BrownGenre[],
  tokens: number,
): Promise<Int32Array[]> {
  const tokenizer = await Tokenizer.fromDir(dir);
  const out: Int32Array[] = [];
  let n = 0;
  for (const doc of splitDocuments(await loadBrown({ genres })).validation) {
    if (n >= tokens) break;
    const ids = tokenStream([doc], tokenizer, { addEos: true, maxTokens: tokens - n });
    checkVocab(command, ids, config);
    out.push(ids);
    n += ids.length;
  }
  return out;
}
