/**
 * Flag values the `ferry floe` subcommands share: sparsity, up-projection bits, byte counts.
 * @module
 */
import { UsageError } from "./_common.ts";

/** `--sparsity`: a number in `[0, 1)`. */
export function parseSparsity(cmd: string, v: string): number {
  const s = v.trim() === "" ? NaN : Number(v);
  if (!(Number.isFinite(s) && s >= 0 && s < 1)) {
    throw new UsageError(`${cmd}: --sparsity must be a number in [0, 1): received ${v}`);
  }
  return s;
}

/** `--up-bits`: 2, 3, 4 (HQQ) or 16 (exact). */
export function parseUpBits(cmd: string, v: string): 2 | 3 | 4 | 16 {
  if (!["2", "3", "4", "16"].includes(v.trim())) {
    throw new UsageError(`${cmd}: --up-bits must be 2, 3, 4 or 16: received ${v}`);
  }
  return Number(v) as 2 | 3 | 4 | 16;
}

const UNITS: Record<string, number> = {
  "": 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
};

/**
 * A byte count: `123456`, `700MB`, `1.5GiB`, or `P%` of `percentOf` (e.g. the experts' f16 bytes).
 *
 * @throws {UsageError} on anything else
 */
export function parseBytes(
  cmd: string,
  flag: string,
  v: string,
  percentOf?: { bytes: number; what: string },
): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(%|[kKmMgG]i?[bB]|)\s*$/.exec(v);
  if (m && m[2] === "%") {
    if (!percentOf) throw new UsageError(`${cmd}: --${flag} does not take a percentage: received ${v}`);
    return Math.floor((Number(m[1]) / 100) * percentOf.bytes);
  }
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  const n = m && unit ? Math.floor(Number(m[1]) * unit) : NaN;
  if (!(Number.isSafeInteger(n) && n > 0)) {
    throw new UsageError(
      `${cmd}: --${flag} must be a byte count such as 700000000, 700MB or 1.5GiB` +
        `${percentOf ? `, or a percentage of ${percentOf.what} such as 12%` : ""}: received ${v}`,
    );
  }
  return n;
}
