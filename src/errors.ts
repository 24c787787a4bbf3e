/**
 * Domain errors: the few failures a caller is expected to catch. Caller mistakes
 * (wrong shape, out-of-range option) use the built-in `TypeError` / `RangeError`.
 *
 * Messages follow one style: the action that failed, a colon, what was received,
 * then what to do.
 *
 * @example Catching a budget overrun
 * ```ts
 * import assert from "node:assert/strict";
 * import { OutOfBudgetError } from "./errors.ts";
 * const err = new OutOfBudgetError("Cannot allocate 4 MiB for activations: budget is 1 MiB");
 * assert.ok(err instanceof RangeError && err.name === "OutOfBudgetError");
 * ```
 * @module
 */

/** The GPU device was lost (driver reset, out of memory, destroyed). Create a new device. */
export class DeviceLostError extends Error {
  /** The reason WebGPU gave (`"destroyed"` or `"unknown"`). */
  readonly reason: string;
  constructor(message: string, reason = "unknown") {
    super(message);
    this.name = "DeviceLostError";
    this.reason = reason;
  }
}

/** An allocation would exceed the memory ledger's byte budget. */
export class OutOfBudgetError extends RangeError {
  constructor(message: string) {
    super(message);
    this.name = "OutOfBudgetError";
  }
}

/** A WGSL kernel failed to compile; the message carries the compiler's diagnostics. */
export class KernelCompileError extends Error {
  readonly kernel: string;
  constructor(kernel: string, message: string) {
    super(message);
    this.name = "KernelCompileError";
    this.kernel = kernel;
  }
}

/** A configuration object failed validation (see `src/config.ts`). */
export class ConfigError extends TypeError {
  constructor(message: string) {
    super(message);
    this.name = "ConfigError";
  }
}

/** A file on disk (safetensors, config.json, PEFT folder) is malformed. */
export class FormatError extends Error {
  /** The file that failed to parse, when known. */
  readonly path: string | undefined;
  constructor(message: string, path?: string) {
    super(message);
    this.name = "FormatError";
    this.path = path;
  }
}

/**
 * A training run produced a non-finite loss or gradient norm. The update of that step was
 * not applied, so the parameters in memory hold the last good values, and the checkpoint on
 * disk (if any) is the last good one.
 */
export class TrainingDivergedError extends Error {
  /** The 0-based optimizer step whose loss or gradient norm was not finite. */
  readonly step: number;
  /** What was not finite: `"loss"` or `"grad_norm"`. */
  readonly what: "loss" | "grad_norm";
  /** The value received (`NaN`, `Infinity` or `-Infinity`). */
  readonly value: number;
  /** The last good checkpoint folder kept on disk, or `null` when none was written yet. */
  readonly checkpoint: string | null;
  constructor(
    message: string,
    details: { step: number; what: "loss" | "grad_norm"; value: number; checkpoint: string | null },
  ) {
    super(message);
    this.name = "TrainingDivergedError";
    this.step = details.step;
    this.what = details.what;
    this.value = details.value;
    this.checkpoint = details.checkpoint;
  }
}
