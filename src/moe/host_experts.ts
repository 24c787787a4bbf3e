/**
 * `HostExperts`: every routed expert of a MoE checkpoint in host memory, whole (gate `[F, C]`, up
 * `[F, C]`, down `[C, F]`, the HF layouts), read straight from the safetensors shards without
 * passing through the device, as an offloading runtime keeps them (mixtral-offloading,
 * DeepSpeed-MII; ALGORITHMS.md C.1). Values stay in the checkpoint's dtype (F32, F16 or BF16 bits),
 * so an f16 model of 5.6 GB of experts takes 5.6 GB of host memory; {@link HostExperts.pack}
 * writes one matrix in the device's storage dtype (`deviceDType`: f32, or f16 for 16-bit slots)
 * into a staging array, the copy that one upload then sends. FloE's rows are channel-major: gate
 * rows and the rows of down transposed (`"downT"`, `[F, C]`), so a kept channel is one contiguous
 * run ({@link HostExperts.packRows}, ALGORITHMS.md A.6). {@link HostExperts.fromModel} reads the
 * experts of a loaded model back from its device instead (FloE's quality path).
 *
 * Legend: `E` experts, `C` hidden, `F` expert width.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HostExperts } from "./host_experts.ts";
 * const store = await HostExperts.fromCheckpoint("test/fixtures/models/mixtral-top2-f32");
 * const staging = new Float32Array(store.expertValues());
 * store.pack(1, 3, "down", staging); // [C, F] of expert 3 in layer 1
 * assert.deepEqual(store.layers, [0, 1]);
 * assert.equal(store.expertBytes(), 3 * 48 * 32 * 4); // gate + up + down, f32 on the device
 * ```
 * @module
 */
import { bf16ToF32, f16ToF32, f32ToF16 } from "../io/dtype_convert.ts";
import { ShardedCheckpoint } from "../io/sharded.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import { asDenseExperts } from "../nn/experts.ts";
import type { SparseMoE } from "../nn/sparse_moe.ts";
import { parseModelConfig } from "../models/config.ts";
import type { ModelConfig } from "../models/config.ts";
import { readHfConfig } from "../models/load.ts";
import { checkpointTensors } from "../models/weights.ts";

/** One projection of an expert. */
export type ExpertProj = "gate" | "up" | "down";

/** The three projections in the order a whole expert is packed and uploaded. */
export const EXPERT_PROJS: readonly ExpertProj[] = ["gate", "up", "down"];

type Stored = { dtype: "F32"; data: Float32Array } | { dtype: "F16" | "BF16"; data: Uint16Array };

/** One channel-major matrix: gate rows, or down transposed (`[F, C]` both). */
export type ChannelMajor = "gate" | "downT";

/** How experts are stored on the device: f32 values or IEEE halves. */
export type ExpertDType = "f32" | "f16";

/** A staging array of the device dtype: `Float32Array` for f32, `Uint16Array` (half bits) for f16. */
export type Staging = Float32Array | Uint16Array;

/** Options of {@link HostExperts.fromCheckpoint}. */
export interface HostExpertsOptions {
  /** The device storage of the experts (default f32). */
  deviceDType?: ExpertDType;
  /** Read the config only, no expert values (sizes for planning; `pack` then throws). */
  metadataOnly?: boolean;
}

/** Options of {@link HostExperts.fromModel}. */
export interface HostExpertsFromModelOptions {
  /** The device storage of the experts (default f32). */
  deviceDType?: ExpertDType;
  /** Host storage (default: f16 for an f16/bf16 checkpoint, f32 otherwise). */
  hostDType?: ExpertDType;
  /** The projections to read (default all three; FloE's quality path needs gate and down only). */
  projs?: readonly ExpertProj[];
}

/** Whole experts of every MoE layer, in host memory. */
export class HostExperts {
  readonly config: ModelConfig;
  /** MoE layers, ascending. */
  readonly layers: readonly number[];
  readonly numExperts: number;
  readonly hidden: number;
  readonly intermediate: number;
  /** Bytes held in host memory (the checkpoint's dtype). */
  readonly hostBytes: number;
  /** The experts' storage dtype on the device. */
  readonly deviceDType: ExpertDType;
  /** The checkpoint folder (undefined when read from a loaded model). */
  readonly dir: string | undefined;
  readonly #w: Map<string, Stored>;

  private constructor(
    dir: string | undefined,
    config: ModelConfig,
    w: Map<string, Stored>,
    hostBytes: number,
    deviceDType: ExpertDType,
  ) {
    this.dir = dir;
    this.deviceDType = deviceDType;
    this.config = config;
    this.layers = config.moeLayers.flatMap((m, i) => m ? [i] : []);
    this.numExperts = config.numExperts;
    this.hidden = config.hidden;
    this.intermediate = config.moeIntermediate;
    this.hostBytes = hostBytes;
    this.#w = w;
  }

