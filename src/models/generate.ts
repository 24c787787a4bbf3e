/**
 * Text generation with a KV cache: one prefill of the whole prompt, then one decode step
 * per new token. Each step is one submit on WebGPU (the last row of the logits is the only
 * readback); sampling runs on the host, seeded, so a seed gives the same tokens on every
 * backend.
 *
 * @example Greedy continuation
 * ```ts ignore
 * import { createDevice, generate, loadModel } from "../mod.ts";
 * const device = await createDevice();
 * const model = await loadModel("examples/models/moe", { device });
 * const out = await generate(model, [1, 42, 7], { maxNewTokens: 16 });
 * console.log(out.tokens, out.tokensPerSecond);
 * ```
 * @module
 */
import type { Device } from "../device/device.ts";
import { gatherRows } from "../ops/gather.ts";
import { mulberry32 } from "../tensor/random.ts";
import { Tensor } from "../tensor/tensor.ts";
import type { ModelCache } from "./model_cache.ts";

/** What generation needs from a model: a forward with a cache. `CausalLM` implements it. */
export interface GenerativeModel {
  readonly device: Device;
  forward(ids: Int32Array, options: { cache: ModelCache }): { logits: Tensor };
  createCache(maxSeq: number): ModelCache;
}

/** Options for {@link generate}. */
export interface GenerateOptions {
  /** Tokens to generate at most. */
  maxNewTokens: number;
  /** 0 (default) is greedy; otherwise logits are divided by it before sampling. */
  temperature?: number;
  /** Nucleus sampling: keep the smallest set of tokens whose probability reaches topP (default 1). */
  topP?: number;
  /** Keep only the topK most likely tokens (default: all). */
  topK?: number;
  /** Seed of the sampler (default 0). */
  seed?: number;
  /** Token ids that end generation (included in the output). */
  stop?: readonly number[];
  /** Called with each new token as soon as it is chosen (streaming). */
  onToken?: (token: number) => void;
}

/** What {@link generate} returns. */
export interface GenerateResult {
  /** The new tokens (not the prompt). */
  tokens: number[];
  stopReason: "length" | "stop";
  prefillMs: number;
  /** Mean time of one decode step. */
  decodeMsPerToken: number;
  tokensPerSecond: number;
  /** Device submits per decoded token (one on WebGPU when the step is fully batched). */
  submitsPerToken: number;
}

/** Generates up to `maxNewTokens` tokens after `prompt`. */
export async function generate(
  model: GenerativeModel,
  prompt: Int32Array | readonly number[],
  options: GenerateOptions,
): Promise<GenerateResult> {
  const { maxNewTokens, temperature = 0, topP = 1, topK = 0, seed = 0, stop = [], onToken } = options;
  const ids = Int32Array.from(prompt);
  if (ids.length === 0) {
    throw new RangeError("Cannot generate: the prompt is empty: pass at least one token id");
  }
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) {
    throw new RangeError(
      `Cannot generate: maxNewTokens must be a non-negative integer: received ${maxNewTokens}`,
    );
  }
  if (!(temperature >= 0)) {
    throw new RangeError(`Cannot generate: temperature must be >= 0: received ${temperature}`);
  }
  if (!(topP > 0 && topP <= 1)) {
    throw new RangeError(`Cannot generate: topP must be in (0, 1]: received ${topP}`);
  }
  const random = mulberry32(seed);
  const pick = (logits: Float32Array) => sampleToken(logits, { temperature, topP, topK, random });
  const device = model.device;
  const cache = model.createCache(ids.length + maxNewTokens);
  const tokens: number[] = [];
  let stopReason: GenerateResult["stopReason"] = "length";
  try {
    let t0 = performance.now();
    let next = pick(await lastRow(model.forward(ids, { cache }).logits));
    const prefillMs = performance.now() - t0;
    const submits0 = device.stats.submits;
    t0 = performance.now();
    for (let i = 0; i < maxNewTokens; i++) {
      tokens.push(next);
      onToken?.(next);
      if (stop.includes(next)) {
        stopReason = "stop";
        break;
      }
      if (i === maxNewTokens - 1) break;
      next = pick(await lastRow(model.forward(Int32Array.of(next), { cache }).logits));
    }
    const steps = Math.max(1, tokens.length - 1);
    const decodeMs = performance.now() - t0;
    return {
      tokens,
      stopReason,
      prefillMs,
      decodeMsPerToken: decodeMs / steps,
      tokensPerSecond: tokens.length > 1 ? (1000 * steps) / decodeMs : 0,
      submitsPerToken: (device.stats.submits - submits0) / steps,
    };
  } finally {
    cache.dispose();
  }
}

/** Reads back only the last row of `[T, V]` logits (and disposes them). */
async function lastRow(logits: Tensor): Promise<Float32Array> {
  const [t, v] = logits.shape;
  if (t === 1) {
    const row = await logits.toArray() as Float32Array;
    logits.dispose();
    return row;
  }
  using idx = Tensor.fromArray(logits.device, Int32Array.of(t - 1));
  using row = gatherRows(logits, idx); // [T, V] -> [1, V]
  logits.dispose();
  const out = await row.toArray() as Float32Array;
  return out.length === v ? out : out.subarray(0, v);
}

/** Sampling knobs for {@link sampleToken}. */
export interface SampleOptions {
  temperature: number;
  topP: number;
  topK: number;
  /** Uniform [0, 1) source. */
  random: () => number;
}

/**
 * Chooses a token from one row of logits: argmax (lowest index on ties) when temperature is
 * 0, else softmax(logits / temperature) restricted to top-k and the top-p nucleus, sampled.
 */
export function sampleToken(
  logits: Float32Array,
  { temperature, topP, topK, random }: SampleOptions,
): number {
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  let order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
  if (topK > 0) order = order.slice(0, topK);
  const max = logits[order[0]];
  const probs = order.map((i) => Math.exp((logits[i] - max) / temperature));
  const total = probs.reduce((s, p) => s + p, 0);
  let keep = order.length;
  if (topP < 1) {
    let acc = 0;
    for (let j = 0; j < order.length; j++) {
      acc += probs[j] / total;
      if (acc >= topP) {
        keep = j + 1;
        break;
      }
    }
  }
  const mass = probs.slice(0, keep).reduce((s, p) => s + p, 0);
  let r = random() * mass;
  for (let j = 0; j < keep; j++) {
    r -= probs[j];
    if (r < 0) return order[j];
  }
  return order[keep - 1];
}
