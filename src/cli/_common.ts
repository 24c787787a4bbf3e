/**
 * Shared pieces of the command line: strict flag parsing with short error messages, number and
 * id-list parsing, and opening a device and a checkpoint folder.
 *
 * Every problem with the user's input is a {@link UsageError}; `src/cli.ts` prints any error as
 * one line, `ferry: <message>`, and exits with status 1.
 * @module
 */
import { type FileInfo, isNotFound, stat, writeAllSync } from "../host/runtime.ts";
import { parseArgs } from "node:util";
import { BROWN_GENRES, type BrownGenre } from "../data/brown.ts";
import { createDevice } from "../device/create_device.ts";
import type { Device } from "../device/device.ts";
import type { ModelConfig } from "../models/config.ts";
import { parseModelConfig } from "../models/config.ts";
import { readHfConfig } from "../models/load.ts";

/** Bad flags, missing values, or values out of range. */
export class UsageError extends TypeError {
  override name = "UsageError";
}

/** A flag a command accepts. */
export interface FlagSpec {
  type: "string" | "boolean";
  short?: string;
}

/** Parsed flags: strings for string flags, `true` for boolean flags that were given. */
export type FlagValues = Record<string, string | boolean | undefined>;

/**
 * Parses `args` strictly: unknown flags, a string flag without a value and a boolean flag with
 * one are errors; `help`/`-h` is always accepted.
 *
 * @param command the command name, for messages
 * @param args the arguments after the command name
 * @param flags the flags the command accepts (without `help`)
 * @returns the flag values and the positional arguments
 * @throws {UsageError} on any problem, with a one-line message
 */
export function parseFlags(
  command: string,
  args: string[],
  flags: Record<string, FlagSpec>,
): { values: FlagValues; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args,
      strict: true,
      allowPositionals: true,
      options: { ...flags, help: { type: "boolean", short: "h" } },
    });
    return { values: values as FlagValues, positionals };
  } catch (err) {
    const e = err as Error & { code?: string };
    const flag = /'(?:-\w, )?(-[^' ]+)/.exec(e.message)?.[1] ?? "";
    if (e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      throw new UsageError(`${command}: unknown option ${flag} (see ferry ${command} --help)`);
    }
    if (e.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
      if (/argument missing/.test(e.message)) throw new UsageError(`${command}: ${flag} needs a value`);
      if (/ambiguous/.test(e.message)) {
        throw new UsageError(
          `${command}: ${flag} needs a value; write a value starting with "-" as ${flag}=VALUE`,
        );
      }
      if (/does not take an argument/.test(e.message)) {
        throw new UsageError(`${command}: ${flag} takes no value`);
      }
    }
    throw new UsageError(`${command}: ${e.message.split("\n")[0]}`);
  }
}

/** The value of a string flag, or `undefined`. */
export function str(values: FlagValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === "string" ? v : undefined;
}

/** The value of a required string flag; `what` shows the form of the value (`FILE`, `1,2,3`). */
export function required(command: string, values: FlagValues, name: string, what: string): string {
  const v = str(values, name);
  if (v === undefined) throw new UsageError(`${command}: --${name} ${what} is required`);
  if (v.trim() === "") throw new UsageError(`${command}: --${name} is empty; expected ${what}`);
  return v;
}

/**
 * A flag value that must be one of `choices`.
 *
 * @throws {UsageError} listing the choices once
 */
export function parseChoice<T extends string>(
  command: string,
  flag: string,
  value: string,
  choices: readonly T[],
): T {
  if (!(choices as readonly string[]).includes(value.trim())) {
    throw new UsageError(`${command}: --${flag} must be one of ${choices.join(", ")}: received ${value}`);
  }
  return value.trim() as T;
}

/** Refuses positional arguments a command does not take. */
export function noPositionals(command: string, positionals: string[]): void {
  if (positionals.length > 0) {
    throw new UsageError(
      `${command}: unexpected argument "${
        positionals[0]
      }"; every input is a flag (see ferry ${command} --help)`,
    );
  }
}

/**
 * An integer flag value (decimal digits only).
 *
 * @throws {UsageError} when it is not an integer of at least `min`
 */
export function parseInteger(command: string, flag: string, value: string, min = 0): number {
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`${command}: --${flag} must be an integer >= ${min}: received ${value}`);
  }
  return n;
}

/**
 * A finite number flag value in `[min, max]` (`minExclusive`/`maxExclusive` open either end); the
 * message states the range once, as accepted.
 *
 * @throws {UsageError} when it is not such a number
 */
