/**
 * `OffloadRuntime`: decodes a MoE model whose experts live in host memory, under a device budget,
 * with one of the offload policies (`resident`, `ondemand`, `cached`; ALGORITHMS.md A.6, C.1).
 * The model is loaded with `experts: "skip"` (its MoE layers hold `DetachedExperts`), the experts
 * come from a {@link HostExperts}, and the runtime drives the layers itself:
 *
 * ```
 * per layer i: attention → post-norm → route (+ layer i+1's router on the same input when the
 *              policy prefetches) → ONE readback of the routing → policy: groups, uploads →
 *              expert compute from the slots → residual
 * end:         last row → norm → lm_head → readback of one row of logits
 * ```
 *
 * So a forward costs one sync per MoE layer plus one, and that readback serves both layer `i`'s
 * routing and the prefetch for layer `i+1`. Prefill runs the same path over the whole prompt (each
 * layer's needed experts streamed group by group) and is timed apart from decode. Greedy decoding
 * under every policy gives the tokens of the resident model (the experts compute in slots exactly
 * as in the model's stack).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { openOffloadRuntime } from "./runtime.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using rt = await openOffloadRuntime("test/fixtures/models/mixtral-top2-f32", {
 *   device, budgetBytes: 4 * 2 ** 20, policy: "ondemand", maxSeq: 16,
 * });
 * const run = await rt.generate([1, 5, 9], { maxNewTokens: 4 });
 * assert.equal(run.tokens.length, 4);
 * assert.equal(run.report.syncsPerToken, 3); // 2 MoE layers + the logits
 * ```
 * @module
 */
import type { Device } from "../device/device.ts";
import { DeviceLostError } from "../errors.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import { sampleToken } from "../models/generate.ts";
import { loadModel } from "../models/load.ts";
import type { ModelCache } from "../models/model_cache.ts";
import { DetachedExperts } from "../nn/detached_experts.ts";
import { SparseMoE } from "../nn/sparse_moe.ts";
import { add } from "../ops/elementwise.ts";
import { gatherRows } from "../ops/gather.ts";
import { mulberry32 } from "../tensor/random.ts";
import { Tensor } from "../tensor/tensor.ts";
import { activationReserve, type BudgetPlan, planBudget } from "./budget.ts";
import { HostExperts } from "./host_experts.ts";
import { createPolicy } from "./create_policy.ts";
import { wholeExpertStep } from "./whole_expert_step.ts";
import type { OffloadPolicy, PolicyName } from "./policy.ts";
import { PhaseCounters, type RunReport } from "./report.ts";
import { SyncClock, TransferEngine } from "./transfer.ts";

/** Options of {@link OffloadRuntime.create}. */
export interface OffloadRuntimeOptions {
  /** Device bytes the run may use in all (weights, KV cache, activations, expert slots). */
  budgetBytes: number;
  /** A policy name or object (`cached` by name: LRU, no prefetch). */
  policy: PolicyName | OffloadPolicy;
  /** Longest sequence (prompt + generated), which sizes the KV cache (default 256). */
  maxSeq?: number;
  /**
   * Tokens per prefill forward (default 64): a longer prompt is prefilled in chunks, which bounds
   * the activation reserve (it is sized for `min(maxSeq, prefillChunk)` tokens).
   */
  prefillChunk?: number;
}

/** What {@link OffloadRuntime.generate} returns. */
export interface OffloadRun {
  tokens: number[];
  report: RunReport;
}

/** The device was lost during {@link OffloadRuntime.generate}; `partial` holds what was measured until then. */
export class OffloadRunLostError extends DeviceLostError {
  /** The tokens generated and the counters of the phases that ran (the last one up to the loss). */
  readonly partial: OffloadRun;

  constructor(cause: DeviceLostError, partial: OffloadRun) {
    super(
      `The device was lost after ${partial.tokens.length} generated tokens (${cause.message}); the counters ` +
        "measured until then are in .partial",
      cause.reason,
    );
    this.name = "OffloadRunLostError";
    this.partial = partial;
  }
}

/** A MoE model with host-resident experts, decoding under a budget. Owns the model, cache and slots. */
export class OffloadRuntime implements Disposable {
  readonly model: CausalLM;
  readonly store: HostExperts;
  readonly policy: OffloadPolicy;
  readonly plan: BudgetPlan;
  readonly transfers: TransferEngine;
  readonly clock: SyncClock;
  /** Tokens per prefill forward. */
  readonly prefillChunk: number;
  readonly #cache: ModelCache;
  #counters: PhaseCounters;

  private constructor(
    model: CausalLM,
    store: HostExperts,
    policy: OffloadPolicy,
    plan: BudgetPlan,
    cache: ModelCache,
    prefillChunk: number,
  ) {
    this.prefillChunk = prefillChunk;
    this.model = model;
    this.store = store;
    this.policy = policy;
    this.plan = plan;
    this.#cache = cache;
    this.transfers = new TransferEngine(model.device, store);
    this.clock = new SyncClock(this.transfers);
    this.#counters = new PhaseCounters(this);
  }

