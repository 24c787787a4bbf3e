/**
 * `LoraConfig`: PEFT's LoRA configuration ([Hu et al., arXiv:2106.09685](https://arxiv.org/abs/2106.09685);
 * field list and defaults from `peft/tuners/lora/config.py`) in camelCase, mapped one to one to
 * PEFT's snake_case `adapter_config.json` by {@linkcode toPeftJson} / {@linkcode fromPeftJson}.
 *
 * `scaling = loraAlpha / r` per module (`loraAlpha / sqrt(r)` with `useRslora`), where `rankPattern`
 * and `alphaPattern` override `r` and `loraAlpha` for the modules they match, with PEFT's
 * `get_pattern_key` rule: the first key `k`, in insertion order, such that the full module name
 * matches the regex `(.*\.)?(k)$`.
 *
 * PEFT fields Ferry does not implement (DoRA, LoftQ, EVA, CorDA, layer replication, …) are
 * written with PEFT's defaults so the JSON is complete; loading a file that sets one of them
 * to anything else is a `ConfigError`. Keys this module does not know at all are ignored, as
 * recent PEFT versions do.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fromPeftJson, loraConfig, toPeftJson } from "./lora_config.ts";
 * const config = loraConfig({ r: 8, loraAlpha: 16, targetModules: ["q_proj", "v_proj"], rankPattern: { v_proj: 4 } });
 * assert.ok(config.scaling("model.layers.0.self_attn.q_proj") === 2);
 * assert.ok(config.scaling("model.layers.0.self_attn.v_proj") === 4); // 16 / 4
 * const json = toPeftJson(config);
 * assert.ok(json.lora_alpha === 16 && json.peft_type === "LORA" && json.use_dora === false);
 * assert.ok(fromPeftJson(json).rank("model.layers.3.self_attn.v_proj") === 4);
 * ```
 * @module
 */
import { z } from "zod";
import { parseConfig } from "../config.ts";
import { ConfigError } from "../errors.ts";

const StringList = z.array(z.string());

/** The zod schema of Ferry's LoRA options (camelCase PEFT fields, PEFT's defaults). */
export const LoraConfigSchema = z.strictObject({
  /** LoRA rank. */
  r: z.number().int().min(1).default(8),
  /** `scaling = loraAlpha / r`. */
  loraAlpha: z.number().positive().default(8),
  loraDropout: z.number().min(0).lt(1).default(0),
  /**
   * Module names to adapt: a list (exact name or `.`-suffix match), a regex string (full match),
   * or `"all-linear"`. `null` uses PEFT's default for Llama/Mistral/Mixtral/Qwen2: `["q_proj", "v_proj"]`.
   */
  targetModules: z.union([StringList, z.string()]).nullable().default(null),
  /** Modules never adapted: list (exact or suffix) or regex string (full match). */
  excludeModules: z.union([StringList, z.string()]).nullable().default(null),
  bias: z.enum(["none", "all", "lora_only"]).default("none"),
  /** Rank-stabilised scaling `loraAlpha / sqrt(r)` (https://arxiv.org/abs/2312.03732). */
  useRslora: z.boolean().default(false),
  /** `true`: PEFT's default (A Kaiming-uniform, B zeros); `"gaussian"`; `false`: both random (tests only). */
  initLoraWeights: z.union([z.boolean(), z.string()]).default(true),
  /** Per-module rank overrides: `{ pattern: r }`. */
  rankPattern: z.record(z.string(), z.number().int().min(1)).default({}),
  /** Per-module alpha overrides: `{ pattern: alpha }`. */
  alphaPattern: z.record(z.string(), z.number().positive()).default({}),
  /** Only these layer indices (parsed from `.{layersPattern}.{i}.` in the module name). */
  layersToTransform: z.union([z.number().int().nonnegative(), z.array(z.number().int().nonnegative())])
    .nullable().default(null),
  /** Name of the layer list, e.g. `"layers"`; needs `layersToTransform`. */
  layersPattern: z.union([z.string(), StringList]).nullable().default(null),
  /** `true` for GPT-2 `Conv1D` weights stored `[in, out]`. */
  fanInFanOut: z.boolean().default(false),
  /** Extra modules trained fully and saved whole (PEFT `modules_to_save`); never adapted. */
  modulesToSave: StringList.nullable().default(null),
  taskType: z.string().nullable().default("CAUSAL_LM"),
  peftType: z.literal("LORA").default("LORA"),
  baseModelNameOrPath: z.string().nullable().default(null),
  revision: z.string().nullable().default(null),
  inferenceMode: z.boolean().default(false),
}).superRefine((c, ctx) => {
  const issue = (path: string, message: string) => ctx.addIssue({ code: "custom", path: [path], message });
  if (typeof c.targetModules === "string" && c.targetModules.toLowerCase() !== "all-linear") {
    if (c.layersToTransform !== null) {
      issue("layersToTransform", "cannot be used when targetModules is a regex");
    }
    if (c.layersPattern !== null) issue("layersPattern", "cannot be used when targetModules is a regex");
    checkRegex(c.targetModules, "targetModules", issue);
  }
  if (typeof c.excludeModules === "string") checkRegex(c.excludeModules, "excludeModules", issue);
  const emptyPattern = c.layersPattern === null || c.layersPattern.length === 0;
  if (!emptyPattern && c.layersToTransform === null) issue("layersPattern", "requires layersToTransform");
  for (const key of [...Object.keys(c.rankPattern), ...Object.keys(c.alphaPattern)]) {
    checkRegex(key, "rankPattern/alphaPattern", issue);
  }
});

