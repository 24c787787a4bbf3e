/**
 * The LoRA adapter a layer carries: `y = base(x) + scaling · dropout(x) Aᵀ Bᵀ`
 * ([LoRA, Hu et al. 2021](https://arxiv.org/abs/2106.09685); PEFT's `lora.Linear`).
 *
 * `nn` layers only *apply* an attached adapter (`Linear.adapter`, `SwiGLUExperts.adapters`);
 * creating, training, merging and saving adapters is `src/lora/`'s job.
 *
 * @module
 */
import { add, scale } from "../ops/elementwise.ts";
import { matmul } from "../ops/matmul.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** One low-rank update of a `[out, in]` weight. */
export interface LoraAdapter {
  /** `[r, in]` f32 (PEFT `lora_A.weight`). */
  readonly a: Tensor;
  /** `[out, r]` f32 (PEFT `lora_B.weight`). */
  readonly b: Tensor;
  /** `loraAlpha / r`, or `loraAlpha / √r` with rsLoRA. */
  readonly scaling: number;
  /** Dropout probability on the adapter's input while training. */
  readonly dropout: number;
}

/** Key of an expert's adapter in `SwiGLUExperts.adapters`, e.g. `"down_proj.3"`. */
export type ExpertAdapterKey = `${"gate_proj" | "up_proj" | "down_proj"}.${number}`;

/**
 * `y + scaling · (x Aᵀ) Bᵀ`, the inference forward of an attached adapter (`y` is the base layer's
 * output; the caller keeps ownership of `y` and `x`). `[..., in]`, `[..., out]` -> `[..., out]`
 */
export function addAdapter(y: Tensor, x: Tensor, adapter: LoraAdapter): Tensor<"f32"> {
  const { a, b, scaling } = adapter;
  using xa = matmul(x, a, { transB: true }); // [..., in] x [r, in]ᵀ -> [..., r]
  using xab = matmul(xa, b, { transB: true }); // [..., r] x [out, r]ᵀ -> [..., out]
  using d = scale(xab, scaling); // [..., out]
  return add(y, d); // [..., out]
}
