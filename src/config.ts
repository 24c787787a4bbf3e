/**
 * Config parsing: every configurable class keeps one `z.strictObject` schema beside it
 * and parses its options once, in the constructor, through {@linkcode parseConfig}.
 * Failures become a {@linkcode ConfigError} that lists one line per problem, names the
 * allowed keys when a key is unknown, and suggests the closest one for a typo.
 *
 * @example Parsing options for a class
 * ```ts
 * import assert from "node:assert/strict";
 * import { z } from "zod";
 * import { parseConfig } from "./config.ts";
 *
 * const LoraConfigSchema = z.strictObject({
 *   r: z.number().int().min(1).default(8),
 *   loraAlpha: z.number().positive().default(16),
 * });
 * const config = parseConfig("LoraConfig", LoraConfigSchema, { r: 4 });
 * assert.deepEqual(config, { r: 4, loraAlpha: 16 });
 * assert.ok(Object.isFrozen(config));
 * ```
 * @module
 */
import type { z } from "zod";
import { ConfigError } from "./errors.ts";

/** The slice of a zod 4 issue this module reads; the rest is passed through untouched. */
interface Issue {
  readonly code: string;
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly input?: unknown;
  readonly keys?: readonly string[];
}

/**
 * Validates `input` against a zod schema and returns the parsed value with defaults
 * filled in, deeply frozen (plain objects and arrays; class instances and typed arrays
 * are left as they are).
 *
 * @typeParam S The zod schema; the result has type `z.output<S>`.
 * @param what Name of the config for messages, e.g. `"LoraConfig"`.
 * @param schema Schema to validate against; use `z.strictObject` so typos fail.
 * @param input What the caller passed (`z.input<S>` in practice).
 * @returns A frozen parsed copy.
 * @throws {ConfigError} When validation fails. The message reads
 *   `Invalid <what> config:` followed by one line per issue, `path: problem (received …)`.
 *
 * @example A typo gets a suggestion
 * ```ts
 * import assert from "node:assert/strict";
 * import { z } from "zod";
 * import { parseConfig } from "./config.ts";
 * import { ConfigError } from "./errors.ts";
 *
 * const Schema = z.strictObject({ groupSize: z.number().int().default(64) });
 * assert.throws(
 *   () => parseConfig("Quantizer", Schema, { grupSize: 32 }),
 *   (err) => err instanceof ConfigError && err.message.includes('did you mean "groupSize"?'),
 * );
 * ```
 */
export function parseConfig<S extends z.ZodType>(what: string, schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input, { reportInput: true });
  if (!result.success) {
    throw new ConfigError(formatIssues(what, schema, result.error.issues as readonly Issue[], input));
  }
  return deepFreeze(result.data);
}

function formatIssues(what: string, schema: z.ZodType, issues: readonly Issue[], input: unknown): string {
  const lines: string[] = [];
  for (const issue of issues) {
    if (issue.code === "unrecognized_keys" && issue.keys) {
      const given = valueAt(input, issue.path);
      const allowed = objectKeysAt(schema, issue.path, input);
      for (const key of issue.keys) {
        const value = isRecord(given) ? given[key] : undefined;
        lines.push(
          `${formatPath([...issue.path, key])}: unknown key (received ${describe(value)})` +
            unknownKeyHint(key, allowed, given),
        );
      }
    } else {
      lines.push(`${formatPath(issue.path)}: ${problem(issue)}`);
    }
  }
  return `Invalid ${what} config:\n${lines.map((line) => `  ${line}`).join("\n")}`;
}

/** One issue as `problem (received …)`, rewording zod's default type messages. */
function problem(issue: Issue): string {
  const expected = (issue as { expected?: unknown }).expected;
  if (issue.code === "invalid_type" && issue.message.startsWith("Invalid input: expected")) {
    if (issue.input === undefined) return `required, expected ${expected} (received undefined)`;
    return `expected ${expected} (received ${typeName(issue.input)} ${describe(issue.input)})`;
  }
  const options = unionOptions(issue);
  if (options !== undefined) {
    const list = `expected one of ${options.join(" | ")}`;
    if (issue.input === undefined) return `required, ${list} (received undefined)`;
    return `${list} (received ${describe(issue.input)})`;
  }
  const discriminator = (issue as { discriminator?: unknown }).discriminator;
  const received =
    issue.code === "invalid_union" && typeof discriminator === "string" && isRecord(issue.input)
      ? issue.input[discriminator]
      : issue.input;
  return "input" in issue ? `${issue.message} (received ${describe(received)})` : issue.message;
}

/** For a union of plain alternatives (`2 | 3 | "auto" | string`), the alternatives. */
function unionOptions(issue: Issue): string[] | undefined {
  const branches = (issue as { errors?: readonly (readonly Issue[])[] }).errors;
  if (issue.code !== "invalid_union" || !branches || branches.length === 0) return undefined;
  const options: string[] = [];
  for (const branch of branches) {
    if (branch.length !== 1 || branch[0].path.length !== 0) return undefined;
    const { values, expected } = branch[0] as { values?: unknown[]; expected?: unknown };
    if (branch[0].code === "invalid_value" && values) options.push(...values.map((v) => describe(v)));
    else if (branch[0].code === "invalid_type" && typeof expected === "string") options.push(expected);
    else return undefined;
  }
  return options;
}

function unknownKeyHint(key: string, allowed: readonly string[] | undefined, given: unknown): string {
  if (allowed === undefined) return "";
  if (allowed.length === 0) return "; this object takes no keys";
  const unused = allowed.filter((name) => !(isRecord(given) && name in given));
  const guess = closestMatch(key, unused) ?? closestMatch(key, allowed);
  const list = allowed.join(", ");
  return guess === undefined ? `; allowed keys: ${list}` : `; did you mean "${guess}"? Allowed keys: ${list}`;
}

