/**
 * QLoRAM's base model ([LoRAM](https://arxiv.org/abs/2502.13533) §3.3, ALGORITHMS.md B.5): every
 * decoder projection of the (pruned) model replaced in place by an {@link QuantizedLinear} holding NF4
 * codes with double-quantised absmax values (bitsandbytes' `nf4` + `use_double_quant`), and its f32
 * weight freed. Training LoRA on it dequantises inside the forward and backward; nothing keeps an
 * f32 copy. Embeddings, norms and the LM head stay f32 (bitsandbytes leaves them unquantised too).
 *
 * Blocks are 64 values along a row, as bitsandbytes; where 64 does not divide a row (a pruned
 * o_proj of 96 inputs) the largest power of two that does is used (32 there).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "../models/load.ts";
 * import { quantizeLinearsNf4 } from "./qloram.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/llama-gqa-tied-f32", { device });
 * const before = device.ledger.current("weights");
 * const r = await quantizeLinearsNf4(model);
 * assert.equal(r.modules, 14); // 2 layers × 7 projections
 * assert.ok(device.ledger.current("weights") < before / 3);
 * ```
 * @module
 */
import { quantize } from "../compressors/quant/quantize.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import type { Linear } from "../nn/linear.ts";
import { QuantizedLinear } from "../nn/quantized_linear.ts";
import { SwiGLU } from "../nn/swiglu.ts";
import { wordsPerRow } from "../tensor/quantized_tensor.ts";

/** bitsandbytes' NF4 block. */
export const NF4_BLOCK = 64;

/** The NF4 block of a row of `cols` values: 64, or the largest power of two dividing `cols`. */
export function nf4BlockFor(cols: number): number {
  let g = NF4_BLOCK;
  while (cols % g !== 0) g /= 2;
  return g;
}

/**
 * Stored bytes of one `[rows, cols]` weight in NF4 + double quantisation with blocks of `block`:
 * codes (8 per `u32`, rows word-aligned), 8-bit absmax codes (4 per `u32`), one f32 scale per 256
 * absmax values, and one f32 offset.
 */
export function nf4LinearBytes(rows: number, cols: number, block = NF4_BLOCK): number {
  const blocks = Math.ceil((rows * cols) / block);
  return 4 * rows * wordsPerRow(cols, 4) + 4 * Math.ceil(blocks / 4) + 4 * Math.ceil(blocks / 256) + 4;
}

/** What {@link quantizeLinearsNf4} returns. */
export interface Nf4Result {
  /** Projections replaced. */
  modules: number;
  /** Their stored bytes (codes and metadata, offsets included), by {@link nf4LinearBytes}. */
  bytes: number;
}

/**
 * Replaces every decoder projection (q/k/v/o, gate/up/down) of a dense model by an `QuantizedLinear`
 * and frees the f32 weights. Adapters must not be attached yet (attach LoRA afterwards).
 *
 * @throws {TypeError} for a MoE layer or a projection that carries an adapter
 */
export async function quantizeLinearsNf4(model: CausalLM): Promise<Nf4Result> {
  let modules = 0;
  let bytes = 0;
  for (const [i, layer] of model.layers.entries()) {
    if (!(layer.mlp instanceof SwiGLU)) {
      throw new TypeError(`Cannot quantize layer ${i} to NF4: it is not a dense SwiGLU layer`);
    }
    const sites: [Record<string, unknown>, string][] = [
      ...["qProj", "kProj", "vProj", "oProj"].map((f) =>
        [layer.attention as unknown as Record<string, unknown>, f] as [Record<string, unknown>, string]
      ),
      ...["gateProj", "upProj", "downProj"].map((f) =>
        [layer.mlp as unknown as Record<string, unknown>, f] as [Record<string, unknown>, string]
      ),
    ];
    for (const [owner, field] of sites) {
      const lin = owner[field] as Linear;
      if (lin instanceof QuantizedLinear) continue;
      if (lin.adapter) {
        throw new TypeError(
          `Cannot quantize layer ${i} ${field} to NF4: it carries a LoRA adapter; quantize first, then attach`,
        );
      }
      const [rows, cols] = lin.weight.shape;
      const block = nf4BlockFor(cols);
      const q = await quantize(lin.weight, { method: "nf4", groupSize: block, doubleQuant: true });
      owner[field] = new QuantizedLinear(q, lin.bias);
      lin.weight.dispose(); // the bias moves to the QuantizedLinear
      modules++;
      bytes += nf4LinearBytes(rows, cols, block);
    }
  }
  return { modules, bytes };
}
