/**
 * `FloeThresholds`: FloE's per-(layer, expert) magnitude thresholds `t[l][e]` on `|up·x|` (Zhou et
 * al., ICML 2025, https://arxiv.org/abs/2505.05950; ALGORITHMS.md A.3), with the calibration settings
 * and a fingerprint of the model they were calibrated on. Saved as safetensors: one F32 tensor
 * `thresholds` of shape `[L, E]` (`L` decoder layers; rows of dense layers are 0), the settings as
 * string metadata (`floe_sparsity`, `floe_up_bits`, …, `model_fingerprint`), written atomically.
 * Loading checks the shape and, given a model, that it is the one they were calibrated on.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FloeThresholds } from "./thresholds.ts";
 * const t = new FloeThresholds(Float32Array.of(0, 0, 0.5, 0.25), 2, 2, { sparsity: 0.8, rounds: 1, upBits: 2, groupSize: 64, tokens: 128 }, "abc");
 * const dir = await Deno.makeTempDir();
 * await t.save(`${dir}/t.safetensors`);
 * const back = await FloeThresholds.load(`${dir}/t.safetensors`);
 * assert.deepEqual([Array.from(back.at(1)), back.settings.sparsity, back.fingerprint], [[0.5, 0.25], 0.8, "abc"]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import { SafetensorsFile, writeSafetensors } from "../io/safetensors.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import { asDenseLinear } from "../nn/linear_like.ts";
import type { SparseMoE } from "../nn/sparse_moe.ts";
import { bytesOf, fnv1a } from "../host/fnv.ts";

/** How thresholds were calibrated. */
export interface ThresholdSettings {
  /** Target sparsity `s`. */
  readonly sparsity: number;
  /** Calibration rounds averaged. */
  readonly rounds: number;
  /** Up projection bits during calibration (16: exact). */
  readonly upBits: number;
  /** HQQ group size of the up projection. */
  readonly groupSize: number;
  /** Calibration tokens. */
  readonly tokens: number;
}

/** `t[l][e]` for every decoder layer `l` and expert `e`. */
export class FloeThresholds {
  /** `[L, E]` row-major. */
  readonly values: Float32Array;
  readonly layers: number;
  readonly experts: number;
  readonly settings: ThresholdSettings;
  /** {@link modelFingerprint} of the calibration model. */
  readonly fingerprint: string;

  /** @throws {RangeError} unless `values` holds `layers · experts` finite values ≥ 0 */
  constructor(
    values: Float32Array,
    layers: number,
    experts: number,
    settings: ThresholdSettings,
    fingerprint: string,
  ) {
    if (values.length !== layers * experts || !values.every((v) => Number.isFinite(v) && v >= 0)) {
      throw new RangeError(
        `Cannot create FloeThresholds: expected ${layers}·${experts} finite values ≥ 0: received ${values.length}`,
      );
    }
    this.values = values;
    this.layers = layers;
    this.experts = experts;
    this.settings = settings;
    this.fingerprint = fingerprint;
  }

  /** `[E]`: layer `l`'s thresholds (a view). */
  at(layer: number): Float32Array {
    return this.values.subarray(layer * this.experts, (layer + 1) * this.experts);
  }

  /** Writes the safetensors file atomically (temp + rename). */
  async save(path: string): Promise<void> {
    const s = this.settings;
    await writeSafetensors(path, {
      thresholds: { dtype: "F32", shape: [this.layers, this.experts], data: this.values },
    }, {
      floe_sparsity: String(s.sparsity),
      floe_rounds: String(s.rounds),
      floe_up_bits: String(s.upBits),
      floe_group_size: String(s.groupSize),
      floe_tokens: String(s.tokens),
      model_fingerprint: this.fingerprint,
    });
  }

  /**
   * Reads thresholds back; with `model`, checks they fit it.
   *
   * @throws {FormatError|Error} on an unreadable file
   * @throws {TypeError} when `thresholds` is missing or not F32 `[L, E]`, or (with `model`) its shape
   *   or fingerprint belongs to another model
   */
  static async load(path: string, model?: CausalLM): Promise<FloeThresholds> {
    const file = await SafetensorsFile.open(path);
    try {
      if (!file.has("thresholds")) {
        throw new TypeError(`Cannot load FloE thresholds from ${path}: it has no tensor "thresholds"`);
      }
      const info = file.info("thresholds");
      if (info.dtype !== "F32" || info.shape.length !== 2) {
        throw new TypeError(
          `Cannot load FloE thresholds from ${path}: "thresholds" must be F32 [L, E]: received ${info.dtype}[${info.shape}]`,
        );
      }
      const [L, E] = info.shape;
      const values = await file.readF32("thresholds");
      const m = file.metadata;
      const num = (k: string) => Number(m[k] ?? "NaN");
      const t = new FloeThresholds(values, L, E, {
        sparsity: num("floe_sparsity"),
        rounds: num("floe_rounds"),
        upBits: num("floe_up_bits"),
        groupSize: num("floe_group_size"),
        tokens: num("floe_tokens"),
      }, m.model_fingerprint ?? "");
      if (model) await t.checkFits(model, path);
      return t;
    } finally {
      file.close();
    }
  }

  /** @throws {TypeError} when the shape or fingerprint is not `model`'s */
  async checkFits(model: CausalLM, source = "the thresholds"): Promise<void> {
    const { layers: L, numExperts: E } = model.config;
    if (this.layers !== L || this.experts !== E) {
      throw new TypeError(
        `Cannot use ${source}: thresholds are [${this.layers}, ${this.experts}] but the model has ${L} layers ` +
          `of ${E} experts; calibrate for this model`,
      );
    }
    const fp = await modelFingerprint(model);
    if (this.fingerprint !== fp) {
      throw new TypeError(
        `Cannot use ${source}: they were calibrated on another model (fingerprint ${
          this.fingerprint || "none"
        }, this model ${fp}); calibrate for this model`,
      );
    }
  }
}

/**
 * A short hex fingerprint of a MoE model: FNV-1a over its dimensions and every router weight (the
 * routers stay dense under FloE, so a compressed model has its checkpoint's fingerprint).
 */
export async function modelFingerprint(model: CausalLM): Promise<string> {
  const c = model.config;
  let h = fnv1a(
    new TextEncoder().encode(`${c.modelType}:${c.layers}:${c.hidden}:${c.numExperts}:${c.vocabSize}`),
  );
  for (const l of model.moeLayers) {
    const router = asDenseLinear((model.layers[l].mlp as SparseMoE).router, "fingerprint the model");
    h = fnv1a(bytesOf(await router.weight.toArray() as Float32Array), h);
  }
  return h.toString(16).padStart(8, "0");
}