  /**
   * Reads every routed expert of the checkpoint folder `dir` into host memory.
   *
   * @throws {TypeError} when the model has no MoE layers, or f16 is asked for an odd hidden size
   * @throws {FormatError} when the checkpoint is malformed or lacks an expert tensor
   */
  static async fromCheckpoint(dir: string, options: HostExpertsOptions = {}): Promise<HostExperts> {
    const deviceDType = options.deviceDType ?? "f32";
    const config = parseModelConfig(await readHfConfig(dir));
    if (deviceDType === "f16" && config.hidden % 2 !== 0) {
      throw new TypeError(
        `Cannot keep the experts of ${dir} at f16 on the device: the hidden size ${config.hidden} is odd, so ` +
          "rows would not start on 4-byte words; use f32",
      );
    }
    if (!config.moeLayers.some((m) => m)) {
      throw new TypeError(
        `Cannot offload experts of ${dir}: the model (${config.modelType}) has no MoE layers; ` +
          "pass a MoE checkpoint (mixtral, qwen2_moe, qwen3_moe, olmoe)",
      );
    }
    using ckpt = await ShardedCheckpoint.open(dir);
    const w = new Map<string, Stored>();
    let bytes = 0;
    for (const t of checkpointTensors(config)) {
      if (t.expert === undefined || options.metadataOnly) continue;
      const layer = Number(/^model\.layers\.(\d+)\./.exec(t.param)![1]);
      const proj: ExpertProj = t.param.endsWith("gate_proj")
        ? "gate"
        : t.param.endsWith("up_proj")
        ? "up"
        : "down";
      const raw = await ckpt.read(t.hfName);
      const copy = raw.data.slice(); // own, aligned buffer
      const stored: Stored = raw.dtype === "F32"
        ? { dtype: "F32", data: new Float32Array(copy.buffer) }
        : raw.dtype === "F16" || raw.dtype === "BF16"
        ? { dtype: raw.dtype, data: new Uint16Array(copy.buffer) }
        : (() => {
          throw new TypeError(
            `Cannot offload ${t.hfName} of ${dir}: expected F32, F16 or BF16, received ${raw.dtype}`,
          );
        })();
      bytes += copy.byteLength;
      w.set(key(layer, t.expert, proj), stored);
    }
    return new HostExperts(dir, config, w, bytes, deviceDType);
  }

  /**
   * Reads every MoE layer's dense experts of a loaded model back from its device (FloE's quality
   * path, where the model on the device is the source of truth).
   *
   * @throws {TypeError} for a model without MoE layers or whose experts are not dense
   */
  static async fromModel(model: CausalLM, options: HostExpertsFromModelOptions = {}): Promise<HostExperts> {
    if (model.moeLayers.length === 0) {
      throw new TypeError(
        `Cannot read experts into host memory: the model (${model.config.modelType}) has no MoE layers; ` +
          "FloE and offloading need a MoE model",
      );
    }
    const ckpt = String(model.hfConfig.torch_dtype ?? "float32");
    const half = (options.hostDType ?? (ckpt === "float16" || ckpt === "bfloat16" ? "f16" : "f32")) === "f16";
    const w = new Map<string, Stored>();
    let bytes = 0;
    for (const l of model.moeLayers) {
      const experts = asDenseExperts(
        (model.layers[l].mlp as SparseMoE).experts,
        "read experts into host memory",
      );
      for (const proj of options.projs ?? EXPERT_PROJS) {
        const t = proj === "gate" ? experts.gateProj : proj === "up" ? experts.upProj : experts.downProj;
        const all = await t.toArray() as Float32Array; // [E, F, C] (down: [E, C, F])
        const n = all.length / experts.numExperts;
        for (let e = 0; e < experts.numExperts; e++) {
          const m = all.slice(e * n, (e + 1) * n);
          const stored: Stored = half ? { dtype: "F16", data: f32ToF16(m) } : { dtype: "F32", data: m };
          bytes += stored.data.byteLength;
          w.set(key(l, e, proj), stored);
        }
      }
    }
    return new HostExperts(undefined, model.config, w, bytes, options.deviceDType ?? "f32");
  }

  /**
   * One matrix of one expert as f32: gate and up `[F, C]`, down `[C, F]`, downT `[F, C]`.
   *
   * @throws {RangeError} on a layer without experts or an expert outside `0..E-1`
   */
  matrix(layer: number, expert: number, which: ExpertProj | "downT"): Float32Array {
    const s = which === "downT" ? this.#transposedDown(layer, expert) : this.#stored(layer, expert, which);
    return s.dtype === "F32" ? s.data.slice() : s.dtype === "F16" ? f16ToF32(s.data) : bf16ToF32(s.data);
  }

  /** Values of one projection (`F·C`). */
  matrixValues(): number {
    return this.intermediate * this.hidden;
  }

