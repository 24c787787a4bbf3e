/**
 * `floe`: FloE's runtime (Zhou et al., ICML 2025, https://arxiv.org/abs/2505.05950; ALGORITHMS.md
 * A.4–A.6). Resident on the device: every sparse layer's up projection (HQQ at `upBits`, or exact
 * at 16) and the dense layers' whole experts (the first MoE layer by default). Streamed: only the
 * gate and transposed-down rows of the kept channels, into two ping-pong buffers of `K` slots.
 *
 * Decode step of MoE layer `i` (one readback): the routing of `i`, the up activations of every
 * expert of `i` (for misses), and, when `i+1` is sparse, layer `i+1`'s router and up projections
 * applied to layer `i`'s input (next-router reuse and the up-reuse channel predictor). Then
 * - each routed expert of `i` that was prefetched computes from its rows; with
 *   `channels: "exact"` the channels of the exact top-k that the prediction missed are reloaded
 *   first (so the result equals FloE's sparse experts, `FloeExperts` in topk mode);
 * - a routed expert that was not prefetched is a miss: its exact top-k rows are reloaded;
 * - the predicted experts of `i+1` and their predicted channels are uploaded into the other buffer.
 *
 * Channels are the fixed `k = ⌊(1−s)·F⌋` of the runtime (A.3's fixed-k variant), chosen on the host
 * with the same rule as the sparse kernel. Prefill streams each routed expert's rows in chunks
 * through the two buffers (all channels with `prefill: "dense"`, FloE's prefill).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../../device/create_device.ts";
 * import { openOffloadRuntime } from "../runtime.ts";
 * import { FloePolicy } from "./floe.ts";
 * const device = await createDevice({ backend: "cpu" });
 * const policy = new FloePolicy({ sparsity: 0.5, upBits: 4, groupSize: 16 });
 * using rt = await openOffloadRuntime("test/fixtures/models/mixtral-top2-f32", { device, budgetBytes: 2 ** 22, policy, maxSeq: 12 });
 * const { report } = await rt.generate([1, 5, 9], { maxNewTokens: 4 });
 * assert.equal(report.policyInfo.keptChannels, 24); // ⌊(1 − 0.5) · 48⌋ rows of gate and down per expert
 * assert.ok(report.bytesPerToken <= 4 * 2 * 24 * 32 * 4); // ≤ 2 prefetched + 2 reloaded experts: gate and down rows
 * ```
 * @module
 */
import { Linear } from "../../nn/linear.ts";
import type { LinearLike } from "../../nn/linear_like.ts";
import { QuantizedLinear } from "../../nn/quantized_linear.ts";
import { gatherCols } from "../../ops/gather.ts";
import { keptChannelCount, keptChannels } from "../../ops/sparse_expert.ts";
import { type QuantBits, type QuantizedTensor, wordsPerRow } from "../../tensor/quantized_tensor.ts";
import { Tensor } from "../../tensor/tensor.ts";
import type { ExpertPredictor } from "../../predictors/expert_predictor.ts";
import type { HostExperts } from "../host_experts.ts";
import type { MoeStep, PolicyContext, StepPolicy } from "../policy.ts";
import { quantizeExperts } from "../quant_cache.ts";
import { ExpertSlots } from "../slots.ts";
import type { TransferEngine } from "../transfer.ts";
import { floeReadback, hostTopK } from "./floe_readback.ts";
import { addInto, sparseFromRows } from "./floe_rows.ts";

/** Options of {@link FloePolicy}. */
export interface FloePolicyOptions {
  /** Target sparsity `s` in `[0, 1)`. */
  sparsity: number;
  /** Up projection bits: 2, 3, 4 (HQQ) or 16 (exact). Default 2. */
  upBits?: 2 | 3 | 4 | 16;
  /** HQQ group size along the hidden size (default 64). */
  groupSize?: number;
  /** MoE layers kept dense and resident (default: the first MoE layer). */
  denseLayers?: readonly number[];
  /** `"predicted"` (FloE's runtime, default) or `"exact"` (reload the channels the prediction missed). */
  channels?: "predicted" | "exact";
  /** Prefill channels: `"dense"` (default, FloE's) or `"sparse"` (the decode rule on every token). */
  prefill?: "dense" | "sparse";
  /** Predicts layer `i+1`'s experts from layer `i`'s MoE input (default: layer `i+1`'s router, A.5). */
  predictor?: ExpertPredictor;
  /** A folder keeping the HQQ up projections between runs (`quant_cache.ts`; default: quantize every run). */
  quantCache?: string;
}

