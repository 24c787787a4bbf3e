/**
 * The AdamW optimizer ([Loshchilov & Hutter, arXiv:1711.05101](https://arxiv.org/abs/1711.05101))
 * with `torch.optim.AdamW` semantics and option names (`lr`, `betas`, `eps`, `weightDecay`).
 *
 * Per parameter it keeps `exp_avg` (m) and `exp_avg_sq` (v), allocated lazily on the first step
 * under the ledger category `"optimizer"`, and a step count (torch keeps one per parameter too).
 * {@linkcode AdamW.step} updates each parameter tensor **in place** ({@linkcode adamwStepInPlace}),
 * so modules keep holding the same tensors; pass `gradScale` to fold a clip coefficient or a
 * 1/accumulation factor into the same kernel.
 *
 * @example Two steps on one parameter
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { AdamW } from "./adamw.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const w = Tensor.fromArray(dev, [1, 2, 3], [3], { category: "lora" });
 * const opt = new AdamW({ lr: 0.1, weightDecay: 0 });
 * for (let i = 0; i < 2; i++) {
 *   using g = Tensor.fromArray(dev, [1, 1, 1]);
 *   opt.step([{ name: "w", value: w, grad: g }]);
 * }
 * assert.ok(Math.abs((await w.toArray())[0] - 0.8) < 1e-5); // two steps of lr against +g
 * assert.ok(dev.ledger.current("optimizer") === 24); // m and v: 2 × 3 × 4 bytes
 * opt.dispose();
 * ```
 * @module
 */
import { z } from "zod";
import { parseConfig } from "../config.ts";
import type { Device } from "../device/device.ts";
import { adamwStepInPlace } from "../ops/adamw.ts";
import { Tensor } from "../tensor/tensor.ts";

const Beta = z.number().min(0).lt(1);

/** Options of {@link AdamW}; defaults are torch's. */
export const AdamWOptionsSchema = z.strictObject({
  /** Learning rate; schedules overwrite it per step through `step(…, { lr })` or `opt.lr = …`. */
  lr: z.number().nonnegative().default(1e-3),
  /** `[β1, β2]` for the first and second moment averages. */
  betas: z.tuple([Beta, Beta]).default([0.9, 0.999]),
  eps: z.number().nonnegative().default(1e-8),
  /** Decoupled weight decay: `p ← p·(1 − lr·weightDecay)` before the Adam update. */
  weightDecay: z.number().nonnegative().default(1e-2),
});

/** What callers pass to `new AdamW(…)`. */
export type AdamWOptions = z.input<typeof AdamWOptionsSchema>;
/** The parsed options, defaults filled. */
export type AdamWConfig = z.output<typeof AdamWOptionsSchema>;

/** One trainable parameter for a step: its stable name, the tensor to update, its gradient. */
export interface ParamWithGrad {
  readonly name: string;
  readonly value: Tensor;
  readonly grad: Tensor;
}

/** Options of one {@link AdamW.step} call. */
export interface StepOptions {
  /** Learning rate for this step (also stored as `opt.lr`). */
  lr?: number;
  /** Gradients are multiplied by this first, e.g. `clipGradNorm(…).scale / accumulationSteps`. */
  gradScale?: number;
}

/** A parameter's state on the host, as `torch.optim.AdamW.state_dict()["state"][i]` holds it. */
export interface AdamWParamState {
  step: number;
  shape: number[];
  expAvg: Float32Array;
  expAvgSq: Float32Array;
}

/** A checkpointable snapshot: options and per-parameter state by name. */
export interface AdamWStateDict {
  options: AdamWConfig;
  state: Record<string, AdamWParamState>;
}

interface Slot {
  step: number;
  m: Tensor<"f32">;
  v: Tensor<"f32">;
}

/** AdamW holding per-parameter moments on the device. Call `dispose()` to return them. */
export class AdamW implements Disposable {
  /** The parsed, frozen options (`lr` here is the initial learning rate). */
  readonly options: AdamWConfig;
  /** Current learning rate. */
  lr: number;
  #slots = new Map<string, Slot>();

  constructor(options: AdamWOptions = {}) {
    this.options = parseConfig("AdamW", AdamWOptionsSchema, options);
    this.lr = this.options.lr;
  }