  /**
   * Plans the budget and sets the policy up. The model's MoE layers must hold `DetachedExperts`
   * (load it with `experts: "skip"`), so the budget counts only what is on the device.
   *
   * @throws {TypeError} for experts on the device, shared experts, or an unknown policy
   * @throws {OutOfBudgetError} when the budget is below the minimum (with the breakdown)
   */
  static async create(
    model: CausalLM,
    store: HostExperts,
    options: OffloadRuntimeOptions,
  ): Promise<OffloadRuntime> {
    const { budgetBytes, maxSeq = 256, prefillChunk = 64 } = options;
    if (!(Number.isInteger(prefillChunk) && prefillChunk >= 1)) {
      throw new RangeError(
        `Cannot create the offload runtime: prefillChunk must be a positive integer: received ${prefillChunk}`,
      );
    }
    for (const l of model.moeLayers) {
      const moe = model.layers[l].mlp as SparseMoE;
      if (!(moe.experts instanceof DetachedExperts)) {
        throw new TypeError(
          `Cannot offload: layer ${l}'s experts are on the device (${moe.experts.constructor.name}); load the ` +
            `model with loadModel(dir, { device, experts: "skip" })`,
        );
      }
      if (moe.sharedExpert) {
        throw new TypeError(`Cannot offload layer ${l}: shared experts (qwen2_moe) are not supported yet`);
      }
    }
    const policy = typeof options.policy === "string" ? createPolicy(options.policy) : options.policy;
    const device = model.device;
    let cache: ModelCache | undefined;
    try {
      const run = await planRun(model, store, policy, { budgetBytes, maxSeq, prefillChunk });
      const plan = run.plan;
      cache = run.cache;
      const rt = new OffloadRuntime(model, store, policy, plan, cache, Math.min(maxSeq, prefillChunk));
      await policy.setup({ device, store, transfers: rt.transfers }, plan.freeBytes);
      return rt;
    } catch (err) {
      policy.dispose();
      cache?.dispose();
      throw err;
    }
  }