export function parseNumber(
  command: string,
  flag: string,
  value: string,
  { min, max, minExclusive = false, maxExclusive = false }: {
    min: number;
    max: number;
    minExclusive?: boolean;
    maxExclusive?: boolean;
  },
): number {
  const n = value.trim() === "" ? NaN : Number(value);
  const ok = Number.isFinite(n) && (minExclusive ? n > min : n >= min) && (maxExclusive ? n < max : n <= max);
  if (!ok) {
    const open = maxExclusive || max === Infinity;
    const range = `${minExclusive ? "(" : "["}${min}, ${max === Infinity ? "∞" : max}${open ? ")" : "]"}`;
    throw new UsageError(`${command}: --${flag} must be a number in ${range}: received ${value}`);
  }
  return n;
}

/**
 * Token ids written as `1,2,3`.
 *
 * @throws {UsageError} when the list is empty or an entry is not a non-negative integer
 */
export function parseIds(command: string, value: string): number[] {
  const parts = value.split(",").map((p) => p.trim());
  const bad = parts.find((p) => !/^\d+$/.test(p) || !Number.isSafeInteger(Number(p)));
  if (bad !== undefined) {
    throw new UsageError(
      `${command}: --ids must be comma-separated non-negative integers such as 1,2,3: received ${
        JSON.stringify(bad === "" ? value : bad)
      }`,
    );
  }
  return parts.map(Number);
}

/**
 * Checks that every id is below the model's vocabulary size.
 *
 * @throws {UsageError} naming the first id outside it
 */
export function checkIdsInVocab(command: string, ids: readonly number[], config: ModelConfig): void {
  const i = ids.findIndex((id) => id >= config.vocabSize);
  if (i >= 0) {
    throw new UsageError(
      `${command}: token id ${
        ids[i]
      } (position ${i}) is outside the model's vocabulary of ${config.vocabSize} (ids 0..${
        config.vocabSize - 1
      })`,
    );
  }
}

/** The values `--backend` takes. */
export const BACKENDS = ["auto", "webgpu", "cpu"] as const;

/** `--backend` (default `auto`, which honours `FERRY_BACKEND`). */
export function parseBackend(command: string, values: FlagValues): typeof BACKENDS[number] {
  const v = str(values, "backend") ?? "auto";
  if (!(BACKENDS as readonly string[]).includes(v)) {
    throw new UsageError(`${command}: --backend must be one of ${BACKENDS.join(", ")}: received ${v}`);
  }
  return v as typeof BACKENDS[number];
}

/** Opens the compute device for `--backend`. */
export function openDevice(backend: typeof BACKENDS[number]): Promise<Device> {
  return createDevice({ backend });
}

/** Whether `path` is a file. */
export async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/** `dir/name`. */
export const join = (dir: string, name: string): string => `${dir.replace(/[\\/]+$/, "")}/${name}`;

/**
 * Reads and validates a checkpoint folder's `config.json` (no weights are read).
 *
 * @throws {UsageError} when the folder does not exist or is not a folder
 * @throws {FormatError} when config.json is missing or not JSON
 * @throws {ConfigError} when the config is unsupported or invalid
 */
export async function readModelDir(
  command: string,
  dir: string,
): Promise<{ hfConfig: Record<string, unknown>; config: ModelConfig }> {
  let info: FileInfo;
  try {
    info = await stat(dir);
  } catch (err) {
    if (isNotFound(err)) {
      throw new UsageError(
        `${command}: --model ${dir}: no such folder; pass a Hugging Face checkpoint folder`,
      );
    }
    throw err;
  }
  if (!info.isDirectory) {
    throw new UsageError(
      `${command}: --model ${dir} is not a folder; pass a Hugging Face checkpoint folder (config.json and safetensors)`,
    );
  }
  const hfConfig = await readHfConfig(dir);
  return { hfConfig, config: parseModelConfig(hfConfig) };
}

/** Writes text to stdout now (for streaming). */
export function writeOut(text: string): void {
  writeAllSync("stdout", new TextEncoder().encode(text));
}

/** Writes text to stderr now (progress). */
export function writeErr(text: string): void {
  writeAllSync("stderr", new TextEncoder().encode(text));
}

/** `1234567` → `"1,234,567"`. */
export const fmtInt = (n: number): string => n.toLocaleString("en-US");

/**
 * The genres of a `--data brown` or `brown:GENRE[,GENRE]` source (all for plain `brown`), or
 * `undefined` when `data` names no Brown source; an unknown genre is a usage error.
 */
export function parseBrownGenres(command: string, data: string): BrownGenre[] | undefined {
  const m = /^brown(?::(.*))?$/.exec(data);
  if (!m) return undefined;
  if (m[1] === undefined) return [...BROWN_GENRES];
  const genres = m[1].split(",").map((g) => g.trim());
  const bad = genres.find((g) => !(BROWN_GENRES as readonly string[]).includes(g));
  if (bad !== undefined) {
    throw new UsageError(
      `${command}: --data ${data}: unknown Brown genre ${JSON.stringify(bad)}: expected codes among ${
        BROWN_GENRES.join(", ")
      }`,
    );
  }
  return genres as BrownGenre[];
}
