/**
 * The training forward of a {@link CausalLM} (what `CausalLM.forwardTrain` and
 * `CausalLM.lossTrain` run): the inference computation recorded on a tape, one sequence at
 * positions `0..T-1`, every weight taken through the step's {@link TrainContext} (trainable
 * weights get gradients, frozen ones cost none; a tied head reads the same Var as the embedding,
 * so its gradient accumulates from both uses).
 *
 * The loss is transformers' `*ForCausalLM` loss: next-token cross-entropy, mean over the
 * non-ignored targets, plus `routerAuxLossCoef · aux` for MoE models (the load-balancing loss of
 * `src/nn/load_balancing.ts`, pooled over the MoE layers and over every input token, as HF pools
 * the router logits of the whole `input_ids`).
 *
 * Default `routerAuxLossCoef`: the checkpoint's `config.json` `router_aux_loss_coef` when present,
 * else 0. This differs from transformers in one respect: HF adds the aux term only when
 * `output_router_logits` is true (false by default, so a stock HF fine-tune of Mixtral ignores
 * the 0.02 in its config); Ferry applies the configured coefficient whenever it trains, since a
 * MoE trained with routing gradients and no balancing term tends to collapse onto few experts.
 * Pass `routerAuxLossCoef: 0` to reproduce HF's default.
 *
 * @module
 */
import { add, scale } from "../autograd/elementwise.ts";
import { crossEntropy } from "../autograd/cross_entropy.ts";
import type { Var } from "../autograd/tape.ts";
import type { TrainContext } from "../autograd/train_context.ts";
import type { Device } from "../device/device.ts";
import type { DecoderLayer } from "../nn/decoder_layer.ts";
import type { Embedding } from "../nn/embedding.ts";
import type { Linear } from "../nn/linear.ts";
import { type LayerRouting, loadBalancingLoss } from "../nn/load_balancing.ts";
import type { RMSNorm } from "../nn/rms_norm.ts";
import { Tensor } from "../tensor/tensor.ts";
import type { ModelConfig } from "./config.ts";

/**
 * The parts of a `CausalLM` its training forward reads. Structural, so that causal_lm.ts imports
 * this module and not the other way round; a `CausalLM` is one.
 */
export interface TrainForwardModel {
  readonly config: Pick<ModelConfig, "vocabSize" | "slidingWindow" | "numExperts">;
  readonly device: Device;
  readonly hfConfig: Readonly<Record<string, unknown>>;
  readonly embedTokens: Embedding;
  readonly layers: readonly DecoderLayer[];
  readonly norm: RMSNorm;
  readonly lmHead: Linear;
}

/** What `CausalLM.forwardTrain` returns (Vars on the context's tape). */
export interface TrainForwardResult {
  /** `[T, V]` next-token logits. */
  logits: Var;
  /** MoE models: the load-balancing loss `E · Σ_e f_e P_e` (`[]`), unweighted. */
  auxLoss?: Var;
}

/** Options of `CausalLM.lossTrain`. */
export interface LossTrainOptions {
  /** Weight of the aux loss (MoE). Default: `config.json`'s `router_aux_loss_coef`, else 0 (see the module doc). */
  routerAuxLossCoef?: number;
  /** A token id whose occurrences as a *target* are skipped (e.g. the pad id). Default −100 (none). */
  ignoreIndex?: number;
}

/** What `CausalLM.lossTrain` returns (Vars on the context's tape). */
export interface LossTrainResult {
  /** `[]` `lmLoss + routerAuxLossCoef · auxLoss`: call `tape.backward(loss)`. */
  loss: Var;
  /** `[]` mean next-token cross-entropy. */
  lmLoss: Var;
  /** `[]` MoE models: the unweighted load-balancing loss. */
  auxLoss?: Var;
  /** Targets counted in `lmLoss` (not ignored). */
  tokens: number;
}

function checkIds(ids: Int32Array, V: number, what: string): void {
  if (!(ids instanceof Int32Array)) {
    throw new TypeError(
      `Cannot run ${what}: ids must be an Int32Array: received ${Object.prototype.toString.call(ids)}`,
    );
  }
  for (let i = 0; i < ids.length; i++) {
    if (!(ids[i] >= 0 && ids[i] < V)) {
      throw new RangeError(
        `Cannot run ${what}: ids[${i}] = ${ids[i]} is outside the vocabulary (0..${V - 1})`,
      );
    }
  }
}

/**
 * See `CausalLM.forwardTrain`. With `segment`, `ids` holds `T / segment` sequences packed one after
 * another, each at positions `0..segment-1` and attending only within itself.
 */
