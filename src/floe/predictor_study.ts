/**
 * The predictor study of FloE (Zhou et al., ICML 2025, https://arxiv.org/abs/2505.05950;
 * ALGORITHMS.md A.4, A.5, D.1.3), per MoE layer `j` with a MoE layer `i = j − 1` before it:
 *
 * - experts: the predictor's top-k from `h_i` against layer `j`'s router choice (top-1, unordered
 *   top-k accuracy, reloads per token);
 * - channels (FloE layers only): the reuse predictor `|up_j,e(h_i)|` masked as layer `j` masks
 *   (threshold or top-k) against the exact mask from `up_j,e(h_j)`, for every token and each expert
 *   the router really picks (recall, precision, predicted/true count).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { floeCompress } from "./compress.ts";
 * import { loadModel } from "../models/load.ts";
 * import { evaluatePredictors } from "./predictor_study.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await floeCompress(await loadModel("test/fixtures/models/mixtral-top2-f32", { device }),
 *   { upBits: 16, sparsity: 0.5, mode: "topk", denseLayers: [0] });
 * const [row] = await evaluatePredictors(model, [Int32Array.of(1, 5, 9, 4, 7)]);
 * assert.ok(row.layer === 1 && row.expert_topk >= 0 && row.expert_topk <= 1 && row.channel_recall > 0);
 * ```
 * @module
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { MetricLog } from "../metrics/metric_log.ts";
import { asDenseLinear } from "../nn/linear_like.ts";
import { LinearExpertPredictor, MlpExpertPredictor } from "../predictors/learned.ts";
import { FloeExperts } from "./floe_experts.ts";
import { predictorExamples, trainExpertPredictor } from "./train_predictor.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import type { SparseMoE } from "../nn/sparse_moe.ts";
import { keptChannels } from "../ops/sparse_expert.ts";
import { topk } from "../ops/topk.ts";
import { Tensor } from "../tensor/tensor.ts";
import { type ExpertPredictor, RouterReusePredictor } from "../predictors/expert_predictor.ts";
import { channelMetrics, expertMetrics } from "../predictors/metrics.ts";
import { traceMoe } from "../predictors/trace.ts";

/** One row of the predictor table. */
export interface PredictorRow {
  /** The predicted layer `j`. */
  layer: number;
  predictor: string;
  tokens: number;
  expert_top1: number;
  expert_topk: number;
  reloads_per_token: number;
  /** NaN for a layer without FloE experts. */
  channel_recall: number;
  channel_precision: number;
  channel_count_ratio: number;
}

/** Options of {@link evaluatePredictors}. */
export interface EvaluatePredictorsOptions {
  /** The expert predictor of each target layer (default: router reuse everywhere). */
  expertPredictor?: (target: number) => ExpertPredictor;
}

