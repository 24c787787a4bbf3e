/**
 * `ferry ppl`: sliding-window perplexity of a checkpoint on the Brown corpus or a text/JSONL file,
 * tokenized with the checkpoint's own tokenizer. Results on stdout, progress on stderr.
 * @module
 */
import { isTerminal } from "../host/runtime.ts";
import { BROWN_GENRES, type BrownGenre, loadBrown } from "../data/brown.ts";
import { concatTokens, tokenStream } from "../data/pack.ts";
import { SPLIT_NAMES, splitDocuments, type SplitName } from "../data/splits.ts";
import { loadJsonl, loadTextFile, type TextDocument } from "../data/text.ts";
import { Tokenizer } from "../io/tokenizer.ts";
import { loadModel } from "../models/load.ts";
import { documentPerplexity, perplexity } from "../models/perplexity.ts";
import { loadSotu } from "../data/sotu.ts";
import {
  fmtInt,
  isFile,
  join,
  noPositionals,
  openDevice,
  parseBackend,
  parseBrownGenres,
  parseFlags,
  parseInteger,
  readModelDir,
  required,
  str,
  UsageError,
  writeErr,
} from "./_common.ts";

export const PPL_USAGE =
  `  ppl                  sliding-window perplexity on a corpus, with the model's tokenizer
      --model DIR          HF checkpoint folder with tokenizer.json
      --data SOURCE        brown:GENRE[,GENRE] (codes ${BROWN_GENRES[0]}..${
    BROWN_GENRES[BROWN_GENRES.length - 1]
  }, or brown for all),
                           sotu (State of the Union addresses, a second domain),
                           FILE.txt (one document per paragraph) or FILE.jsonl ("text" field)
      --split S            validation | test | train | all: the documents of that split (by
                           document id, seed 0, 80/10/10); default validation for brown and sotu, all for files
      --block-size N       window length (default 256, or max_position_embeddings if smaller)
      --stride N           step between windows, 1..block size (default: the block size)
      --max-tokens N       score only the first N tokens of the stream
      --per-document       score each document from its own start and add a 95% bootstrap
                           interval over documents (documents are the independent units)
      --backend B          auto | webgpu | cpu (default auto)`;

const FLAGS = {
  model: { type: "string" },
  data: { type: "string" },
  split: { type: "string" },
  "block-size": { type: "string" },
  stride: { type: "string" },
  "max-tokens": { type: "string" },
  "per-document": { type: "boolean" },
  backend: { type: "string" },
} as const;

