/**
 * Flag parsing shared by `ferry loram plan` and `ferry loram run`.
 * @module
 */
import { LORAM_METHODS, type LoramMethod } from "../loram/param_count.ts";
import { UsageError } from "./_common.ts";

/**
 * `START:END` as a half-open layer range.
 * @throws {UsageError} when it is not two integers
 */
export function parseLayerRange(cmd: string, text: string): [number, number] {
  const m = /^\s*(\d+)\s*:\s*(\d+)\s*$/.exec(text);
  if (!m) {
    throw new UsageError(
      `${cmd}: --layers must be START:END (two integers, END exclusive): received ${text}`,
    );
  }
  return [Number(m[1]), Number(m[2])];
}

/** `--method`, checked. */
export function parseMethod(cmd: string, text: string): LoramMethod {
  if (!(LORAM_METHODS as readonly string[]).includes(text)) {
    throw new UsageError(`${cmd}: --method must be one of ${LORAM_METHODS.join(", ")}: received ${text}`);
  }
  return text as LoramMethod;
}

/** `--ratio`, in (0, 1). */
export function parseRatio(cmd: string, text: string): number {
  const p = text.trim() === "" ? NaN : Number(text);
  if (!(p > 0 && p < 1)) throw new UsageError(`${cmd}: --ratio must be a number in (0, 1): received ${text}`);
  return p;
}
