/**
 * The trainer's checkpoint state (`trainer_state.json`) and metric columns, and the check that a
 * checkpoint's data layout matches the run resuming it.
 * @module
 */
import type { ColumnType } from "../metrics/column_type.ts";
import type { TrainerState } from "./checkpoint.ts";
import type { DataOrder } from "./data_order.ts";

/** Columns every trainer MetricLog declares up front, in table order. */
export const METRIC_COLUMNS: Readonly<Record<string, ColumnType>> = Object.freeze({
  step: "int32",
  split: "utf8",
  epoch: "int32",
  loss: "float64",
  lr: "float64",
  grad_norm: "float64",
  clip_scale: "float64",
  tokens: "int32",
  tokens_per_s: "float64",
  elapsed_s: "float64",
  eval_loss: "float64",
  eval_ppl: "float64",
  eval_tokens: "int32",
});

/** What `trainer_state.json` holds. `step` = completed optimizer steps. */
export interface TrainerCheckpointState extends TrainerState {
  format: "ferry.trainer_state";
  version: 1;
  /** The epoch of the next micro-batch. */
  epoch: number;
  /** The next global micro-batch (`step × accumulation`): the data position. */
  microBatch: number;
  examples: number;
  batch: number;
  accumulation: number;
  seed: number;
  shuffle: boolean;
  /** The learning rate the next step uses. */
  lr: number;
  elapsedS: number;
  tokensSeen: number;
  /** The run's metrics table, relative to the checkpoint folder. */
  metricsFile: string;
  /** The parsed trainer config of the run that wrote the checkpoint. */
  config: unknown;
  /** Every metric row logged before the checkpoint (restored on resume). */
  metrics: Record<string, unknown>[];
}

/** The fields that fix which examples step `s` sees; a resumed run must keep them. */
export interface DataLayout {
  batch: number;
  accumulation: number;
  seed: number;
  shuffle: boolean;
  examples: number;
}

/**
 * @throws {RangeError} When `state` was written with another data layout than `now`'s (resuming
 *   would silently train on other examples than the interrupted run).
 */
export function checkResumable(state: TrainerCheckpointState, now: DataLayout, path: string): void {
  const diffs = (Object.keys(now) as (keyof DataLayout)[])
    .filter((k) => state[k] !== now[k])
    .map((k) => `${k} ${JSON.stringify(state[k])} there, ${JSON.stringify(now[k])} now`);
  if (diffs.length > 0) {
    throw new RangeError(
      `Cannot resume from ${path}: the data layout changed (${diffs.join("; ")}); ` +
        `restore those settings, or train into a new runDir`,
    );
  }
}

/** The state saved at the top of step `step` (after `step` updates). */
export function checkpointState(s: {
  step: number;
  order: DataOrder;
  accumulation: number;
  lr: number;
  elapsedS: number;
  tokensSeen: number;
  config: { seed: number; shuffle: boolean };
  metrics: Record<string, unknown>[];
}): TrainerCheckpointState {
  const microBatch = s.step * s.accumulation;
  return {
    format: "ferry.trainer_state",
    version: 1,
    step: s.step,
    epoch: s.order.epochOf(microBatch),
    microBatch,
    examples: s.order.examples,
    batch: s.order.batch,
    accumulation: s.accumulation,
    seed: s.config.seed,
    shuffle: s.config.shuffle,
    lr: s.lr,
    elapsedS: s.elapsedS,
    tokensSeen: s.tokensSeen,
    metricsFile: "../../metrics.arrow",
    config: s.config,
    metrics: s.metrics,
  };
}
