/**
 * `ExpertStore`: FloE's host-side expert weights in the channel-major layout (Zhou et al., ICML
 * 2025, https://arxiv.org/abs/2505.05950; ALGORITHMS.md A.2, A.6, E): per MoE layer and expert, the
 * gate rows `[F, C]` and the down projection **transposed** `[F, C]`, so intermediate channel `f` is
 * one contiguous `C`-long run in each, and streaming the channels a mask keeps is a list of contiguous
 * copies ({@link ExpertStore.gatherRows} packs them into one staging array, as FloE packs pinned memory
 * before one host-to-device copy). Values are kept as f16 or f32, as the checkpoint stores them.
 *
 * Legend: `L` layers, `E` experts, `C` hidden, `F` expert width, `k` kept channels.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "../models/load.ts";
 * import { ExpertStore } from "./expert_store.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/mixtral-top2-f32", { device });
 * const store = await ExpertStore.fromModel(model);
 * const rows = store.gatherRows(0, 1, "down", Int32Array.of(3, 7)); // [k=2, C]
 * assert.equal(rows.length, 2 * store.hidden);
 * assert.equal(store.bytesPerExpert(), 2 * store.intermediate * store.hidden * 4); // f32 gate + downT
 * ```
 * @module
 */
import { f16ToF32, f32ToF16 } from "../io/dtype_convert.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import { asDenseExperts } from "../nn/experts.ts";
import { SparseMoE } from "../nn/sparse_moe.ts";

/** Which channel-major matrix. */
export type StoredMatrix = "gate" | "down";

/** Host storage dtype of the streamed matrices. */
export type StoreDType = "f16" | "f32";

type Rows = Float32Array | Uint16Array;

/** Options of {@link ExpertStore.fromModel}. */
export interface ExpertStoreOptions {
  /** Storage dtype (default: f16 for f16/bf16 checkpoints, f32 otherwise). */
  dtype?: StoreDType;
}

/** Channel-major gate and transposed down rows of every MoE layer's experts, in host memory. */
export class ExpertStore {
  readonly dtype: StoreDType;
  /** The MoE layers held, ascending. */
  readonly layers: readonly number[];
  readonly numExperts: number;
  readonly hidden: number;
  readonly intermediate: number;
  readonly #rows: Map<number, { gate: Rows[]; down: Rows[] }>;

  private constructor(
    dtype: StoreDType,
    dims: { E: number; C: number; F: number },
    rows: Map<number, { gate: Rows[]; down: Rows[] }>,
  ) {
    this.dtype = dtype;
    this.layers = [...rows.keys()].sort((a, b) => a - b);
    this.numExperts = dims.E;
    this.hidden = dims.C;
    this.intermediate = dims.F;
    this.#rows = rows;
  }

  /**
   * Reads every MoE layer's dense experts back from the device and lays them out channel-major.
   *
   * @throws {TypeError} for a model without MoE layers or whose experts are not dense
   */
  static async fromModel(model: CausalLM, options: ExpertStoreOptions = {}): Promise<ExpertStore> {
    if (model.moeLayers.length === 0) {
      throw new TypeError(
        `Cannot build an ExpertStore: the model (${model.config.modelType}) has no MoE layers; FloE needs a MoE model`,
      );
    }
    const ckpt = String(model.hfConfig.torch_dtype ?? "float32");
    const dtype = options.dtype ?? (ckpt === "float16" || ckpt === "bfloat16" ? "f16" : "f32");
    const rows = new Map<number, { gate: Rows[]; down: Rows[] }>();
    let dims = { E: 0, C: 0, F: 0 };
    for (const l of model.moeLayers) {
      const moe = model.layers[l].mlp as SparseMoE;
      const experts = asDenseExperts(moe.experts, "build an ExpertStore");
      const [E, F, C] = experts.gateProj.shape;
      dims = { E, C, F };
      const gate = await experts.gateProj.toArray() as Float32Array; // [E, F, C]
      const down = await experts.downProj.toArray() as Float32Array; // [E, C, F]
      const entry = { gate: [] as Rows[], down: [] as Rows[] };
      for (let e = 0; e < E; e++) {
        const g = gate.slice(e * F * C, (e + 1) * F * C); // [F, C]
        const dT = new Float32Array(F * C); // [C, F] -> [F, C]
        const base = e * C * F;
        for (let c = 0; c < C; c++) for (let f = 0; f < F; f++) dT[f * C + c] = down[base + c * F + f];
        entry.gate.push(dtype === "f16" ? f32ToF16(g) : g);
        entry.down.push(dtype === "f16" ? f32ToF16(dT) : dT);
      }
      rows.set(l, entry);
    }
    return new ExpertStore(dtype, dims, rows);
  }

  /** Bytes of one stored value. */
  get bytesPerValue(): number {
    return this.dtype === "f16" ? 2 : 4;
  }

  /** Bytes of one channel of one matrix (`C` values). */
  rowBytes(): number {
    return this.hidden * this.bytesPerValue;
  }

  /** Bytes of one expert's gate and transposed down (`2·F·C` values). */
  bytesPerExpert(): number {
    return 2 * this.intermediate * this.rowBytes();
  }

  /** Bytes of every stored expert. */
  totalBytes(): number {
    return this.layers.length * this.numExperts * this.bytesPerExpert();
  }

  /** `[F, C]` f32: the whole channel-major matrix of one expert. */
  matrix(layer: number, expert: number, which: StoredMatrix): Float32Array {
    const r = this.#get(layer, expert, which);
    return r instanceof Float32Array ? r.slice() : f16ToF32(r);
  }

  /**
   * `[k, C]` f32: the rows of `channels`, in the given order, packed contiguously (one copy per
   * channel: the staging buffer one upload would send).
   *
   * @throws {RangeError} on a channel outside `0..F-1`
   */
  gatherRows(layer: number, expert: number, which: StoredMatrix, channels: ArrayLike<number>): Float32Array {
    const r = this.#get(layer, expert, which);
    const { hidden: C, intermediate: F } = this;
    const out = new Float32Array(channels.length * C);
    for (let j = 0; j < channels.length; j++) {
      const f = channels[j];
      if (!(Number.isInteger(f) && f >= 0 && f < F)) {
        throw new RangeError(`Cannot gather expert rows: channel ${f} is outside 0..${F - 1}`);
      }
      const run = r.subarray(f * C, (f + 1) * C);
      out.set(run instanceof Float32Array ? run : f16ToF32(run), j * C);
    }
    return out;
  }

  #get(layer: number, expert: number, which: StoredMatrix): Rows {
    const entry = this.#rows.get(layer);
    if (!entry || !(Number.isInteger(expert) && expert >= 0 && expert < this.numExperts)) {
      throw new RangeError(
        `Cannot read expert ${expert} of layer ${layer}: the store holds MoE layers [${this.layers}] with ` +
          `${this.numExperts} experts each`,
      );
    }
    return entry[which][expert];
  }
}
