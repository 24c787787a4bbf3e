/**
 * `ferry generate`: load a checkpoint and continue a prompt, streaming the text to stdout as
 * tokens arrive; a stats line goes to stderr.
 * @module
 */
import type { Device } from "../device/device.ts";
import { Tokenizer } from "../io/tokenizer.ts";
import type { ModelConfig } from "../models/config.ts";
import { generate } from "../models/generate.ts";
import { loadModel } from "../models/load.ts";
import {
  checkIdsInVocab,
  isFile,
  join,
  noPositionals,
  openDevice,
  parseBackend,
  parseFlags,
  parseIds,
  parseInteger,
  parseNumber,
  readModelDir,
  required,
  str,
  UsageError,
  writeErr,
  writeOut,
} from "./_common.ts";

export const GENERATE_USAGE =
  `  generate             continue a prompt, streaming text to stdout; stats on stderr
      --model DIR          HF checkpoint folder (config.json, safetensors, tokenizer.json)
      --prompt TEXT        the prompt, encoded with DIR/tokenizer.json (BOS as the tokenizer adds it)
      --ids 1,2,3          the prompt as token ids instead; prints ids if DIR has no tokenizer.json
      --max-new-tokens N   tokens to generate at most (default 32); stops early at EOS
      --temperature T      0 = greedy (default 0)
      --top-p P            nucleus sampling, in (0, 1] (default 1)
      --top-k K            keep the K most likely tokens, 0 = all (default 0)
      --seed S             sampler seed (default 0)
      --backend B          auto | webgpu | cpu (default auto; FERRY_BACKEND overrides auto)`;

const FLAGS = {
  model: { type: "string" },
  prompt: { type: "string" },
  ids: { type: "string" },
  "max-new-tokens": { type: "string" },
  temperature: { type: "string" },
  "top-p": { type: "string" },
  "top-k": { type: "string" },
  seed: { type: "string" },
  backend: { type: "string" },
} as const;

/** Runs `ferry generate`. */
export async function generateCommand(args: string[]): Promise<number> {
  const cmd = "generate";
  const { values, positionals } = parseFlags(cmd, args, FLAGS);
  if (values.help) {
    console.log(
      `usage: deno task ferry generate --model DIR (--prompt TEXT | --ids 1,2,3) [options]\n\n${GENERATE_USAGE}`,
    );
    return 0;
  }
  noPositionals(cmd, positionals);
  const dir = required(cmd, values, "model", "DIR");
  const prompt = str(values, "prompt");
  const idsText = str(values, "ids");
  if ((prompt === undefined) === (idsText === undefined)) {
    throw new UsageError(`${cmd}: pass exactly one of --prompt TEXT and --ids 1,2,3`);
  }
  if (prompt === "") throw new UsageError(`${cmd}: --prompt is empty`);
  const maxNewTokens = parseInteger(cmd, "max-new-tokens", str(values, "max-new-tokens") ?? "32", 1);
  const temperature = parseNumber(cmd, "temperature", str(values, "temperature") ?? "0", {
    min: 0,
    max: Infinity,
  });
  const topP = parseNumber(cmd, "top-p", str(values, "top-p") ?? "1", { min: 0, max: 1, minExclusive: true });
  const topK = parseInteger(cmd, "top-k", str(values, "top-k") ?? "0");
  const seed = parseInteger(cmd, "seed", str(values, "seed") ?? "0");
  const backend = parseBackend(cmd, values);
  const promptIdsGiven = idsText === undefined ? undefined : parseIds(cmd, idsText);

  const { hfConfig, config } = await readModelDir(cmd, dir);
  const hasTokenizer = await isFile(join(dir, "tokenizer.json"));
  if (prompt !== undefined && !hasTokenizer) {
    throw new UsageError(
      `${cmd}: ${dir} has no tokenizer.json, so --prompt cannot be encoded; pass token ids with --ids 1,2,3`,
    );
  }
  const tokenizer = hasTokenizer ? await Tokenizer.fromDir(dir) : undefined;
  const ids = promptIdsGiven ?? tokenizer!.encode(prompt!);
  if (ids.length === 0) throw new UsageError(`${cmd}: the prompt encodes to no tokens`);
  checkIdsInVocab(cmd, ids, config);
  const stop = stopIds(tokenizer, hfConfig, config);

  const device = await openDevice(backend);
  try {
    using model = await loadModel(dir, { device });
    const stream = tokenizer ? new TextStream(tokenizer, ids) : undefined;
    if (stream) writeOut(stream.prompt);
    let first = true;
    const result = await generate(model, ids, {
      maxNewTokens,
      temperature,
      topP,
      topK,
      seed,
      stop,
      onToken: (id) => {
        if (stream) {
          writeOut(stream.push(id));
        } else {
          writeOut(first ? `${id}` : `,${id}`);
        }
        first = false;
      },
    });
    writeOut(`${stream?.flush() ?? ""}\n`);
    writeErr(stats(device, ids.length, result));
  } finally {
    device.destroy();
  }
  return 0;
}