interface Buffer {
  gate: Tensor[];
  downT: Tensor[];
  /** Per slot: expert and the channels its rows hold, in row order. */
  held: ({ expert: number; channels: number[] } | undefined)[];
  layer: number;
}

/** FloE's offload policy. */
export class FloePolicy implements StepPolicy {
  readonly name = "floe" as const;
  readonly options: Required<Omit<FloePolicyOptions, "denseLayers" | "predictor" | "quantCache">> & {
    denseLayers?: readonly number[];
    quantCache?: string;
  };
  readonly #predictor: ExpertPredictor | undefined;
  #dense = new Map<number, ExpertSlots>();
  #up = new Map<number, LinearLike[]>();
  #buffers: Buffer[] = [];
  #cur = 0;
  #transfers: TransferEngine | undefined;
  #k = 0;
  #rows = 0;

  constructor(options: FloePolicyOptions) {
    const { sparsity, upBits = 2, groupSize = 64, channels = "predicted", prefill = "dense" } = options;
    if (!(sparsity >= 0 && sparsity < 1)) {
      throw new RangeError(`Cannot create the floe policy: sparsity must be in [0, 1): received ${sparsity}`);
    }
    this.options = {
      sparsity,
      upBits,
      groupSize,
      channels,
      prefill,
      denseLayers: options.denseLayers,
      quantCache: options.quantCache,
    };
    this.#predictor = options.predictor;
  }

  /** MoE layers kept dense. */
  denseLayers(store: HostExperts): readonly number[] {
    return this.options.denseLayers ?? store.layers.slice(0, 1);
  }

  minimumBytes(store: HostExperts): number {
    const { hidden: C, intermediate: F, numExperts: E } = store;
    const bits = this.options.upBits;
    const upBytes = bits === 16
      ? F * C * store.bytesPerValue
      : F * wordsPerRow(C, bits as QuantBits) * 4 + F * (C / this.options.groupSize) * 4;
    const dense = this.denseLayers(store).length;
    const sparse = store.layers.length - dense;
    const rows = this.#rowsFor(store);
    const buffers = 2 * store.config.topK * 2 * rows * C * store.bytesPerValue;
    return sparse * E * upBytes + dense * E * store.expertBytes() + buffers;
  }

  /** One f32 up projection while it is quantized, or one staged projection of a dense layer's expert. */
  setupScratchBytes(store: HostExperts): number {
    const quantizing = this.options.upBits === 16 ? 0 : store.intermediate * store.hidden * 4;
    return Math.max(quantizing, store.matrixValues() * store.bytesPerValue);
  }

  /** One expert's gate and down rows (a buffer slot's worth). */
  maxTransferBytes(store: HostExperts): number {
    return 2 * this.#rowsFor(store) * store.hidden * store.bytesPerValue;
  }

  plannedBytes(store: HostExperts): number {
    return this.minimumBytes(store);
  }

  async setup({ device, store, transfers }: PolicyContext): Promise<void> {
    const { hidden: C, intermediate: F, numExperts: E } = store;
    const K = store.config.topK;
    this.#transfers = transfers;
    this.#k = keptChannelCount(F, this.options.sparsity);
    this.#rows = this.#rowsFor(store);
    const C4 = this.options.upBits !== 16 && C % this.options.groupSize !== 0;
    if (C4) {
      throw new RangeError(
        `Cannot set the floe policy up: group size ${this.options.groupSize} must divide the hidden size ${C}`,
      );
    }
    for (let b = 0; b < 2; b++) {
      const t = (label: string) =>
        Tensor.empty(device, [this.#rows, C], { category: "staging", label, dtype: store.deviceDType });
      this.#buffers.push({
        gate: Array.from({ length: K }, () => t("floe.buffer.gate")),
        downT: Array.from({ length: K }, () => t("floe.buffer.downT")),
        held: new Array(K).fill(undefined),
        layer: -1,
      });
    }
    const dense = this.denseLayers(store);
    const packedUp = this.options.upBits === 16 ? undefined : await quantizeExperts(device, store, {
      bits: this.options.upBits,
      groupSize: this.options.groupSize,
      projs: ["up"],
      layers: store.layers.filter((l) => !dense.includes(l)),
    }, { cacheDir: this.options.quantCache });
    for (const l of store.layers) {
      if (dense.includes(l)) {
        const slots = new ExpertSlots(device, {
          slots: E,
          hidden: C,
          intermediate: F,
          category: "experts",
          dtype: store.deviceDType,
        });
        this.#dense.set(l, slots);
        for (let e = 0; e < E; e++) transfers.uploadExpert(l, e, slots, e, "resident");
        continue;
      }
      const ups: LinearLike[] = [];
      for (let e = 0; e < E; e++) {
        if (this.options.upBits === 16) { // exact up, in the device dtype
          const exact = store.staging(F * C);
          store.pack(l, e, "up", exact);
          const opts = { category: "experts", label: "floe.up", dtype: store.deviceDType } as const;
          ups.push(new Linear(Tensor.fromArray(device, exact, [F, C], opts))); // [F, C]
          continue;
        }
        const h = packedUp!.packed.get(`${l}.${e}.up`)!;
        const u32 = (data: Uint32Array, label: string) =>
          Tensor.fromArray(device, data, [data.length], { dtype: "u32", category: "experts", label });
        const q = { ...h.layout, codes: u32(h.codes, "floe.up.codes"), meta: u32(h.meta, "floe.up.meta") };
        device.submit(); // upload staging lives for one expert's codes at most
        ups.push(new QuantizedLinear(q as QuantizedTensor)); // [F, C] packed
      }
      this.#up.set(l, ups);
    }
  }

