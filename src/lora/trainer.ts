/**
 * `Trainer`: AdamW training of any {@linkcode TrainTask} (a LoRA adapter, a full model, a probe)
 * with a warmup + cosine schedule, gradient accumulation, global-norm clipping, periodic
 * evaluation, atomic checkpoints with exact resume, Arrow metrics and a progress bar.
 *
 * Each optimizer step runs in nanoGPT's fixed order:
 *
 * 1. `lr ← schedule(step)` (linear warmup, cosine to `minLr`);
 * 2. evaluate on `evalData` and write a checkpoint when due (and always at the end);
 * 3. `accumulation` micro-batches, each a fresh tape whose dropout seed derives from
 *    `(seed, step, micro)`, gradients summed token-weighted (see `accumulate_gradients.ts`: the
 *    step's gradient is the mean over all of its tokens);
 * 4. global gradient norm, clip coefficient `min(1, maxGradNorm / (norm + 1e-6))`;
 * 5. AdamW updates the parameters in place (clip and mean folded into one `gradScale`);
 * 6. one metrics row (`step`, `loss`, `lr`, `grad_norm`, `clip_scale`, `tokens`, `tokens_per_s`,
 *    `elapsed_s`, `epoch`, the memory ledger's `mem_*` columns), progress, `onStep`;
 * 7. stop after `schedule.totalSteps`.
 *
 * `step` in rows, errors and checkpoint names counts completed updates: the train row of step
 * `s` measured the parameters after `s` updates, like the eval row of step `s`, and
 * `checkpoints/step-000s` holds them. Data order, dropout seeds and the schedule are functions of
 * the step alone, so a run resumed from a checkpoint retraces the uninterrupted run's losses
 * exactly. A non-finite loss or gradient norm stops the run with a
 * {@linkcode TrainingDivergedError} before the bad update is applied.
 *
 * @example Fit a one-weight regression for 60 steps
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { add, mean, mul, type TrainContext } from "../autograd/mod.ts";
 * import { Trainer } from "./trainer.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const w = Tensor.fromArray(dev, [0], [1], { category: "lora" }); // [1], learns y = 3x
 * const task = {
 *   parameters: () => new Map([["w", w]]),
 *   loss(ctx: TrainContext, xs: readonly number[]) {
 *     const x = ctx.tape.keep(Tensor.fromArray(dev, xs, [xs.length])); // [b]
 *     const minusY = ctx.tape.keep(Tensor.fromArray(dev, xs.map((v) => -3 * v), [xs.length])); // [b]
 *     const d = add(mul(ctx.v(x), ctx.v(w)), ctx.v(minusY)); // w·x − 3x: [b]
 *     return { loss: mean(mul(d, d)), tokens: xs.length }; // []
 *   },
 * };
 * const runDir = await Deno.makeTempDir();
 * using trainer = new Trainer(task, {
 *   optimizer: { lr: 0.2, weightDecay: 0 },
 *   schedule: { totalSteps: 60 },
 *   batch: 2,
 *   runDir,
 *   progress: false,
 * });
 * const result = await trainer.fit([0.5, 1, 1.5, 2]);
 * assert.ok(Math.abs((await w.toArray())[0] - 3) < 0.1); // w → 3
 * assert.equal(result.log.rows, 60);
 * await Deno.remove(runDir, { recursive: true });
 * ```
 * @module
 */
import { basename, dirname, join } from "node:path";
import { TrainingDivergedError } from "../errors.ts";
import { AdamW } from "../optim/adamw.ts";
import { gradNorm } from "../optim/clip_grad.ts";
import { GradAccumulator } from "../optim/grad_accumulator.ts";
import { linearWarmupCosine, type LrSchedule } from "../optim/schedules.ts";
import { MetricLog, type MetricRow } from "../metrics/metric_log.ts";
import { ProgressBar } from "../metrics/progress.ts";
import { newRunId, saveRun, saveRunConfig } from "../metrics/run_dir.ts";
import type { Tensor } from "../tensor/tensor.ts";
import { accumulateGradients } from "./accumulate_gradients.ts";
import { latestCheckpoint, loadCheckpoint, removeStaleTemporaries, saveCheckpoint } from "./checkpoint.ts";
import { DataOrder, deriveSeed } from "./data_order.ts";
import { evaluateLoss } from "./evaluate.ts";
import type { TrainTask } from "./train_task.ts";
import {
  checkpointState,
  checkResumable,
  METRIC_COLUMNS,
  type TrainerCheckpointState,
} from "./_trainer_state.ts";
import { parseTrainerConfig, type TrainerConfig, type TrainerOptions } from "./trainer_config.ts";

/** What `onStep` receives after each optimizer step. */
export interface TrainStepReport {
  /** 0-based index of the step just taken (= updates before it). */
  step: number;
  loss: number;
  lr: number;
  /** Global gradient norm of the step's mean gradient, before clipping. */
  gradNorm: number;
  /** The clip coefficient applied (1: not clipped). */
  clipScale: number;
  tokens: number;
  tokensPerS: number;
  elapsedS: number;
  extra: Record<string, number>;
}