  /**
   * Greedy (or sampled) generation: one prefill of the prompt, then one forward per new token.
   *
   * @throws {RangeError} on an empty prompt or more tokens than the KV cache holds
   */
  async generate(
    prompt: readonly number[] | Int32Array,
    { maxNewTokens, temperature = 0, seed = 0 }: {
      maxNewTokens: number;
      temperature?: number;
      seed?: number;
    },
  ): Promise<OffloadRun> {
    const ids = Int32Array.from(prompt);
    if (ids.length === 0 || ids.length + maxNewTokens > this.#cache.maxSeq) {
      throw new RangeError(
        `Cannot generate: the prompt (${ids.length} tokens) must be non-empty and prompt + ${maxNewTokens} new ` +
          `tokens must fit the KV cache of ${this.#cache.maxSeq}; create the runtime with a larger maxSeq`,
      );
    }
    const random = mulberry32(seed);
    const pick = (l: Float32Array) => sampleToken(l, { temperature, topP: 1, topK: 0, random });
    this.#cache.reset();
    this.#counters = new PhaseCounters(this);
    const tokens: number[] = [];
    try {
      this.#counters.begin("prefill");
      let last: Float32Array = new Float32Array(0);
      for (let t0 = 0; t0 < ids.length; t0 += this.prefillChunk) {
        last = await this.forward(ids.subarray(t0, t0 + this.prefillChunk)); // [chunk] at positions t0..
      }
      let next = pick(last);
      this.#counters.end();
      this.#counters.begin("decode");
      for (let i = 0; i < maxNewTokens; i++) {
        tokens.push(next);
        if (i === maxNewTokens - 1) break;
        next = pick(await this.forward(Int32Array.of(next)));
      }
      this.#counters.end();
    } catch (err) {
      if (!(err instanceof DeviceLostError)) throw err;
      this.#counters.end();
      throw new OffloadRunLostError(err, { tokens, report: this.#counters.report(tokens.length) });
    }
    return { tokens, report: this.#counters.report(tokens.length) };
  }

  /** The last position's logits `[V]` for the next `T` tokens of the sequence in the runtime's cache. */
  async forward(ids: Int32Array): Promise<Float32Array> {
    const model = this.model;
    const T = ids.length;
    using idsT = Tensor.fromArray(model.device, ids, [T], { dtype: "i32" }); // [T]
    let x = model.embedTokens.forward(idsT); // [T] -> [T, C]
    for (let i = 0; i < model.layers.length; i++) {
      const layer = model.layers[i];
      using prev = x;
      using n1 = layer.inputNorm.forward(prev); // [T, C]
      using a = layer.attention.forward(n1, { cache: this.#cache.layers[i] }); // [T, C]
      using h = add(prev, a); // [T, C] residual
      using n2 = layer.postNorm.forward(h); // [T, C]
      if (!(layer.mlp instanceof SparseMoE)) {
        using m = layer.mlp.forward(n2); // [T, C]
        x = add(h, m); // [T, C]
        continue;
      }
      using y = await this.#moe(i, layer.mlp, n2); // [T, C]
      x = add(h, y); // [T, C] residual
    }
    using xs = x;
    using last = T === 1
      ? undefined
      : Tensor.fromArray(model.device, Int32Array.of(T - 1), [1], { dtype: "i32" });
    using row = last ? gatherRows(xs, last) : undefined; // [T, C] -> [1, C]
    using hN = model.norm.forward(row ?? xs); // [1, C]
    using logits = model.lmHead.forward(hN); // [1, C] x [V, C]ᵀ -> [1, V]
    return await this.clock.read(logits) as Float32Array;
  }

  /** One MoE layer: route, read back (with the next layer's prediction), place, compute. */
  async #moe(i: number, moe: SparseMoE, n2: Tensor): Promise<Tensor<"f32">> {
    const policy = this.policy;
    const next = this.model.layers[i + 1]?.mlp;
    const step = {
      layer: i,
      moe,
      x: n2,
      next: next instanceof SparseMoE ? { layer: i + 1, moe: next } : undefined,
      clock: this.clock,
      count: (needed: number, hits: number) => this.#counters.layer(i, needed, hits),
    };
    return "step" in policy ? await policy.step(step) : await wholeExpertStep(policy, step);
  }

  dispose(): void {
    this.policy.dispose();
    this.#cache.dispose();
    this.model.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Options of {@link openOffloadRuntime}. */
export interface OpenOffloadOptions extends OffloadRuntimeOptions {
  device: Device;
  /**
   * Device storage of the weights: `"f32"` (default) or `"f16"` (projection weights, expert slots,
   * streamed rows and exact up projections at 16 bits: half the bytes resident and moved).
   */
  dtype?: "f32" | "f16";
}

/**
 * Loads a checkpoint folder for offloading: non-expert weights to the device, experts to host
 * memory, then {@link OffloadRuntime.create}.
 *
 * @throws {TypeError} for a model without experts or an unknown policy
 * @throws {OutOfBudgetError} when the budget is below the minimum
 */
export async function openOffloadRuntime(dir: string, options: OpenOffloadOptions): Promise<OffloadRuntime> {
  const { device, dtype = "f32", ...rest } = options;
  if (typeof rest.policy === "string") createPolicy(rest.policy); // an unknown name fails before loading
  const store = await HostExperts.fromCheckpoint(dir, { deviceDType: dtype });
  const model = await loadModel(dir, { device, experts: "skip", dtype });
  try {
    return await OffloadRuntime.create(model, store, rest);
  } catch (err) {
    model.dispose();
    throw err;
  }
}

/**
 * What a run of `policy` on `model` (experts detached, its weights on the device) needs, without
 * setting the policy up: held bytes, KV cache, activation reserve and the policy's minimum. The
 * `minimumBytes` of the result is the smallest budget the runtime accepts.
 */
export async function offloadMinimum(
  model: CausalLM,
  store: HostExperts,
  policy: OffloadPolicy,
  maxSeq = 256,
  prefillChunk = 64,
): Promise<BudgetPlan> {
  const { plan, cache } = await planRun(model, store, policy, {
    budgetBytes: Number.MAX_SAFE_INTEGER,
    maxSeq,
    prefillChunk,
  });
  cache.dispose();
  return plan;
}

/**
 * The budget plan of a run and its KV cache (allocated, since the ledger measures it): held bytes
 * are read after a submit, which returns the weights' upload staging.
 *
 * @throws {OutOfBudgetError} when the budget is below the minimum (the cache is then freed)
 */
async function planRun(
  model: CausalLM,
  store: HostExperts,
  policy: OffloadPolicy,
  { budgetBytes, maxSeq, prefillChunk }: { budgetBytes: number; maxSeq: number; prefillChunk: number },
): Promise<{ plan: BudgetPlan; cache: ModelCache }> {
  const ledger = model.device.ledger;
  await model.device.flush();
  const heldBytes = ledger.current();
  const cache = model.createCache(maxSeq);
  try {
    const plan = planBudget({
      budgetBytes,
      heldBytes,
      kvBytes: ledger.current() - heldBytes,
      activationBytes: activationReserve(model.config, Math.min(maxSeq, prefillChunk), maxSeq) +
        widenedWeightBytes(model),
      setupBytes: policy.setupScratchBytes?.(store) ?? 0,
      transferBytes: policy.maxTransferBytes?.(store) ?? 0,
      policyMinimumBytes: policy.minimumBytes(store),
      policy: policy.name,
    });
    return { plan, cache };
  } catch (err) {
    cache.dispose();
    throw err;
  }
}

/**
 * The f32 temporary of the largest 16-bit projection a prefill multiplies with several rows (a
 * matmul widens one weight at a time). Not the experts (their kernels widen in registers), the
 * embeddings (a lookup widens rows) or the head (the runtime applies it to the last row: `gemv`).
 */
function widenedWeightBytes(model: CausalLM): number {
  let most = 0;
  for (const [name, t] of model.parameters()) {
    if (t.dtype === "f16" && /_proj\.weight$/.test(name) && !name.includes(".experts.")) {
      most = Math.max(most, 4 * t.size);
    }
  }
  return most;
}