  /** Names of parameters that have state, in first-step order. */
  get names(): string[] {
    return [...this.#slots.keys()];
  }

  /** Bytes of optimizer state on the device (2 × 4 bytes per parameter element). */
  get stateBytes(): number {
    let n = 0;
    for (const s of this.#slots.values()) n += s.m.byteLength + s.v.byteLength;
    return n;
  }

  /** The step count of `name` (0 before its first step). */
  stepCount(name: string): number {
    return this.#slots.get(name)?.step ?? 0;
  }

  /**
   * One optimizer step: updates every `value` in place from its `grad`.
   *
   * @throws {TypeError} On duplicate names, or a parameter whose shape changed since its state
   *   was created.
   */
  step(params: readonly ParamWithGrad[], options: StepOptions = {}): void {
    if (options.lr !== undefined) this.lr = options.lr;
    const seen = new Set<string>();
    for (const { name } of params) {
      if (seen.has(name)) throw new TypeError(`Cannot run AdamW.step: parameter "${name}" appears twice`);
      seen.add(name);
    }
    const [beta1, beta2] = this.options.betas;
    for (const { name, value, grad } of params) {
      const slot = this.#slot(name, value);
      adamwStepInPlace(value, grad, slot.m, slot.v, {
        lr: this.lr,
        beta1,
        beta2,
        eps: this.options.eps,
        weightDecay: this.options.weightDecay,
        step: slot.step + 1,
        gradScale: options.gradScale ?? 1,
      });
      slot.step++;
    }
  }

  /** Reads every parameter's state back to the host (one readback per tensor). */
  async stateDict(): Promise<AdamWStateDict> {
    const state: Record<string, AdamWParamState> = {};
    for (const [name, s] of this.#slots) {
      state[name] = {
        step: s.step,
        shape: [...s.m.shape],
        expAvg: await s.m.toArray(),
        expAvgSq: await s.v.toArray(),
      };
    }
    return { options: { ...this.options, betas: [...this.options.betas] }, state };
  }

  /**
   * Replaces all state with `dict`'s, uploading it to `device`. Options other than `lr` must
   * match this optimizer's; `lr` is restored.
   *
   * @throws {TypeError} When the options differ or an entry's arrays do not match its shape.
   */
  loadStateDict(dict: AdamWStateDict, device: Device): void {
    const { lr: _lr, ...mine } = this.options;
    const { lr, ...theirs } = parseConfig("AdamW state_dict options", AdamWOptionsSchema, dict.options);
    if (JSON.stringify(mine) !== JSON.stringify(theirs)) {
      throw new TypeError(
        `Cannot load AdamW state: options differ: this optimizer has ${JSON.stringify(mine)}, ` +
          `the state dict ${JSON.stringify(theirs)}`,
      );
    }
    const slots = new Map<string, Slot>();
    try {
      for (const [name, s] of Object.entries(dict.state)) {
        const n = s.shape.reduce((a, b) => a * b, 1);
        if (s.expAvg.length !== n || s.expAvgSq.length !== n || !Number.isInteger(s.step) || s.step < 0) {
          throw new TypeError(
            `Cannot load AdamW state for "${name}": expected ${n} values for shape [${s.shape}] ` +
              `and an integer step: received ${s.expAvg.length} / ${s.expAvgSq.length}, step ${s.step}`,
          );
        }
        const upload = (data: Float32Array, what: string) =>
          Tensor.fromArray<"f32">(device, data, s.shape, { category: "optimizer", label: `${what} ${name}` });
        const m = upload(s.expAvg, "exp_avg");
        const v = upload(s.expAvgSq, "exp_avg_sq");
        slots.set(name, { step: s.step, m, v });
      }
    } catch (err) {
      for (const s of slots.values()) s.m.dispose(), s.v.dispose();
      throw err;
    }
    this.dispose();
    this.#slots = slots;
    this.lr = lr;
  }

  /** Frees all state (parameters start fresh on their next step). */
  dispose(): void {
    for (const s of this.#slots.values()) s.m.dispose(), s.v.dispose();
    this.#slots.clear();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #slot(name: string, value: Tensor): Slot {
    const slot = this.#slots.get(name);
    if (slot) {
      if (slot.m.shape.join() !== value.shape.join() || slot.m.device !== value.device) {
        throw new TypeError(
          `Cannot run AdamW.step: parameter "${name}" has shape [${value.shape}] but its state has ` +
            `[${slot.m.shape}] (or lives on another device)`,
        );
      }
      return slot;
    }
    const make = (what: string) =>
      Tensor.zeros(value.device, value.shape, { category: "optimizer", label: `${what} ${name}` });
    const created = { step: 0, m: make("exp_avg"), v: make("exp_avg_sq") };
    this.#slots.set(name, created);
    return created;
  }
}