/** What callers pass to {@link LoraConfig}. */
export type LoraConfigInput = z.input<typeof LoraConfigSchema>;
/** Parsed options (defaults filled), frozen. */
export type LoraConfigData = z.output<typeof LoraConfigSchema>;

/** A parsed config with PEFT's per-module rank, alpha and scaling. */
export interface LoraConfig extends LoraConfigData {
  /** `r`, or the `rankPattern` override matching `moduleName`. */
  rank(moduleName: string): number;
  /** `loraAlpha`, or the `alphaPattern` override matching `moduleName`. */
  alpha(moduleName: string): number;
  /** `alpha(m) / rank(m)`, or `alpha(m) / sqrt(rank(m))` with `useRslora`. */
  scaling(moduleName: string): number;
}

/**
 * Parses LoRA options (camelCase) into a frozen {@link LoraConfig}.
 *
 * @throws {ConfigError} On unknown keys (with a did-you-mean), bad values, or PEFT's cross-field
 *   rules (layer options with a regex target, `layersPattern` without `layersToTransform`).
 */
export function loraConfig(options: LoraConfigInput = {}): LoraConfig {
  const data = parseConfig("LoraConfig", LoraConfigSchema, options) as LoraConfigData;
  const rank = (m: string) => data.rankPattern[patternKey(Object.keys(data.rankPattern), m)] ?? data.r;
  const alpha = (m: string) =>
    data.alphaPattern[patternKey(Object.keys(data.alphaPattern), m)] ?? data.loraAlpha;
  return Object.freeze({
    ...data,
    rank,
    alpha,
    scaling: (m: string) => alpha(m) / (data.useRslora ? Math.sqrt(rank(m)) : rank(m)),
  });
}

/**
 * PEFT `get_pattern_key`: the first key `k` with `re.match(rf"(.*\.)?({k})$", name)`, else `name`.
 */
export function patternKey(keys: readonly string[], name: string): string {
  for (const key of keys) if (pythonRegex(`(.*\\.)?(${key})$`, "^").test(name)) return key;
  return name;
}

/**
 * Compiles a Python `re` pattern as a JS `RegExp` with `anchor` `"^"` (`re.match`) or `"^$"`
 * (`re.fullmatch`). Translates the Python-only spellings `(?P<n>…)`, `(?P=n)`, `\A` and `\Z`;
 * other syntax is assumed to mean the same in both engines.
 */
export function pythonRegex(pattern: string, anchor: "^" | "^$"): RegExp {
  const js = pattern.replaceAll("(?P<", "(?<").replace(/\(\?P=(\w+)\)/g, "\\k<$1>")
    .replaceAll("\\A", "^").replaceAll("\\Z", "$");
  return new RegExp(anchor === "^" ? `^(?:${js})` : `^(?:${js})$`, "u");
}

function checkRegex(pattern: string, path: string, issue: (p: string, m: string) => void): void {
  try {
    pythonRegex(pattern, "^$");
  } catch (err) {
    issue(path, `is not a valid regex: ${(err as Error).message}`);
  }
}