  /** One MoE layer's step: see the module doc. */
  async step(s: MoeStep): Promise<Tensor<"f32">> {
    const { layer: i, moe, x } = s;
    const [T] = x.shape;
    const K = moe.config.topK;
    const up = this.#up.get(i);
    const nextUp = s.next && T === 1 ? this.#up.get(s.next.layer) : undefined;
    const r = moe.route(x); // [T, E], [T, K], [T, K]
    using _l = r.routerLogits;
    using selected = r.selected;
    using weights = r.weights;
    const vs = up?.map((u) => u.forward(x)) ?? []; // E × [T, F]
    try {
      const next = s.next;
      const scores = () => this.#predictor?.predict(next!.layer, x) ?? next!.moe.router.forward(x); // [T, E]
      const host = await floeReadback(s.clock, r.routerLogits, vs, nextUp && { scores, up: nextUp }, x);
      const sel = hostTopK(host.logits, moe.numExperts, K);
      const needed = [...new Set(sel)].sort((a, b) => a - b);
      let y: Tensor<"f32">;
      if (!up) {
        const slots = this.#dense.get(i)!;
        s.count(needed.length, needed.length);
        y = slots.forward(x, sel, weights);
      } else if (T > 1) {
        y = await this.#prefill(s, i, x, vs, selected, weights, needed);
      } else {
        y = this.#decode(s, i, x, vs, host.v!, selected, weights, needed);
      }
      if (nextUp) this.#prefetch(s.next!.layer, host, moe.numExperts, K);
      return y;
    } finally {
      for (const v of vs) v.dispose();
    }
  }

  describe(): Record<string, string | number> {
    const o = this.options;
    return {
      upBits: o.upBits,
      sparsity: o.sparsity,
      keptChannels: this.#k,
      channels: o.channels,
      bufferRows: this.#rows,
      predictor: this.#predictor?.kind ?? "router-reuse",
    };
  }