function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

/** `a.b[0].c`, or `(root)` for the top level. */
function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "(root)";
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else if (typeof part === "symbol") out += `[${part.toString()}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(part)) out += out === "" ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out;
}

/** A short, one-line rendering of a received value. */
function describe(value: unknown): string {
  const MAX = 60;
  let text: string;
  if (value === undefined) text = "undefined";
  else if (typeof value === "bigint") text = `${value}n`;
  else if (typeof value === "function") text = `function ${value.name || "(anonymous)"}`;
  else if (typeof value === "symbol") text = value.toString();
  else if (typeof value === "number") text = String(value); // JSON would print NaN as null
  else {
    try {
      text = JSON.stringify(value, (_k, v) => typeof v === "bigint" ? `${v}n` : v) ?? String(value);
    } catch {
      text = Object.prototype.toString.call(value);
    }
  }
  return text.length > MAX ? `${text.slice(0, MAX - 1)}…` : text;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const part of path) {
    if (typeof value !== "object" || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return value;
}

// ---------------------------------------------------------------------------------------
// Schema walking. zod 4 exposes each schema's definition at `_zod.def`; we follow the
// wrappers (optional, default, pipe, …) down the issue's path to the object whose keys
// were rejected, choosing a union's option by its discriminator. Anything we cannot
// follow yields undefined and the message simply omits the allowed keys.

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  innerType?: z.ZodType;
  in?: z.ZodType;
  element?: z.ZodType;
  valueType?: z.ZodType;
  items?: z.ZodType[];
  rest?: z.ZodType | null;
  getter?: () => z.ZodType;
  left?: z.ZodType;
  right?: z.ZodType;
  options?: z.ZodType[];
  discriminator?: string;
  values?: unknown[];
}

function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

function unwrap(schema: z.ZodType): z.ZodType {
  for (let depth = 0; depth < 32; depth++) {
    const def = defOf(schema);
    const next = def.type === "pipe" ? def.in : def.type === "lazy" ? def.getter?.() : def.innerType;
    if (next === undefined) return schema;
    schema = next;
  }
  return schema;
}

function objectKeysAt(schema: z.ZodType, path: readonly PropertyKey[], input: unknown): string[] | undefined {
  let current: z.ZodType | undefined = resolve(schema, input);
  let value = input;
  for (const part of path) {
    if (current === undefined) return undefined;
    const def: Def = defOf(current);
    if (def.type === "object" && typeof part === "string") current = def.shape?.[part];
    else if (def.type === "array") current = def.element;
    else if (def.type === "record") current = def.valueType;
    else if (def.type === "tuple" && typeof part === "number") {
      current = def.items?.[part] ?? def.rest ?? undefined;
    } else return undefined;
    value = isRecord(value) || Array.isArray(value)
      ? (value as Record<PropertyKey, unknown>)[part]
      : undefined;
    current = current === undefined ? undefined : resolve(current, value);
  }
  if (current === undefined) return undefined;
  const def = defOf(current);
  if (def.type === "object" && def.shape) return Object.keys(def.shape);
  if (def.type === "intersection" && def.left && def.right) {
    const left = objectKeysAt(def.left, [], value);
    const right = objectKeysAt(def.right, [], value);
    return left && right ? [...new Set([...left, ...right])] : undefined;
  }
  return undefined;
}

/** Unwraps `schema` and, for a union, picks the object option that `value` was meant for. */
function resolve(schema: z.ZodType, value: unknown): z.ZodType | undefined {
  const unwrapped = unwrap(schema);
  const def = defOf(unwrapped);
  if (def.type !== "union" || !def.options) return unwrapped;
  const objects = def.options.map(unwrap).filter((option) => defOf(option).type === "object");
  if (objects.length === 1) return objects[0];
  if (def.discriminator === undefined || !isRecord(value)) return undefined;
  const tag = value[def.discriminator];
  return objects.find((option) => {
    const field = defOf(option).shape?.[def.discriminator!];
    const fieldDef = field && defOf(unwrap(field));
    return fieldDef?.type === "literal" && (fieldDef.values ?? []).includes(tag);
  });
}

// ---------------------------------------------------------------------------------------
// Did-you-mean.

/** The candidate nearest to `word` by edit distance, if it is close enough to be a typo. */
function closestMatch(word: string, candidates: readonly string[]): string | undefined {
  const lower = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  // A third of the word's length, at least 1 and at most 3, keeps unrelated names out.
  const limit = Math.min(3, Math.max(1, Math.floor(word.length / 3)));
  return bestDistance <= limit && bestDistance < word.length ? best : undefined;
}

/** Optimal string alignment distance: insertions, deletions, substitutions, swaps. */
function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array(rows * cols).fill(0);
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(
        d[(i - 1) * cols + j] + 1,
        d[i * cols + j - 1] + 1,
        d[(i - 1) * cols + j - 1] + cost,
      );
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        value = Math.min(value, d[(i - 2) * cols + j - 2] + 1);
      }
      d[i * cols + j] = value;
    }
  }
  return d[rows * cols - 1];
}

function deepFreeze<T>(value: T): T {
  if (typeof value !== "object" || value === null || Object.isFrozen(value)) return value;
  const proto = Object.getPrototypeOf(value);
  if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) return value;
  for (const child of Object.values(value)) deepFreeze(child);
  return Object.freeze(value);
}
