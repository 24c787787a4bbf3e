/**
 * `ExpertSlots`: `S` whole experts on the device, stacked as dense `SwiGLUExperts` (gate
 * `[S, F, C]`, up `[S, F, C]`, down `[S, C, F]`, f32 or f16) under one ledger category, and the expert
 * compute over them: the routing's expert ids are mapped to slot ids on the host and the stacked
 * `gatherMatmul` runs as for a resident layer, so an expert computes the same numbers in a slot as
 * in the model's own stack.
 *
 * Legend: `T` tokens, `K` experts per token, `S` slots, `C` hidden, `F` expert width.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { ExpertSlots } from "./slots.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using slots = new ExpertSlots(device, { slots: 2, hidden: 4, intermediate: 6, category: "cache" });
 * assert.equal(device.ledger.current("cache"), slots.bytes);
 * const x = Tensor.fromArray(device, new Float32Array(8).fill(1), [2, 4]); // [T=2, C]
 * const w = Tensor.fromArray(device, new Float32Array([1, 0, 0.5, 0.5]), [2, 2], { dtype: "f32" }); // [T, K=2]
 * const y = slots.forward(x, Int32Array.of(0, 1, 1, 0), w); // [T, C]: zero weights give zeros
 * assert.deepEqual(Array.from(await y.toArray()), new Array(8).fill(0));
 * ```
 * @module
 */
import type { Device } from "../device/device.ts";
import type { MemoryCategory } from "../device/ledger.ts";
import { SwiGLUExperts } from "../nn/experts.ts";
import { mul } from "../ops/elementwise.ts";
import { Tensor } from "../tensor/tensor.ts";
import type { ExpertDType } from "./host_experts.ts";
import type { SlotTensors } from "./transfer.ts";

/** Sizes of an {@link ExpertSlots}. */
export interface ExpertSlotsOptions {
  slots: number;
  hidden: number;
  intermediate: number;
  /** Ledger category of the slot memory (`experts` resident, `cache` cached, `staging` streamed). */
  category: MemoryCategory;
  /** Storage of the weights (default f32; f16 halves the bytes, the kernels widen in registers). */
  dtype?: ExpertDType;
}

/** `S` device slots of whole experts. Owns its tensors. */
export class ExpertSlots implements SlotTensors {
  readonly slots: number;
  readonly gate: Tensor;
  readonly up: Tensor;
  readonly down: Tensor;
  readonly #experts: SwiGLUExperts;

  /** @throws {OutOfBudgetError} when the slots do not fit the device's budget */
  constructor(
    device: Device,
    { slots: S, hidden: C, intermediate: F, category, dtype = "f32" }: ExpertSlotsOptions,
  ) {
    if (!(Number.isInteger(S) && S >= 1)) {
      throw new RangeError(`Cannot create expert slots: slots must be a positive integer: received ${S}`);
    }
    this.slots = S;
    const made: Tensor[] = [];
    try {
      const t = (shape: number[], label: string) => {
        const x = Tensor.empty(device, shape, { category, label, dtype });
        made.push(x);
        return x;
      };
      this.gate = t([S, F, C], "slots.gate");
      this.up = t([S, F, C], "slots.up");
      this.down = t([S, C, F], "slots.down");
    } catch (err) {
      for (const x of made) x.dispose();
      throw err;
    }
    this.#experts = new SwiGLUExperts(this.gate, this.up, this.down);
  }

  /** Device bytes of one slot (a whole expert in `dtype`, default f32). */
  static slotBytes(hidden: number, intermediate: number, dtype: ExpertDType = "f32"): number {
    return 3 * hidden * intermediate * (dtype === "f16" ? 2 : 4);
  }

  /** Device bytes of every slot. */
  get bytes(): number {
    return this.gate.storage.bytes + this.up.storage.bytes + this.down.storage.bytes;
  }

  /**
   * `[T, C]`: `Σ_k weights[t,k] · expert in slot slotIdx[t,k] (x_t)`.
   *
   * @param x `[T, C]` the MoE input
   * @param slotIdx `[T·K]` host slot ids, row-major `[T, K]`
   * @param weights `[T, K]` routing weights
   * @param mask `[T·K]` host 0/1: which pairs this call covers (others contribute nothing); all when omitted
   */
  forward(x: Tensor, slotIdx: Int32Array, weights: Tensor<"f32">, mask?: Float32Array): Tensor<"f32"> {
    const [T, K] = weights.shape;
    using idx = Tensor.fromArray(x.device, slotIdx, [T, K], { dtype: "i32" }); // [T, K]
    if (!mask) return this.#experts.forward({ layer: -1, x, selected: idx, weights }); // [T, C]
    using m = Tensor.fromArray(x.device, mask, [T, K]); // [T, K]
    using w = mul(weights, m); // [T, K]
    return this.#experts.forward({ layer: -1, x, selected: idx, weights: w }); // [T, C]
  }

  dispose(): void {
    this.#experts.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