  dispose(): void {
    for (const s of this.#dense.values()) s.dispose();
    for (const u of this.#up.values()) for (const l of u) l.dispose();
    for (const b of this.#buffers) for (const t of [...b.gate, ...b.downT]) t.dispose();
    this.#dense.clear();
    this.#up.clear();
    this.#buffers = [];
  }

  /** Rows of a buffer slot: the kept channels, twice that with exact channels (prefetched + missed). */
  #rowsFor(store: HostExperts): number {
    const k = keptChannelCount(store.intermediate, this.options.sparsity);
    return Math.max(1, Math.min(store.intermediate, this.options.channels === "exact" ? 2 * k : k));
  }

  /** Decode: hits from the current buffer, reloads for misses (and missed channels when exact). */
  #decode(
    s: MoeStep,
    i: number,
    x: Tensor,
    vs: Tensor[],
    vHost: Float32Array,
    selected: Tensor,
    weights: Tensor,
    needed: number[],
  ): Tensor<"f32"> {
    const buf = this.#buffers[this.#cur];
    const F = vs[0].shape[1];
    const exact = (e: number) => keptChannels(vHost, e * F, F, { mode: "topk", k: this.#k });
    const prefetched = buf.layer === i ? buf.held : [];
    const free = [...Array(buf.held.length).keys()].filter((j) =>
      !needed.includes(prefetched[j]?.expert ?? -1)
    );
    let hits = 0;
    let y: Tensor<"f32"> | undefined;
    for (const e of needed) {
      let slot = prefetched.findIndex((h) => h?.expert === e);
      let channels: number[];
      if (slot >= 0) {
        hits++;
        channels = prefetched[slot]!.channels;
        if (this.options.channels === "exact") {
          const have = new Set(channels);
          const missing = exact(e).filter((c) => !have.has(c));
          this.#transfers!.uploadRows(i, e, missing, this.#slot(buf, slot), channels.length, "reload");
          channels = [...channels, ...missing];
        }
      } else {
        slot = free.shift()!;
        channels = exact(e);
        this.#transfers!.uploadRows(i, e, channels, this.#slot(buf, slot), 0, "reload");
      }
      buf.held[slot] = { expert: e, channels };
      const ye = this.#compute(x, vs[e], buf, slot, channels, selected, weights, e);
      y = y ? addInto(y, ye) : ye;
    }
    buf.layer = -1; // consumed
    s.count(needed.length, hits);
    this.#cur = 1 - this.#cur;
    return y!;
  }

  /** Prefill: every routed expert's channels streamed in chunks of buffer rows, both buffers in turn. */
  async #prefill(
    s: MoeStep,
    i: number,
    x: Tensor,
    vs: Tensor[],
    selected: Tensor,
    weights: Tensor,
    needed: number[],
  ): Promise<Tensor<"f32">> {
    const F = vs[0].shape[1];
    const sel = this.options.prefill === "dense"
      ? { mode: "topk" as const, k: F }
      : { mode: "topk" as const, k: this.#k };
    let y: Tensor<"f32"> | undefined;
    let n = 0;
    for (const e of needed) {
      for (let f0 = 0; f0 < F; f0 += this.#rows) {
        if (n > 0 && n % 2 === 0) await s.clock.flush(); // both buffers hold work not yet run
        const buf = this.#buffers[n++ % 2];
        const rows = Math.min(this.#rows, F - f0);
        const channels = Array.from({ length: rows }, (_, j) => f0 + j);
        this.#transfers!.uploadRows(i, e, channels, this.#slot(buf, 0), 0, "demand");
        const ye = sparseFromRows(this.#slot(buf, 0), rows, {
          x,
          v: vs[e],
          selected,
          weights,
          expert: e,
          channelOffset: f0,
        }, sel); // [T, C]
        y = y ? addInto(y, ye) : ye;
      }
    }
    s.count(needed.length, 0);
    for (const b of this.#buffers) b.layer = -1;
    return y!;
  }

  /** Uploads layer `next`'s predicted experts and channels into the other buffer. */
  #prefetch(
    next: number,
    host: { nextLogits?: Float32Array; nextV?: Float32Array },
    E: number,
    K: number,
  ): void {
    const buf = this.#buffers[this.#cur];
    const F = host.nextV!.length / E;
    const experts = [...new Set(hostTopK(host.nextLogits!, E, K))];
    buf.layer = next;
    buf.held.fill(undefined);
    experts.forEach((e, slot) => {
      const channels = keptChannels(host.nextV!, e * F, F, { mode: "topk", k: this.#k });
      this.#transfers!.uploadRows(next, e, channels, this.#slot(buf, slot), 0, "prefetch");
      buf.held[slot] = { expert: e, channels };
    });
  }

  #slot(buf: Buffer, slot: number) {
    return { gate: buf.gate[slot], downT: buf.downT[slot] };
  }

  /** `w · expert_e(x)` from the rows of `channels` held in `slot`. */
  #compute(
    x: Tensor,
    v: Tensor,
    buf: Buffer,
    slot: number,
    channels: number[],
    selected: Tensor,
    weights: Tensor,
    e: number,
  ): Tensor<"f32"> {
    const m = channels.length;
    using idx = Tensor.fromArray(x.device, Int32Array.from(channels), [m], { dtype: "i32" }); // [m]
    using vSel = gatherCols(v, idx); // [T, F] -> [T, m]
    const k = this.options.channels === "exact" ? Math.min(this.#k, m) : m;
    return sparseFromRows(this.#slot(buf, slot), m, { x, v: vSel, selected, weights, expert: e }, {
      mode: "topk",
      k,
    }); // [T, C]
  }
}