/** Options of {@linkcode Trainer.fit}. */
export interface FitOptions<E> {
  /** Held-out examples, evaluated every `evalEvery` steps and at the end. */
  evalData?: readonly E[];
  /** Called after every step (awaited). */
  onStep?: (report: TrainStepReport) => void | Promise<void>;
}

/** What {@linkcode Trainer.fit} returns. */
export interface FitResult {
  /** The run folder (metrics.arrow, config.json, checkpoints/). */
  runDir: string;
  /** Completed optimizer steps. */
  step: number;
  /** The last step's training loss (NaN when this fit took no step). */
  loss: number;
  /** The last evaluation loss, when `evalData` was given. */
  evalLoss: number | undefined;
  /** All metric rows, restored ones included. */
  log: MetricLog;
  /** The checkpoint this fit resumed from, or null. */
  resumedFrom: string | null;
  /** The newest checkpoint on disk. */
  checkpoint: string | null;
}

/** Trains a {@linkcode TrainTask}; see the module doc. Dispose it to free the optimizer state. */
export class Trainer<E> implements Disposable {
  readonly task: TrainTask<E>;
  /** The parsed, frozen config. */
  readonly config: TrainerConfig;
  /** The run folder: `config.runDir`, or `runs/<new run id>`. */
  readonly runDir: string;
  readonly optimizer: AdamW;
  /** Step → learning rate. */
  readonly schedule: LrSchedule;
  #log: MetricLog | undefined;

  /** @throws {ConfigError} On invalid options (unknown keys get a did-you-mean). */
  constructor(task: TrainTask<E>, options: TrainerOptions) {
    this.task = task;
    this.config = parseTrainerConfig(options);
    this.runDir = this.config.runDir ?? join("runs", newRunId());
    this.optimizer = new AdamW(this.config.optimizer);
    const { warmupSteps, totalSteps, minLr } = this.config.schedule;
    this.schedule = linearWarmupCosine({ warmupSteps, totalSteps, minLr, maxLr: this.config.optimizer.lr });
  }

  /** The metrics of the current or last `fit` (undefined before the first). */
  get log(): MetricLog | undefined {
    return this.#log;
  }

