/**
 * Where the embedded checkpoints live: the small, quick `examples/models/brown-dense` (Llama layout)
 * and `examples/models/brown-moe` (Mixtral layout), trained on 0.37 epoch of Brown (the tests, the
 * demo and the benchmarks use them), and the test beds for compression studies, trained for two
 * epochs of Brown and the State of the Union addresses and stored in bf16:
 * `examples/models/brown-dense-10m` (Llama layout, 12 layers, GQA 8:2) and
 * `examples/models/brown-moe-28m` (Mixtral layout, 8 layers, 8 experts of width 512, top-2). The
 * path is absolute (resolved from this module), so a script in any folder can load them.
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
export const EMBEDDED_MODELS = ["brown-dense", "brown-moe", "brown-dense-10m", "brown-moe-28m"] as const;

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
