/**
 * Where the embedded checkpoints live: `examples/models/brown-dense` (Llama layout) and
 * `examples/models/brown-moe` (Mixtral layout), both trained on Brown in this repository, and the
 * larger test bed `examples/models/brown-dense-12m` (Llama layout, 10 layers, GQA 5:1, two epochs
 * of Brown and the State of the Union addresses, bf16). The path is absolute (resolved from this
 * module), so a script in any folder can load them.
 *
 * @example Load the dense model from anywhere
 * ```ts
 * import assert from "node:assert/strict";
 * import { embeddedModelDir } from "./embedded.ts";
 * const dir = embeddedModelDir("brown-dense");
 * assert.ok(dir.endsWith("examples/models/brown-dense"));
 * assert.ok((await Deno.stat(`${dir}/config.json`)).isFile);
 * ```
 * @module
 */
import { fileURLToPath } from "node:url";

/** The embedded checkpoints' names. */
export const EMBEDDED_MODELS = ["brown-dense", "brown-moe", "brown-dense-12m"] as const;

/** One of {@linkcode EMBEDDED_MODELS}. */
export type EmbeddedModel = typeof EMBEDDED_MODELS[number];

/**
 * The absolute path of an embedded checkpoint folder (config.json, model.safetensors,
 * tokenizer.json, training_log.arrow, eval.json).
 *
 * @throws {RangeError} when `name` is not one of {@linkcode EMBEDDED_MODELS}
 */
export function embeddedModelDir(name: EmbeddedModel): string {
  if (!(EMBEDDED_MODELS as readonly string[]).includes(name)) {
    throw new RangeError(
      `No embedded model "${name}": expected one of ${EMBEDDED_MODELS.join(", ")}`,
    );
  }
  return fileURLToPath(new URL(`../../examples/models/${name}`, import.meta.url));
}
