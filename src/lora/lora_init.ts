/**
 * PEFT's initialisation of LoRA factors (`LoraLayer.reset_lora_parameters` in
 * `peft/tuners/lora/layer.py`; [LoRA](https://arxiv.org/abs/2106.09685) §4.1), drawn on the host
 * from Ferry's seeded generator (`tensor/random.ts`), so a seed gives the same factors on every
 * backend:
 *
 * | `initLoraWeights` | `A` `[r, in]` | `B` `[out, r]` |
 * | --- | --- | --- |
 * | `true` (default) | `kaiming_uniform_(a=√5)`: `U(-1/√in, 1/√in)` | zeros |
 * | `"gaussian"` | `N(0, (1/r)²)` | zeros |
 * | `false` | `U(-1/√in, 1/√in)` | `U(-1/√r, 1/√r)` (`nn.Linear`'s default; tests only) |
 *
 * (`kaiming_uniform_` with `a = √5`: gain `√(2/(1+a²)) = √(1/3)`, bound `gain·√(3/fan_in) = 1/√fan_in`.)
 * With `B = 0` a fresh adapter leaves the model's outputs unchanged.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initLoraFactors } from "./lora_init.ts";
 * import { mulberry32 } from "../tensor/random.ts";
 * const { A, B } = initLoraFactors(true, { r: 2, inFeatures: 16, outFeatures: 4 }, mulberry32(0));
 * assert.ok(A.length === 32 && A.every((v) => Math.abs(v) <= 0.25) && B.every((v) => v === 0));
 * ```
 * @module
 */
import { ConfigError } from "../errors.ts";
import type { LoraFactors } from "./peft_io.ts";

/** The `initLoraWeights` values Ferry implements. */
export const SUPPORTED_INITS: readonly (boolean | string)[] = [true, false, "gaussian"];

/** Throws a `ConfigError` unless `init` is one of {@link SUPPORTED_INITS}. */
export function checkLoraInit(init: boolean | string): void {
  if (!SUPPORTED_INITS.includes(init)) {
    throw new ConfigError(
      `Cannot initialise LoRA: initLoraWeights ${JSON.stringify(init)} is not supported: ` +
        `expected one of true, false, "gaussian" (PiSSA, OLoRA, LoftQ, EVA and CorDA are not implemented)`,
    );
  }
}

/**
 * Draws one module's factors.
 *
 * @param init `initLoraWeights`
 * @param dims the module's rank and weight shape `[outFeatures, inFeatures]`
 * @param next a uniform generator in [0, 1) (e.g. `mulberry32(seed)`), consumed A first, then B
 * @returns `A` `[r, in]` and `B` `[out, r]`, row-major
 * @throws {ConfigError} for an unsupported `init`
 */
export function initLoraFactors(
  init: boolean | string,
  dims: { r: number; inFeatures: number; outFeatures: number },
  next: () => number,
): LoraFactors {
  checkLoraInit(init);
  const { r, inFeatures, outFeatures } = dims;
  const uniform = (n: number, bound: number) =>
    Float32Array.from({ length: n }, () => bound * (2 * next() - 1));
  const A = init === "gaussian"
    ? normal(r * inFeatures, 1 / r, next) // [r, in]
    : uniform(r * inFeatures, 1 / Math.sqrt(inFeatures)); // [r, in]
  const B = init === false
    ? uniform(outFeatures * r, 1 / Math.sqrt(r)) // [out, r]
    : new Float32Array(outFeatures * r); // [out, r]
  return { A, B };
}

/** `n` samples of `N(0, std²)` by Box–Muller over `next` (as `randn` in `tensor/random.ts`). */
function normal(n: number, std: number, next: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    out[i] = std * Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
  }
  return out;
}