// ---------------------------------------------------------------------------------------
// PEFT JSON

/** Ferry field → PEFT key. */
const PEFT_KEYS: Readonly<Record<keyof LoraConfigData, string>> = {
  r: "r",
  loraAlpha: "lora_alpha",
  loraDropout: "lora_dropout",
  targetModules: "target_modules",
  excludeModules: "exclude_modules",
  bias: "bias",
  useRslora: "use_rslora",
  initLoraWeights: "init_lora_weights",
  rankPattern: "rank_pattern",
  alphaPattern: "alpha_pattern",
  layersToTransform: "layers_to_transform",
  layersPattern: "layers_pattern",
  fanInFanOut: "fan_in_fan_out",
  modulesToSave: "modules_to_save",
  taskType: "task_type",
  peftType: "peft_type",
  baseModelNameOrPath: "base_model_name_or_path",
  revision: "revision",
  inferenceMode: "inference_mode",
};

/** PEFT (0.17) LoRA fields Ferry does not implement, with the defaults PEFT writes. */
export const PEFT_UNSUPPORTED_DEFAULTS: Readonly<Record<string, unknown>> = Object.freeze({
  auto_mapping: null,
  corda_config: null,
  eva_config: null,
  layer_replication: null,
  loftq_config: {},
  lora_bias: false,
  megatron_config: null,
  megatron_core: "megatron.core",
  qalora_group_size: 16,
  target_parameters: null,
  trainable_token_indices: null,
  use_dora: false,
  use_qalora: false,
});

/** Fields whose value is irrelevant unless their feature is on (never an error). */
const IGNORED_VALUES = new Set(["auto_mapping", "megatron_core", "qalora_group_size", "peft_version"]);

/** The snake_case JSON object PEFT writes as `adapter_config.json` (keys sorted at every level, as PEFT does). */
export function toPeftJson(config: LoraConfigData): Record<string, unknown> {
  const out: Record<string, unknown> = { ...PEFT_UNSUPPORTED_DEFAULTS, loftq_config: {} };
  for (const [field, key] of Object.entries(PEFT_KEYS)) {
    const value = config[field as keyof LoraConfigData];
    out[key] = value === null || typeof value !== "object" ? value : structuredClone(value);
  }
  return sortKeys(out) as Record<string, unknown>;
}

/**
 * Python `json.dumps(sort_keys=True)` order, nested objects included. (So, as with PEFT, the
 * order of `rank_pattern` keys after a save-load round trip is alphabetical.)
 */
function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value !== "object" || value === null) return value;
  const entries = Object.entries(value).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0);
  return Object.fromEntries(entries.map(([k, v]) => [k, sortKeys(v)]));
}

/**
 * Parses a PEFT `adapter_config.json` object into a {@link LoraConfig}.
 *
 * @throws {ConfigError} When `peft_type` is not `"LORA"`, a field is invalid, or an unsupported
 *   PEFT feature (DoRA, LoftQ, …) is switched on.
 */
export function fromPeftJson(json: unknown): LoraConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ConfigError(
      `Cannot read PEFT LoraConfig: expected a JSON object: received ${JSON.stringify(json)}`,
    );
  }
  const raw = json as Record<string, unknown>;
  if (raw.peft_type !== undefined && raw.peft_type !== "LORA") {
    throw new ConfigError(`Cannot read PEFT LoraConfig: peft_type must be "LORA": received ${raw.peft_type}`);
  }
  const unsupported: string[] = [];
  for (const [key, fallback] of Object.entries(PEFT_UNSUPPORTED_DEFAULTS)) {
    const value = raw[key];
    if (value === undefined || IGNORED_VALUES.has(key)) continue;
    const isDefault = JSON.stringify(value) === JSON.stringify(fallback) || value === null ||
      (key === "loftq_config" && typeof value === "object" && Object.keys(value as object).length === 0);
    if (!isDefault) unsupported.push(`${key}=${JSON.stringify(value)}`);
  }
  if (unsupported.length > 0) {
    throw new ConfigError(`Cannot read PEFT LoraConfig: Ferry does not support ${unsupported.join(", ")}`);
  }
  const input: Record<string, unknown> = {};
  for (const [field, key] of Object.entries(PEFT_KEYS)) if (raw[key] !== undefined) input[field] = raw[key];
  return loraConfig(input as LoraConfigInput);
}