  /**
   * Trains for `schedule.totalSteps` optimizer steps on `trainData`, resuming from the newest
   * checkpoint in `runDir` when `resume` is on.
   *
   * @throws {TrainingDivergedError} When a loss or gradient norm is not finite.
   * @throws {RangeError} When the data cannot fill a micro-batch, or a checkpoint's data layout
   *   (batch, accumulation, seed, shuffle, example count) differs from this run's.
   * @throws {Error} When `resume` is off and `runDir` already holds checkpoints.
   */
  async fit(trainData: readonly E[], options: FitOptions<E> = {}): Promise<FitResult> {
    const { config, runDir } = this;
    const { batch, accumulation, seed, maxGradNorm } = config;
    const total = config.schedule.totalSteps;
    const params = this.#parameters();
    const device = params.values().next().value!.device;
    const order = new DataOrder(trainData.length, batch, { seed, shuffle: config.shuffle });
    const runId = basename(runDir);
    const savedConfig = { ...config, runDir };
    await removeStaleTemporaries(runDir);

    const resumedFrom = await latestCheckpoint(runDir);
    let state: TrainerCheckpointState | undefined;
    if (resumedFrom !== null) {
      if (!config.resume) {
        throw new Error(
          `Cannot start training: ${runDir} already holds checkpoints (${basename(resumedFrom)}); ` +
            `pass resume: true to continue it, or choose a new runDir`,
        );
      }
      state = await loadCheckpoint(resumedFrom, {
        params,
        optimizer: this.optimizer,
      }) as TrainerCheckpointState;
      checkResumable(
        state,
        { batch, accumulation, seed, shuffle: config.shuffle, examples: order.examples },
        resumedFrom,
      );
    }
    const log = new MetricLog({ runId, columns: METRIC_COLUMNS, config: savedConfig });
    for (const row of state?.metrics ?? []) log.log(row as MetricRow);
    this.#log = log;
    await saveRunConfig(dirname(runDir), runId, savedConfig);

    const bar = new ProgressBar({ total, mode: config.progress ? "auto" : "off", every: config.logEvery });
    const start = state?.step ?? 0;
    const started = performance.now();
    const elapsed = () => (state?.elapsedS ?? 0) + (performance.now() - started) / 1000;
    let tokensSeen = state?.tokensSeen ?? 0;
    let checkpoint = resumedFrom;
    let loss = NaN;
    let evalLoss: number | undefined;
    const acc = new GradAccumulator();
    bar.start(start);
    if (resumedFrom !== null) bar.message(`resumed from step ${start} (${resumedFrom})`);
    try {
      for (let step = start;; step++) {
        // 1) learning rate
        const lr = this.schedule(step);
        const end = step >= total;
        const fresh = step !== start || resumedFrom === null; // a resumed step's eval and checkpoint exist
        // 2) evaluation and checkpoint
        if (options.evalData && fresh && (end || (config.evalEvery > 0 && step % config.evalEvery === 0))) {
          const ev = await evaluateLoss(this.task, options.evalData, { batch });
          evalLoss = ev.loss;
          const extra = Object.fromEntries(Object.entries(ev.extra).map(([k, v]) => [`eval_${k}`, v]));
          log.log({
            step,
            split: "eval",
            eval_loss: ev.loss,
            eval_ppl: ev.ppl,
            eval_tokens: ev.tokens,
            ...extra,
          });
          bar.message(`step ${step}: eval_loss ${ev.loss.toFixed(4)}, eval_ppl ${ev.ppl.toPrecision(5)}`);
        }
        if (
          fresh && step > 0 && (end || (config.checkpointEvery > 0 && step % config.checkpointEvery === 0))
        ) {
          const s = checkpointState({
            step,
            order,
            accumulation,
            lr,
            elapsedS: elapsed(),
            tokensSeen,
            config: savedConfig,
            metrics: log.toJSON(),
          });
          checkpoint = await saveCheckpoint(runDir, { params, optimizer: this.optimizer, state: s }, {
            keep: config.keepCheckpoints,
          });
          await saveRun(dirname(runDir), runId, log.table(), savedConfig);
        }
        if (end) break;
        // 3) micro-batches: forward, backward, token-weighted accumulation
        const t0 = performance.now();
        const micro = Array.from(
          { length: accumulation },
          (_, m) => order.pick(trainData, step * accumulation + m),
        );
        const seeds = micro.map((_, m) => deriveSeed(seed, step, m));
        const r = await accumulateGradients(this.task, micro, {
          accumulator: acc,
          seeds,
          parameters: params,
          step,
        });
        // 4) global norm of the mean gradient, clip coefficient
        const named = acc.grads();
        const norm = (await gradNorm(named.map((g) => g.grad))) * r.gradScale;
        const bad = !Number.isFinite(r.loss) ? "loss" : !Number.isFinite(norm) ? "grad_norm" : null;
        if (bad) {
          log.log({ step, split: "train", loss: r.loss, lr, grad_norm: norm, tokens: r.tokens });
          await saveRun(dirname(runDir), runId, log.table(), savedConfig);
          throw diverged(step, bad, bad === "loss" ? r.loss : norm, r.loss, norm, checkpoint);
        }
        const clipScale = maxGradNorm === null ? 1 : Math.min(1, maxGradNorm / (norm + 1e-6));
        // 5) AdamW, in place
        this.optimizer.step(
          named.map(({ name, grad }) => ({ name, value: params.get(name)!, grad })),
          { lr, gradScale: clipScale * r.gradScale },
        );
        acc.reset();
        // 6) log
        loss = r.loss;
        tokensSeen += r.tokens;
        const dt = (performance.now() - t0) / 1000;
        const report: TrainStepReport = {
          step,
          loss,
          lr,
          gradNorm: norm,
          clipScale,
          tokens: r.tokens,
          tokensPerS: r.tokens / dt,
          elapsedS: elapsed(),
          extra: r.extra,
        };
        log.log({
          step,
          split: "train",
          epoch: order.epochOf(step * accumulation),
          loss,
          lr,
          grad_norm: norm,
          clip_scale: clipScale,
          tokens: r.tokens,
          tokens_per_s: report.tokensPerS,
          elapsed_s: report.elapsedS,
          ...r.extra,
          ...device.ledger.snapshot(),
        });
        bar.update(step + 1, { loss, lr, tokensPerS: report.tokensPerS });
        await options.onStep?.(report);
      }
    } finally {
      acc.reset();
      bar.finish();
    }
    await saveRun(dirname(runDir), runId, log.table(), savedConfig);
    return { runDir, step: Math.max(start, total), loss, evalLoss, log, resumedFrom, checkpoint };
  }

  /** Frees the optimizer state. */
  dispose(): void {
    this.optimizer.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #parameters(): Map<string, Tensor> {
    const params = this.task.parameters();
    if (params.size === 0) {
      throw new TypeError("Cannot train: task.parameters() returned no tensors; mark some weights trainable");
    }
    const first = params.values().next().value!;
    for (const [name, t] of params) {
      if (t.dtype !== "f32" || t.device !== first.device || t.disposed) {
        throw new TypeError(
          `Cannot train "${name}": trainable tensors must be live f32 tensors on one device: received ${t}`,
        );
      }
    }
    return params;
  }
}

function diverged(
  step: number,
  what: "loss" | "grad_norm",
  value: number,
  loss: number,
  norm: number,
  checkpoint: string | null,
): TrainingDivergedError {
  return new TrainingDivergedError(
    `Training diverged at step ${step}: the ${what === "loss" ? "loss" : "gradient norm"} is ${value} ` +
      `(loss ${loss}, grad_norm ${norm}); the update was not applied, so the parameters keep their values ` +
      `from before step ${step}. Last good checkpoint: ${checkpoint ?? "none written yet"}. ` +
      `Try a lower optimizer.lr, more schedule.warmupSteps or a smaller maxGradNorm`,
    { step, what, value, checkpoint },
  );
}
