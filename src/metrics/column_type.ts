/**
 * Column types of a {@linkcode MetricLog}: the names a caller declares, their Arrow
 * types, and the check each logged value goes through.
 *
 * @module
 */
import * as arrow from "apache-arrow";

/** A value a metric row may hold. `null` marks a missing value. */
export type MetricValue = number | string | boolean | bigint | null;

/** The column types a {@linkcode MetricLog} can declare or infer. */
export type ColumnType = "float64" | "float32" | "int32" | "int64" | "utf8" | "bool";

/** Every {@linkcode ColumnType}, in the order error messages list them. */
export const COLUMN_TYPES: readonly ColumnType[] = Object.freeze([
  "float64",
  "float32",
  "int32",
  "int64",
  "utf8",
  "bool",
]);

/** The Arrow type stored for a column type. */
export function arrowType(type: ColumnType): arrow.DataType {
  switch (type) {
    case "float64":
      return new arrow.Float64();
    case "float32":
      return new arrow.Float32();
    case "int32":
      return new arrow.Int32();
    case "int64":
      return new arrow.Int64();
    case "utf8":
      return new arrow.Utf8();
    case "bool":
      return new arrow.Bool();
  }
}

/**
 * The column type a first non-null value implies: numbers are `float64` (integer-looking
 * counters included; declare `int32`/`int64` to store integers), bigints `int64`,
 * strings `utf8`, booleans `bool`.
 */
export function inferColumnType(value: Exclude<MetricValue, null>): ColumnType | undefined {
  switch (typeof value) {
    case "number":
      return "float64";
    case "bigint":
      return "int64";
    case "string":
      return "utf8";
    case "boolean":
      return "bool";
    default:
      return undefined;
  }
}

/** Whether `name` is one of {@linkcode COLUMN_TYPES}. */
export function isColumnType(name: unknown): name is ColumnType {
  return typeof name === "string" && (COLUMN_TYPES as readonly string[]).includes(name);
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/**
 * Converts a non-null value to what the column stores (`int64` stores bigints), or
 * returns an error describing the mismatch. Nothing is thrown here so that the caller
 * can check a whole row before appending any of it.
 */
export function coerceValue(
  type: ColumnType,
  value: Exclude<MetricValue, null>,
): { ok: true; value: Exclude<MetricValue, null> } | { ok: false; error: TypeError | RangeError } {
  const clash = () => ({
    ok: false as const,
    error: new TypeError(`expects ${type}, received ${describeValue(value)}`),
  });
  switch (type) {
    case "float64":
    case "float32":
      return typeof value === "number" ? { ok: true, value } : clash();
    case "int32":
      if (typeof value !== "number" || !Number.isInteger(value)) return clash();
      if (value < INT32_MIN || value > INT32_MAX) {
        return {
          ok: false,
          error: new RangeError(`expects int32, received ${value}, outside [${INT32_MIN}, ${INT32_MAX}]`),
        };
      }
      return { ok: true, value };
    case "int64":
      if (typeof value === "bigint") return { ok: true, value };
      if (typeof value === "number" && Number.isSafeInteger(value)) return { ok: true, value: BigInt(value) };
      return clash();
    case "utf8":
      return typeof value === "string" ? { ok: true, value } : clash();
    case "bool":
      return typeof value === "boolean" ? { ok: true, value } : clash();
  }
}

/** `number 1.5`, `string "nan"`: a value with its JS type, for messages. */
export function describeValue(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") {
    const text = JSON.stringify(value.length > 40 ? `${value.slice(0, 39)}…` : value);
    return `string ${text}`;
  }
  if (typeof value === "bigint") return `bigint ${value}n`;
  if (typeof value === "object") return Array.isArray(value) ? "array" : "object";
  if (typeof value === "function" || typeof value === "symbol") return typeof value;
  return `${typeof value} ${String(value)}`;
}
