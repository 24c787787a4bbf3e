/**
 * Quantized whole experts for the `cached` policy, as mixtral-offloading keeps them (ALGORITHMS.md
 * C.1: HQQ experts, 2-bit group 16 in its demo): {@link quantizeHostExperts} quantizes every
 * expert's gate, up and down once with HQQ (on the device, one matrix at a time, read back to the
 * host; kept on disk when given a cache folder: `quant_cache.ts`), and {@link QuantSlots} holds `S` device slots of packed codes and metadata (ledger category
 * `cache`) computing each routed expert with the packed kernels (`qgemv` / `qmatmul` through
 * `QuantizedLinear`), weighted by its routing weights.
 *
 * Legend: `T` tokens, `K` experts per token, `S` slots, `C` hidden, `F` expert width.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { HostExperts } from "./host_experts.ts";
 * import { packedExpertBytes } from "./policies/cached.ts";
 * import { quantizeHostExperts } from "./quant_slots.ts";
 * const device = await createDevice({ backend: "cpu" });
 * const store = await HostExperts.fromCheckpoint("test/fixtures/models/mixtral-top2-f32");
 * const q = await quantizeHostExperts(device, store, 4, 16);
 * assert.equal(q.expertBytes, packedExpertBytes(store.hidden, store.intermediate, 4, 16));
 * ```
 * @module
 */
import type { Device } from "../device/device.ts";
import { QuantizedLinear } from "../nn/quantized_linear.ts";
import { add, mul, siluMul } from "../ops/elementwise.ts";
import { matmul } from "../ops/matmul.ts";
import type { QuantizedTensor } from "../tensor/quantized_tensor.ts";
import { Tensor } from "../tensor/tensor.ts";
import { EXPERT_PROJS, type ExpertProj, type HostExperts } from "./host_experts.ts";
import { type HostPacked, type QuantCacheOptions, quantizeExperts } from "./quant_cache.ts";

export type { HostPacked } from "./quant_cache.ts";

/** Every expert quantized, by `layer.expert.proj`. */
export interface QuantizedExperts {
  bits: 2 | 4;
  groupSize: number;
  packed: Map<string, HostPacked>;
  /** Bytes of one packed expert (codes and metadata of its three matrices). */
  expertBytes: number;
}

/**
 * HQQ-quantizes every expert of `store` (groups along each matrix's input features), reading what
 * the cache of `options.cacheDir` already holds ({@link quantizeExperts}).
 *
 * @throws {RangeError} when `groupSize` does not divide the hidden size and the expert width
 */
export async function quantizeHostExperts(
  device: Device,
  store: HostExperts,
  bits: 2 | 4,
  groupSize: number,
  options: QuantCacheOptions = {},
): Promise<QuantizedExperts> {
  const { hidden: C, intermediate: F } = store;
  if (C % groupSize !== 0 || F % groupSize !== 0) {
    throw new RangeError(
      `Cannot quantize the cached experts: group size ${groupSize} must divide the hidden size ${C} and the ` +
        `expert width ${F}; pick a common divisor`,
    );
  }
  const { packed } = await quantizeExperts(device, store, { bits, groupSize, projs: EXPERT_PROJS }, options);
  const first = store.layers[0];
  const expertBytes = EXPERT_PROJS.reduce((s, p) => {
    const h = packed.get(`${first}.0.${p}`)!;
    return s + h.codes.byteLength + h.meta.byteLength;
  }, 0);
  return { bits, groupSize, packed, expertBytes };
}

/** `S` device slots of packed experts. Owns its tensors. */
export class QuantSlots {
  readonly slots: number;
  readonly #linears: Map<ExpertProj, QuantizedLinear>[] = [];
  readonly #tensors: Tensor[] = [];
  readonly #q: QuantizedExperts;

  /** @throws {OutOfBudgetError} when the slots do not fit the device's budget */
  constructor(device: Device, q: QuantizedExperts, slots: number, store: HostExperts) {
    this.slots = slots;
    this.#q = q;
    try {
      for (let s = 0; s < slots; s++) {
        const m = new Map<ExpertProj, QuantizedLinear>();
        for (const p of EXPERT_PROJS) {
          const t = q.packed.get(`${store.layers[0]}.0.${p}`)!;
          const codes = Tensor.empty(device, [t.codes.length], {
            dtype: "u32",
            category: "cache",
            label: "slot.codes",
          });
          this.#tensors.push(codes);
          const meta = Tensor.empty(device, [t.meta.length], {
            dtype: "u32",
            category: "cache",
            label: "slot.meta",
          });
          this.#tensors.push(meta);
          m.set(p, new QuantizedLinear({ ...t.layout, codes, meta } as QuantizedTensor));
        }
        this.#linears.push(m);
      }
    } catch (err) {
      this.dispose();
      throw err;
    }
  }

  /** The writes that put (layer, expert) into `slot`: codes and metadata of each matrix. */
  writes(layer: number, expert: number, slot: number): { storage: Tensor["storage"]; data: Uint32Array }[] {
    const out: { storage: Tensor["storage"]; data: Uint32Array }[] = [];
    for (const p of EXPERT_PROJS) {
      const h = this.#q.packed.get(`${layer}.${expert}.${p}`)!;
      const w = this.#linears[slot].get(p)!.weight;
      out.push({ storage: w.codes.storage, data: h.codes }, { storage: w.meta.storage, data: h.meta });
    }
    return out;
  }

  /**
   * `[T, C]`: `Σ_k weights[t,k] · expert in slot slotIdx[t,k] (x_t)`, one packed expert per distinct slot.
   *
   * @param mask `[T·K]` host 0/1: which pairs this call covers; all when omitted
   */
  forward(x: Tensor, slotIdx: Int32Array, weights: Tensor<"f32">, mask?: Float32Array): Tensor<"f32"> {
    const [T, K] = weights.shape;
    const C = x.shape[1];
    const slots = [...new Set(slotIdx.filter((_, j) => !mask || mask[j] !== 0))].sort((a, b) => a - b);
    using ones = Tensor.fromArray(x.device, new Float32Array(T * K).fill(1), [T, K, 1]); // [T, K, 1]
    let y: Tensor<"f32"> = Tensor.zeros(x.device, [T, C]);
    for (const s of slots) {
      const m = Float32Array.from(slotIdx, (v, j) => v === s && (!mask || mask[j] !== 0) ? 1 : 0);
      using mt = Tensor.fromArray(x.device, m, [T, K]); // [T, K]
      using wm = mul(weights, mt); // [T, K]
      using w3 = wm.reshape([T, 1, K]); // [T, 1, K]
      using w = matmul(w3, ones); // [T, 1, K] x [T, K, 1] -> [T, 1, 1]: this expert's weight per token
      const lin = this.#linears[s];
      using g = lin.get("gate")!.forward(x); // [T, C] -> [T, F]
      using u = lin.get("up")!.forward(x); // [T, C] -> [T, F]
      using a = siluMul(g, u); // [T, F]
      using ye = lin.get("down")!.forward(a); // [T, F] -> [T, C]
      using ye3 = ye.reshape([T, 1, C]); // [T, 1, C]
      using yw = matmul(w, ye3); // [T, 1, 1] x [T, 1, C] -> [T, 1, C]
      using yw2 = yw.reshape([T, C]); // [T, C]
      using prev = y;
      y = add(prev, yw2); // [T, C]
    }
    return y;
  }

  dispose(): void {
    for (const t of this.#tensors) t.dispose();
    this.#tensors.length = 0;
  }
}
