/**
 * Training FloE's learned expert predictors (ALGORITHMS.md A.5) with Ferry's `Trainer`: examples
 * `(h_i, multi-hot of layer i+1's true top-k)` from routing traces, SmoothL1 between the raw scores
 * and the label, AdamW (the authors: Adam, lr 5e-4, batch 2048, 80/20 split, a few epochs).
 *
 * @example Train a linear predictor initialised from the next router
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "../models/load.ts";
 * import { asDenseLinear } from "../nn/linear_like.ts";
 * import type { SparseMoE } from "../nn/sparse_moe.ts";
 * import { LinearExpertPredictor } from "../predictors/learned.ts";
 * import { traceMoe } from "../predictors/trace.ts";
 * import { predictorExamples, trainExpertPredictor } from "./train_predictor.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/mixtral-top2-f32", { device });
 * const traces = [await traceMoe(model, Int32Array.from({ length: 32 }, (_, i) => (i * 7) % 96))];
 * const examples = predictorExamples(traces, 1, 4);
 * using p = await LinearExpertPredictor.fromRouter(asDenseLinear((model.layers[1].mlp as SparseMoE).router, "copy"));
 * const runDir = await Deno.makeTempDir();
 * const r = await trainExpertPredictor(p, examples, { steps: 5, batch: 8, lr: 1e-3, runDir });
 * assert.equal(r.step, 5);
 * await Deno.remove(runDir, { recursive: true });
 * ```
 * @module
 */
import { smoothL1Loss } from "../autograd/smooth_l1.ts";
import type { TrainContext } from "../autograd/train_context.ts";
import type { FitResult } from "../lora/trainer.ts";
import { Trainer } from "../lora/trainer.ts";
import type { LearnedExpertPredictor } from "../predictors/learned.ts";
import type { MoeLayerTrace } from "../predictors/trace.ts";
import { Tensor } from "../tensor/tensor.ts";

/** One training example: the previous layer's MoE input and the target layer's multi-hot experts. */
export interface PredictorExample {
  /** `[C]` `h_{target−1}`. */
  h: Float32Array;
  /** `[E]` 1 for each of the target layer's true top-k experts. */
  label: Float32Array;
}

/**
 * Examples for predicting layer `target` from traces (one map per sequence) that hold layer
 * `target − 1` and `target`.
 *
 * @throws {RangeError} when a trace lacks either layer
 */
export function predictorExamples(
  traces: readonly Map<number, MoeLayerTrace>[],
  target: number,
  experts: number,
): PredictorExample[] {
  const out: PredictorExample[] = [];
  for (const m of traces) {
    const prev = m.get(target - 1);
    const cur = m.get(target);
    if (!prev || !cur) {
      throw new RangeError(
        `Cannot build predictor examples for layer ${target}: the trace holds MoE layers [${[
          ...m.keys(),
        ]}]; ` +
          `it needs ${target - 1} and ${target}`,
      );
    }
    const C = prev.x.length / prev.T;
    for (let t = 0; t < cur.T; t++) {
      const label = new Float32Array(experts);
      for (let k = 0; k < cur.K; k++) label[cur.selected[t * cur.K + k]] = 1;
      out.push({ h: prev.x.slice(t * C, (t + 1) * C), label });
    }
  }
  return out;
}

/** Options of {@link trainExpertPredictor}. */
export interface TrainPredictorOptions {
  steps: number;
  /** Examples per step (default 64). */
  batch?: number;
  /** AdamW learning rate (default 5e-4, the authors'). */
  lr?: number;
  /** The Trainer's run folder (metrics, checkpoints). */
  runDir?: string;
  seed?: number;
}

/** Trains `predictor` in place on `examples` (SmoothL1 to the multi-hot label). */
export async function trainExpertPredictor(
  predictor: LearnedExpertPredictor,
  examples: readonly PredictorExample[],
  options: TrainPredictorOptions,
): Promise<FitResult> {
  const { steps, batch = 64, lr = 5e-4, runDir, seed = 0 } = options;
  if (examples.length === 0) throw new RangeError("Cannot train an expert predictor without examples");
  const device = predictor.parameters().values().next().value!.device;
  const C = examples[0].h.length;
  const E = examples[0].label.length;
  const task = {
    parameters: () => predictor.parameters(),
    loss(ctx: TrainContext, xs: readonly PredictorExample[]) {
      const n = xs.length;
      const h = new Float32Array(n * C);
      const y = new Float32Array(n * E);
      xs.forEach((x, i) => {
        h.set(x.h, i * C);
        y.set(x.label, i * E);
      });
      const hv = ctx.v(ctx.tape.keep(Tensor.fromArray(device, h, [n, C]))); // [b, C]
      const yv = ctx.v(ctx.tape.keep(Tensor.fromArray(device, y, [n, E]))); // [b, E]
      return { loss: smoothL1Loss(predictor.forwardTrain(ctx, hv), yv), tokens: n }; // []
    },
  };
  using trainer = new Trainer(task, {
    optimizer: { lr, weightDecay: 0 },
    schedule: { totalSteps: steps },
    batch: Math.min(batch, examples.length),
    runDir,
    seed,
    resume: false,
    progress: false,
  });
  return await trainer.fit(examples);
}
