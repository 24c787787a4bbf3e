/**
 * Environment variables through `node:process`, which Deno and Bun both provide. Reading never
 * throws: without Deno's `--allow-env` a variable reads as unset.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readEnv } from "./env.ts";
 * assert.ok(readEnv("FERRY_SURELY_UNSET_VARIABLE") === undefined);
 * ```
 * @module
 */
import process from "node:process";

/** The variable's value, or undefined when it is unset or cannot be read. */
export function readEnv(name: string): string | undefined {
  try {
    return process.env[name];
  } catch {
    return undefined;
  }
}