/** Scores the predictors on `sequences` (each one forward); one row per predicted MoE layer. */
export async function evaluatePredictors(
  model: CausalLM,
  sequences: readonly Int32Array[],
  options: EvaluatePredictorsOptions = {},
): Promise<PredictorRow[]> {
  const reuse = new RouterReusePredictor(model);
  const choose = options.expertPredictor ?? (() => reuse);
  const C = model.config.hidden;
  const acc = new Map<
    number,
    { kind: string; pred: Int32Array[]; truth: Int32Array[]; cp: number[][]; ct: number[][] }
  >();
  for (const ids of sequences) {
    const trace = await traceMoe(model, ids);
    for (const j of model.moeLayers) {
      const hi = trace.get(j - 1);
      const hj = trace.get(j)!;
      if (!hi) continue;
      const predictor = choose(j);
      const a = acc.get(j) ?? { kind: predictor.kind, pred: [], truth: [], cp: [], ct: [] };
      acc.set(j, a);
      const { T, K } = hj;
      using h = Tensor.fromArray(model.device, hi.x, [T, C]); // h_i [T, C]
      using scores = predictor.predict(j, h); // [T, E]
      const top = topk(scores, K); // [T, K]
      top.values.dispose();
      a.pred.push(await top.indices.toArray() as Int32Array);
      top.indices.dispose();
      a.truth.push(hj.selected);

      const ex = (model.layers[j].mlp as SparseMoE).experts;
      if (!(ex instanceof FloeExperts)) continue;
      const F = ex.intermediate;
      using hx = Tensor.fromArray(model.device, hj.x, [T, C]); // h_j [T, C]
      for (let e = 0; e < ex.numExperts; e++) {
        const routed = Array.from({ length: T }, (_, t) => t).filter((t) =>
          hj.selected.subarray(t * K, (t + 1) * K).includes(e)
        );
        if (routed.length === 0) continue;
        using vp = ex.up[e].forward(h); // [T, C] -> [T, F] predicted
        using vt = ex.up[e].forward(hx); // [T, C] -> [T, F] exact
        const p = await vp.toArray() as Float32Array;
        const q = await vt.toArray() as Float32Array;
        const sel = ex.hostSelection(e);
        for (const t of routed) {
          a.cp.push(keptChannels(p, t * F, F, sel));
          a.ct.push(keptChannels(q, t * F, F, sel));
        }
      }
    }
  }
  const rows: PredictorRow[] = [];
  for (const [layer, a] of [...acc].sort((x, y) => x[0] - y[0])) {
    const cat = (xs: Int32Array[]) => Int32Array.from(xs.flatMap((x) => Array.from(x)));
    const em = expertMetrics(cat(a.pred), cat(a.truth), model.config.topK);
    const cm = a.ct.length > 0
      ? channelMetrics(a.cp, a.ct)
      : { recall: NaN, precision: NaN, countRatio: NaN };
    rows.push({
      layer,
      predictor: a.kind,
      tokens: em.tokens,
      expert_top1: em.top1,
      expert_topk: em.topk,
      reloads_per_token: em.reloadsPerToken,
      channel_recall: cm.recall,
      channel_precision: cm.precision,
      channel_count_ratio: cm.countRatio,
    });
  }
  return rows;
}

/** Options of {@link predictorTable}. */
export interface PredictorTableOptions {
  /** Sequences whose traces train the learned predictors. */
  train: readonly Int32Array[];
  /** Sequences the predictors are scored on. */
  evaluation: readonly Int32Array[];
  /** Optimizer steps per learned predictor (default 200). */
  steps?: number;
  /** MLP width (default 512, the authors'). */
  hidden?: number;
  /** Trainer run folders go under it (default: a temporary folder, removed). */
  runDir?: string;
  runId?: string;
}

/**
 * D.1.3 for every predictor kind: next-router reuse, the learned linear predictor (from the next
 * router) and the learned MLP, trained per target layer on `train` traces and scored on
 * `evaluation` (channel columns: the reuse channel predictor under the layer's selection).
 */
export async function predictorTable(model: CausalLM, options: PredictorTableOptions): Promise<MetricLog> {
  const { train, evaluation, steps = 200, hidden = 512, runId } = options;
  const log = new MetricLog({ runId, config: { steps, hidden } });
  const E = model.config.numExperts;
  const traces = await Promise.all(train.map((ids) => traceMoe(model, ids)));
  const linear = new Map<number, LinearExpertPredictor>();
  const mlp = new Map<number, MlpExpertPredictor>();
  const dir = options.runDir ?? await mkdtemp(`${tmpdir()}/ferry-predictors-`);
  try {
    for (const j of model.moeLayers) {
      if (!model.moeLayers.includes(j - 1)) continue;
      const examples = predictorExamples(traces, j, E);
      const router = asDenseLinear((model.layers[j].mlp as SparseMoE).router, "train an expert predictor");
      const lin = await LinearExpertPredictor.fromRouter(router);
      linear.set(j, lin);
      await trainExpertPredictor(lin, examples, { steps, runDir: `${dir}/linear-${j}` });
      const m = new MlpExpertPredictor(model.device, {
        features: model.config.hidden,
        experts: E,
        hidden,
        seed: j,
      });
      mlp.set(j, m);
      await trainExpertPredictor(m, examples, { steps, runDir: `${dir}/mlp-${j}` });
    }
    const kinds: [string, ((t: number) => ExpertPredictor) | undefined][] = [
      ["router-reuse", undefined],
      ["learned-linear", (t) => linear.get(t)!],
      ["learned-mlp", (t) => mlp.get(t)!],
    ];
    for (const [, choose] of kinds) {
      for (const row of await evaluatePredictors(model, evaluation, { expertPredictor: choose })) {
        log.log({ ...row });
      }
    }
  } finally {
    for (const p of [...linear.values(), ...mlp.values()]) p.dispose();
    if (!options.runDir) await rm(dir, { recursive: true, force: true });
  }
  return log;
}
