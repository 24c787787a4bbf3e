/**
 * The floe policy's one readback per MoE layer: layer `i`'s router logits and up activations
 * (every expert, for reloads) and, when layer `i+1` is sparse, its predicted expert scores (its
 * router, or a learned predictor) and up activations on layer `i`'s input (A.4–A.5),
 * flattened into one f32 tensor and read back in one sync.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hostTopK } from "./floe_readback.ts";
 * assert.deepEqual(Array.from(hostTopK(Float32Array.of(0.1, 0.9, 0.9, 0.2), 4, 2)), [1, 2]); // ties: lower first
 * ```
 * @module
 */
import type { LinearLike } from "../../nn/linear_like.ts";
import { concatRows } from "../../ops/slice.ts";
import { topkRef } from "../../ops/topk.ts";
import type { Tensor } from "../../tensor/tensor.ts";
import type { SyncClock } from "../transfer.ts";

/** What one floe readback holds (host arrays, row-major). */
export interface FloeHost {
  /** `[T, E]` layer `i`'s router logits. */
  logits: Float32Array;
  /** `[E, T, F]` layer `i`'s up activations (sparse layers). */
  v?: Float32Array;
  /** `[T, E]` layer `i+1`'s router on layer `i`'s input. */
  nextLogits?: Float32Array;
  /** `[E, T, F]` layer `i+1`'s up projections on layer `i`'s input. */
  nextV?: Float32Array;
}

/** The top `K` of each row of `[T, E]` values, as the device's `topk` picks them (stable descending). */
export function hostTopK(values: Float32Array, E: number, K: number): Int32Array {
  const idx = new Int32Array((values.length / E) * K);
  topkRef(values, E, K, new Float32Array(idx.length), idx);
  return idx;
}

/** Records the parts, flattens them into one tensor, reads it back once, and splits it. */
export async function floeReadback(
  clock: SyncClock,
  logits: Tensor,
  vs: readonly Tensor[],
  next: { scores: () => Tensor<"f32">; up: readonly LinearLike[] } | undefined,
  x: Tensor,
): Promise<FloeHost> {
  const owned: Tensor[] = [];
  try {
    const parts: Tensor[] = [logits, ...vs];
    if (next) {
      const nl = next.scores(); // [T, C] -> [T, E]: the next layer's predicted expert scores
      owned.push(nl);
      parts.push(nl);
      for (const u of next.up) {
        const nv = u.forward(x); // [T, C] -> [T, F]
        owned.push(nv);
        parts.push(nv);
      }
    }
    const flat = parts.map((t) => t.reshape([t.size, 1])); // [n, 1] each
    owned.push(...flat);
    const all = concatRows(flat); // [Σn, 1]
    owned.push(all);
    const host = await clock.read(all) as Float32Array;
    let at = 0;
    const take = (n: number) => host.subarray(at, at += n);
    const out: FloeHost = { logits: take(logits.size) };
    if (vs.length > 0) out.v = take(vs.length * vs[0].size);
    if (next) {
      out.nextLogits = take(logits.size);
      out.nextV = take(host.length - at);
    }
    return out;
  } finally {
    for (const t of owned) t.dispose();
  }
}