  /** Values of one whole expert (`3·F·C`). */
  expertValues(): number {
    return 3 * this.matrixValues();
  }

  /** Bytes per value on the device (4 for f32, 2 for f16). */
  get bytesPerValue(): 2 | 4 {
    return this.deviceDType === "f16" ? 2 : 4;
  }

  /** A staging array of `n` values in the device dtype. */
  staging(n: number): Staging {
    return this.deviceDType === "f16" ? new Uint16Array(n) : new Float32Array(n);
  }

  /** Device bytes of one whole expert in the device dtype (what one upload of it moves). */
  expertBytes(): number {
    return this.bytesPerValue * this.expertValues();
  }

  /** Device bytes of every expert in the device dtype. */
  totalDeviceBytes(): number {
    return this.layers.length * this.numExperts * this.expertBytes();
  }

  /**
   * Writes one projection of one expert into `out` at `offset` (values), as f32 values
   * (`Float32Array`) or half bits (`Uint16Array`): gate and up as `[F, C]`, down as `[C, F]`.
   *
   * @throws {RangeError} on a layer without experts, an expert outside `0..E-1`, or too small an `out`
   */
  pack(layer: number, expert: number, proj: ExpertProj, out: Staging, offset = 0): void {
    const s = this.#stored(layer, expert, proj);
    const n = this.matrixValues();
    if (offset + n > out.length) {
      throw new RangeError(
        `Cannot pack expert ${expert} of layer ${layer}: ${out.length - offset} values left, ${n} needed`,
      );
    }
    out.set(convert(s, s.data, out), offset);
  }

  /**
   * Writes the channel-major rows of `channels` (in the given order) into `out` at `offset`
   * (values; f32 or half bits as in {@link pack}), `C` values per channel: FloE's packed transfer (A.6). `"gate"` rows are the gate
   * matrix's rows; `"downT"` rows are down's columns, from a transposed copy made on first use
   * (kept in the checkpoint's dtype).
   *
   * @throws {RangeError} on a channel outside `0..F-1` or too small an `out`
   */
  packRows(
    layer: number,
    expert: number,
    which: ChannelMajor,
    channels: ArrayLike<number>,
    out: Staging,
    offset = 0,
  ): void {
    const { hidden: C, intermediate: F } = this;
    const s = which === "gate" ? this.#stored(layer, expert, "gate") : this.#transposedDown(layer, expert);
    if (offset + channels.length * C > out.length) {
      throw new RangeError(
        `Cannot pack ${channels.length} rows of expert ${expert}: ${out.length - offset} values left`,
      );
    }
    for (let j = 0; j < channels.length; j++) {
      const f = channels[j];
      if (!(Number.isInteger(f) && f >= 0 && f < F)) {
        throw new RangeError(`Cannot pack expert rows: channel ${f} is outside 0..${F - 1}`);
      }
      out.set(convert(s, s.data.subarray(f * C, (f + 1) * C), out), offset + j * C);
    }
  }

  #stored(layer: number, expert: number, proj: ExpertProj): Stored {
    const s = this.#w.get(key(layer, expert, proj));
    if (!s && this.hostBytes === 0) {
      throw new RangeError(
        `Cannot read expert ${expert} of layer ${layer}: the store was opened with metadataOnly (sizes only); ` +
          "open it without that option to read experts",
      );
    }
    if (!s) {
      throw new RangeError(
        `Cannot read expert ${expert} of layer ${layer} (${proj}): the store holds MoE layers [${this.layers}] ` +
          `with ${this.numExperts} experts each, and only the projections it was read with`,
      );
    }
    return s;
  }

  /** `[F, C]` down transposed, cached. */
  #transposedDown(layer: number, expert: number): Stored {
    const k = `${key(layer, expert, "down")}T`;
    let t = this.#w.get(k);
    if (!t) {
      const d = this.#stored(layer, expert, "down"); // [C, F]
      const { hidden: C, intermediate: F } = this;
      const data = d.dtype === "F32" ? new Float32Array(F * C) : new Uint16Array(F * C);
      for (let c = 0; c < C; c++) for (let f = 0; f < F; f++) data[f * C + c] = d.data[c * F + f];
      t = { dtype: d.dtype, data } as Stored;
      this.#w.set(k, t);
    }
    return t;
  }
}

const key = (layer: number, expert: number, proj: ExpertProj) => `${layer}.${expert}.${proj}`;

/** `run` (a part of `s.data`) in the dtype of `out`: f32 values or half bits (an F16 run as is). */
function convert(s: Stored, run: Float32Array | Uint16Array, out: Staging): Staging {
  const f32 = () =>
    s.dtype === "F32"
      ? run as Float32Array
      : s.dtype === "F16"
      ? f16ToF32(run as Uint16Array)
      : bf16ToF32(run as Uint16Array);
  if (out instanceof Float32Array) return f32();
  return s.dtype === "F16" ? run as Uint16Array : f32ToF16(f32());
}