export async function forwardTrain(
  model: TrainForwardModel,
  ctx: TrainContext,
  ids: Int32Array,
  segment?: number,
): Promise<TrainForwardResult> {
  const what = "CausalLM.forwardTrain";
  checkIds(ids, model.config.vocabSize, what);
  const T = ids.length;
  if (T === 0) throw new RangeError(`Cannot run ${what}: ids is empty: pass at least one token id`);
  const window = model.config.slidingWindow;
  if (window !== null && (segment ?? T) > window) {
    throw new RangeError(
      `Cannot run ${what}: ${T} tokens exceed the sliding window of ${window}; sliding-window attention ` +
        `is not supported yet, so train on sequences within the window`,
    );
  }
  const idsT = ctx.tape.keep(Tensor.fromArray(model.device, Int32Array.from(ids), [T], { dtype: "i32" })); // [T]
  let x = model.embedTokens.forwardTrain(idsT, ctx); // [T] -> [T, C]
  const routing: LayerRouting[] = [];
  for (const layer of model.layers) {
    const out = await layer.forwardTrain(x, ctx, segment); // [T, C] -> [T, C]
    x = out.x;
    if (out.router) routing.push(out.router);
  }
  const h = model.norm.forwardTrain(x, ctx); // [T, C]
  const logits = model.lmHead.forwardTrain(h, ctx); // [T, C] x [V, C]ᵀ -> [T, V]
  if (routing.length === 0) return { logits };
  return { logits, auxLoss: loadBalancingLoss(routing, model.config.numExperts) };
}

/** The default aux-loss weight of `model`: `router_aux_loss_coef` from its config.json, else 0. */
export function defaultRouterAuxLossCoef(model: TrainForwardModel): number {
  const c = model.hfConfig.router_aux_loss_coef;
  return typeof c === "number" && Number.isFinite(c) ? c : 0;
}

/**
 * See `CausalLM.lossTrain`. A batch of blocks of one length runs as one packed forward (every
 * projection over all `B·(T+1)` rows, attention within each block); the loss is the mean over all
 * the batch's targets, and a MoE model's aux loss pools the router over all its tokens (as HF pools
 * a batch).
 */
export async function lossTrain(
  model: TrainForwardModel,
  ctx: TrainContext,
  ids: Int32Array | readonly Int32Array[],
  options: LossTrainOptions = {},
): Promise<LossTrainResult> {
  const what = "CausalLM.lossTrain";
  const blocks = ids instanceof Int32Array ? [ids] : ids;
  const L = blocks[0]?.length ?? 0;
  if (blocks.length === 0) {
    throw new RangeError(`Cannot run ${what}: the batch is empty: pass at least one block`);
  }
  if (blocks.some((b) => b.length !== L)) {
    throw new RangeError(
      `Cannot run ${what}: a batch's blocks must have one length: received ${blocks.map((b) => b.length)}; ` +
        "pass blocks of different lengths one call each",
    );
  }
  if (L < 2) {
    throw new RangeError(
      `Cannot run ${what}: ids must hold at least 2 tokens (inputs ids[0..T-1], targets ids[1..T]): ` +
        `received ${L}`,
    );
  }
  const ignoreIndex = options.ignoreIndex ?? -100;
  const coef = options.routerAuxLossCoef ?? defaultRouterAuxLossCoef(model);
  if (!(Number.isFinite(coef) && coef >= 0)) {
    throw new RangeError(
      `Cannot run ${what}: routerAuxLossCoef must be a finite number ≥ 0: received ${coef}`,
    );
  }
  const packed = new Int32Array(blocks.length * L);
  blocks.forEach((b, i) => packed.set(b, i * L));
  // As HF: run all T+1 tokens of a block, targets shifted left with ignoreIndex after its last one.
  const { logits, auxLoss } = await forwardTrain(model, ctx, packed, blocks.length > 1 ? L : undefined); // [B·(T+1), V]
  const targets = new Int32Array(packed.length);
  for (let i = 0; i < blocks.length; i++) {
    targets.set(blocks[i].subarray(1), i * L);
    targets[(i + 1) * L - 1] = ignoreIndex;
  }
  const tokens = targets.reduce((n, t) => n + (t === ignoreIndex ? 0 : 1), 0);
  const targetsT = ctx.tape.keep(Tensor.fromArray(model.device, targets, [packed.length], { dtype: "i32" })); // [B·(T+1)]
  const lmLoss = crossEntropy(logits, targetsT, { ignoreIndex }); // [B·(T+1), V] -> []
  if (!auxLoss) return { loss: lmLoss, lmLoss, tokens };
  const loss = coef === 0 ? lmLoss : add(lmLoss, scale(auxLoss, coef)); // []
  return { loss, lmLoss, auxLoss, tokens };
}
