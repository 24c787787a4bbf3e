/**
 * Host-side widening of f16 weights for the CPU backend's ops that accept 16-bit weights
 * (`gemv`, `gatherMatmul`, `sparseExpert`, `matmul`'s `b`): a 65,536-entry table of
 * {@link f16ToF32Bits}, so a half widens exactly (subnormals included) in one load.
 * @module
 */
import type { Tensor } from "../tensor/tensor.ts";
import { f16ToF32Bits } from "./cast.ts";

let table: Float32Array | undefined;

/** Every half's f32 value, indexed by its bits. */
function f16Table(): Float32Array {
  if (!table) {
    const bits = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) bits[h] = f16ToF32Bits(h);
    table = new Float32Array(bits.buffer);
  }
  return table;
}

/** `[n]` halves from `start` of `h`, widened exactly to f32 (into `out` when given). */
export function widenHalves(
  h: Uint16Array,
  start = 0,
  n = h.length - start,
  out = new Float32Array(n),
): Float32Array {
  const t = f16Table();
  for (let i = 0; i < n; i++) out[i] = t[h[start + i]];
  return out;
}

/** The f32 values of a CPU tensor of dtype f32 (its own storage) or f16 (a widened copy). */
export function hostF32(t: Tensor): Float32Array {
  return t.dtype === "f16" ? widenHalves(t.host() as Uint16Array, 0, t.size) : t.host() as Float32Array;
}