/** Runs `ferry ppl`. */
export async function pplCommand(args: string[]): Promise<number> {
  const cmd = "ppl";
  const { values, positionals } = parseFlags(cmd, args, FLAGS);
  if (values.help) {
    console.log(`usage: deno task ferry ppl --model DIR --data SOURCE [options]\n\n${PPL_USAGE}`);
    return 0;
  }
  noPositionals(cmd, positionals);
  const dir = required(cmd, values, "model", "DIR");
  const data = required(cmd, values, "data", "SOURCE");
  const source = parseSource(data);
  const splitText = str(values, "split") ??
    (source.kind === "brown" || source.kind === "sotu" ? "validation" : "all");
  if (![...SPLIT_NAMES, "all"].includes(splitText)) {
    throw new UsageError(
      `${cmd}: --split must be one of ${[...SPLIT_NAMES, "all"].join(", ")}: received ${splitText}`,
    );
  }
  const split = splitText as SplitName | "all";
  const blockText = str(values, "block-size");
  let blockSize = blockText === undefined ? undefined : parseInteger(cmd, "block-size", blockText, 2);
  const strideText = str(values, "stride");
  const stride = strideText === undefined ? undefined : parseInteger(cmd, "stride", strideText, 1);
  const maxText = str(values, "max-tokens");
  const maxTokens = maxText === undefined ? undefined : parseInteger(cmd, "max-tokens", maxText, 2);
  const backend = parseBackend(cmd, values);

  const { config } = await readModelDir(cmd, dir);
  if (blockSize === undefined) {
    blockSize = Math.min(256, config.maxPositionEmbeddings);
  } else if (blockSize > config.maxPositionEmbeddings) {
    writeErr(
      `ferry: warning: --block-size ${blockSize} is above the model's max_position_embeddings ` +
        `(${config.maxPositionEmbeddings})\n`,
    );
  }
  if (stride !== undefined && stride > blockSize) {
    throw new UsageError(`${cmd}: --stride ${stride} must be at most the block size (${blockSize})`);
  }
  if (!(await isFile(join(dir, "tokenizer.json")))) {
    throw new UsageError(
      `${cmd}: ${dir} has no tokenizer.json; ppl tokenizes the data with the model's tokenizer`,
    );
  }
  const tokenizer = await Tokenizer.fromDir(dir);

  const docs = await loadDocuments(source);
  const chosen = split === "all" ? docs : splitDocuments(docs)[split];
  if (chosen.length === 0) {
    throw new UsageError(
      `${cmd}: the ${split} split of ${data} has no documents (of ${docs.length}); try --split all`,
    );
  }
  const addEos = tokenizer.eosTokenId !== undefined;
  // --per-document: each document tokenized on its own (the stream's token budget kept); the stream is
  // then their concatenation, which is what tokenStream gives.
  const perDocument = values["per-document"] === true;
  const documents: Int32Array[] = [];
  if (perDocument) {
    for (let i = 0, n = 0; i < chosen.length && (maxTokens === undefined || n < maxTokens); i++) {
      const d = tokenStream([chosen[i]], tokenizer, {
        addEos,
        maxTokens: maxTokens === undefined ? undefined : maxTokens - n,
      });
      documents.push(d);
      n += d.length;
    }
  }
  const ids = perDocument ? concatTokens(documents) : tokenStream(chosen, tokenizer, { addEos, maxTokens });
  if (ids.length < 2) throw new UsageError(`${cmd}: ${data} (${split}) has fewer than 2 tokens`);
  let maxId = 0;
  for (const id of ids) maxId = Math.max(maxId, id);
  if (maxId >= config.vocabSize) {
    throw new UsageError(
      `${cmd}: the tokenizer produced id ${maxId}, outside the model's vocabulary of ${config.vocabSize}; ` +
        `tokenizer.json does not belong to this model`,
    );
  }

  const device = await openDevice(backend);
  try {
    using model = await loadModel(dir, { device });
    const terminal = isTerminal("stderr");
    let lastTenth = -1;
    const t0 = performance.now();
    const progress = {
      blockSize,
      ...(stride === undefined ? {} : { stride }),
      onProgress: (scored: number, total: number) => {
        const line = `ppl: ${fmtInt(scored)}/${fmtInt(total)} tokens scored`;
        if (terminal) {
          writeErr(`\r${line}`);
        } else if (Math.floor((10 * scored) / total) > lastTenth) {
          lastTenth = Math.floor((10 * scored) / total);
          writeErr(`${line}\n`);
        }
      },
    };
    const byDoc = perDocument ? await documentPerplexity(model, documents, progress) : undefined;
    const r = byDoc
      ? {
        tokens: byDoc.interval.tokens,
        loss: Math.log(byDoc.interval.perplexity),
        perplexity: byDoc.interval.perplexity,
        windows: NaN,
      }
      : await perplexity(model, ids, progress);
    const ms = performance.now() - t0;
    if (terminal) writeErr("\n");
    writeErr(
      `${byDoc ? `${documents.length} documents` : `${r.windows} windows`} in ${(ms / 1000).toFixed(2)} s (${
        (r.tokens / (ms / 1000)).toFixed(0)
      } tokens/s); ` +
        `${device.info.backend}: ${device.info.adapter}\n`,
    );
    console.log(
      `data        ${data} (${split}: ${chosen.length} documents${
        byDoc ? `, ${documents.length} scored` : ""
      })`,
    );
    console.log(`block size  ${blockSize}, stride ${stride ?? blockSize}`);
    console.log(`tokens      ${r.tokens}`);
    console.log(`loss        ${r.loss.toFixed(4)}`);
    console.log(`perplexity  ${r.perplexity.toFixed(3)}`);
    if (byDoc) {
      const { lo, hi, level, documents: n } = byDoc.interval;
      console.log(
        `${Math.round(level * 100)}% CI      ${lo.toFixed(3)}–${
          hi.toFixed(3)
        } (bootstrap over ${n} documents)`,
      );
    }
  } finally {
    device.destroy();
  }
  return 0;
}

type Source =
  | { kind: "brown"; genres: BrownGenre[] }
  | { kind: "sotu" }
  | { kind: "jsonl" | "text"; path: string };

function parseSource(data: string): Source {
  const genres = parseBrownGenres("ppl", data);
  if (genres) return { kind: "brown", genres };
  if (data === "sotu") return { kind: "sotu" };
  return { kind: /\.jsonl$/i.test(data) ? "jsonl" : "text", path: data };
}

async function loadDocuments(source: Source): Promise<TextDocument[]> {
  if (source.kind === "brown") return await loadBrown({ genres: source.genres });
  if (source.kind === "sotu") return await loadSotu();
  if (!(await isFile(source.path))) {
    throw new UsageError(
      `ppl: --data ${source.path}: no such file; pass brown:GENRE, a .txt or a .jsonl file`,
    );
  }
  return source.kind === "jsonl" ? await loadJsonl(source.path) : await loadTextFile(source.path);
}