/** EOS ids: the tokenizer's, else config.json's `eos_token_id` (a number or a list). */
function stopIds(
  tokenizer: Tokenizer | undefined,
  hfConfig: Record<string, unknown>,
  config: ModelConfig,
): number[] {
  if (tokenizer?.eosTokenId !== undefined) return [tokenizer.eosTokenId];
  const eos = hfConfig.eos_token_id;
  const list = Array.isArray(eos) ? eos : [eos];
  return list.filter((v): v is number => Number.isInteger(v) && v >= 0 && v < config.vocabSize);
}

function stats(
  device: Device,
  promptTokens: number,
  r: Awaited<ReturnType<typeof generate>>,
): string {
  const ended = r.stopReason === "stop" ? "EOS" : "max-new-tokens";
  return `prefill ${promptTokens} tokens in ${r.prefillMs.toFixed(1)} ms; ` +
    `decode ${r.tokens.length} tokens at ${r.tokensPerSecond.toFixed(1)} tokens/s ` +
    `(${r.decodeMsPerToken.toFixed(1)} ms/token), ${r.submitsPerToken.toFixed(2)} submits/token; ` +
    `stopped at ${ended}; ${device.info.backend}: ${device.info.adapter}\n`;
}

/**
 * Incremental detokenisation: decodes a short window of recent ids and emits only the new text,
 * holding back an incomplete UTF-8 sequence (U+FFFD at the end). Decoding a window rather than
 * the last id alone keeps spaces that decoders attach to word starts.
 */
export class TextStream {
  readonly #tok: Tokenizer;
  readonly #ids: number[];
  #prefix: number;
  #read: number;
  /** The decoded prompt (special tokens skipped). */
  readonly prompt: string;

  constructor(tokenizer: Tokenizer, prompt: readonly number[]) {
    this.#tok = tokenizer;
    this.#ids = [...prompt];
    this.prompt = this.#decode(0, prompt.length);
    this.#prefix = Math.max(0, prompt.length - 5);
    this.#read = prompt.length;
  }

  #decode(from: number, to = this.#ids.length): string {
    return this.#tok.decode(this.#ids.slice(from, to), {
      skipSpecialTokens: true,
      cleanUpTokenizationSpaces: false,
    });
  }

  /** Adds one id; returns the text it completes (maybe `""`). */
  push(id: number): string {
    this.#ids.push(id);
    const before = this.#decode(this.#prefix, this.#read);
    const after = this.#decode(this.#prefix);
    if (after.length > before.length && !after.endsWith("\uFFFD") && after.startsWith(before)) {
      this.#prefix = this.#read;
      this.#read = this.#ids.length;
      return after.slice(before.length);
    }
    return "";
  }

  /** Text still held back at the end. */
  flush(): string {
    if (this.#read === this.#ids.length) return "";
    const before = this.#decode(this.#prefix, this.#read);
    const after = this.#decode(this.#prefix);
    this.#read = this.#ids.length;
    return after.startsWith(before) ? after.slice(before.length) : "";
  }
}
