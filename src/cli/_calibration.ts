/**
 * Calibration text for the commands that run a checkpoint on real data (`sweep`, `activations`):
 * the validation split of Brown genres, tokenized by the checkpoint's own tokenizer, cut into
 * blocks the model can take.
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
 * The first `tokens` ids of the genres' validation documents (EOS after each) and the same ids cut
 * into blocks of at most 128 (or the model's context).
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
  const docs = splitDocuments(await loadBrown({ genres })).validation;
  const ids = tokenStream(docs, tokenizer, { addEos: true, maxTokens: tokens });
  const maxId = ids.reduce((m, v) => Math.max(m, v), 0);
  if (maxId >= config.vocabSize) {
    throw new UsageError(
      `${command}: the tokenizer produced id ${maxId}, outside the model's vocabulary of ${config.vocabSize}; ` +
        `tokenizer.json does not belong to this model`,
    );
  }
  const blockSize = Math.min(128, config.maxPositionEmbeddings);
  const sequences = Array.from(
    { length: Math.ceil(ids.length / blockSize) },
    (_, i) => ids.subarray(i * blockSize, (i + 1) * blockSize),
  );
  return { ids, blockSize, sequences };
}
