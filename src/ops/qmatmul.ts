/**
 * Packed matrix multiply for prefill: `qmatmul(x, q) = x · Ŵᵀ` with x `[..., T, cols]` and Ŵ
 * `[rows, cols]` the dequantised {@link QuantizedTensor} (HF `Linear` layout `[out, in]`), i.e. the
 * quantized Linear forward for many tokens. Kernel: `kernels/qmatmul.wgsl` (register-blocked like
 * `matmul`'s transB kernel; each invocation dequantises one code word of each of its 8 rows of Ŵ in
 * registers and multiplies it into up to 16 token rows). For a single token use `qgemv`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { packCodes } from "../tensor/quantized_tensor.ts";
 * import { packAffineMeta } from "./dequantize_ref.ts";
 * import { qmatmul } from "./qmatmul.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const u32 = { dtype: "u32", category: "weights" } as const;
 * // Ŵ = [[-1, 0, 1, 2], [2, 1, 0, -1]]: 2-bit codes, one group per row, scale 1, zero 1
 * const q = {
 *   method: "rtn", scheme: "affine", bits: 2, groupSize: 4, axis: 1, shape: [2, 4],
 *   codes: Tensor.fromArray(dev, packCodes([0, 1, 2, 3, 3, 2, 1, 0], 2, 4, 2), [2], u32),
 *   meta: Tensor.fromArray(dev, packAffineMeta(new Float32Array([1, 1]), new Float32Array([1, 1])), [2], u32),
 * } as const;
 * const x = Tensor.fromArray(dev, [1, 0, 0, 0, 0, 0, 0, 1], [2, 4]); // [T, cols]
 * const y = qmatmul(x, q); // [2, 4] · [2, 4]ᵀ -> [2, 2]
 * assert.deepEqual(Array.from(await y.toArray()), [-1, 2, 2, -1]);
 * ```
 * @module
 */
import code from "../../kernels/qmatmul.wgsl" with { type: "text" };
import { NF4 } from "../tensor/codebooks.ts";
import { codesPerWord, type QuantizedTensor, wordsPerRow } from "../tensor/quantized_tensor.ts";
import { Tensor } from "../tensor/tensor.ts";
import { nf4Absmax } from "./dequantize.ts";
import type { HostQuantized } from "./dequantize_ref.ts";
import { gpuOf, MAX_GROUPS, params } from "./_kernel.ts";
import { checkQuantized, hostQuantized, NF4_PARAMS } from "./_quant.ts";

/** Kernel configuration: invocations per workgroup (along rows of Ŵ), rows of Ŵ and most tokens per invocation. */
export const QMATMUL_KERNEL = { WG: 8, TN: 8, TM: 16 } as const;

// ---------------------------------------------------------------------------------------
// Reference (the CPU backend and the test oracle)

/**
 * `y[t, r] = Σ_c x[t, c]·Ŵ[r, c]` for `T` token rows: each row of Ŵ is dequantised in f32 exactly
 * as `dequantizeRef` does, the dot products run in float64 and round once to f32, so the result
 * equals `dequantizeRef` followed by `matmulRef(x, Ŵ, transB)`.
 */
export function qmatmulRef(x: Float32Array, q: HostQuantized, y: Float32Array, T: number): void {
  const [rows, cols] = q.shape;
  const n = codesPerWord(q.bits);
  const W = wordsPerRow(cols, q.bits);
  const mask = (1 << q.bits) - 1;
  const { scale, zero, groupSize: g, axis, bits } = q;
  const f = Math.fround;
  const row = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const code = (q.codes[r * W + Math.floor(c / n)] >>> ((c % n) * bits)) & mask;
      const grp = axis === 1 ? r * (cols / g) + Math.floor(c / g) : (r % (rows / g)) * cols + c;
      row[c] = q.scheme === "affine" ? f(f(code - zero![grp]) * scale[grp]) : f(NF4[code] * scale[grp]);
    }
    for (let t = 0; t < T; t++) {
      let s = 0;
      for (let c = 0, o = t * cols; c < cols; c++) s += x[o + c] * row[c];
      y[t * rows + r] = s;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Op

/**
 * `x [..., T, cols] · Ŵ[rows, cols]ᵀ -> [..., T, rows]` (leading dimensions of x fold into T).
 * f32 in and out; the GPU accumulates in f32.
 *
 * @param x f32 activations whose last dimension is `cols`.
 * @param q packed weight `[rows, cols]` (HF `[out, in]`).
 * @throws {TypeError} when x is not f32 or its last dimension is not `cols`, or `q` is malformed.
 * @see https://arxiv.org/abs/2305.14314 (QLoRA: NF4), https://mobiusml.github.io/hqq_blog/ (HQQ)
 */
export function qmatmul(x: Tensor, q: QuantizedTensor): Tensor<"f32"> {
  const s = checkQuantized("qmatmul", q);
  if (x.dtype !== "f32") throw new TypeError(`Cannot run qmatmul: x must be f32: received ${x.dtype}`);
  if (x.rank < 1 || x.shape[x.rank - 1] !== s.cols) {
    throw new TypeError(
      `Cannot run qmatmul: x of shape [${x.shape}] and weight of shape [${q.shape}]: the last dimension of x ` +
        `must be ${s.cols} (the weight is [out, in])`,
    );
  }
  if (x.device !== q.codes.device) {
    throw new TypeError("Cannot run qmatmul: x and the weight live on different devices");
  }
  const device = x.device;
  const T = x.size / Math.max(1, s.cols);
  const y = Tensor.empty(device, [...x.shape.slice(0, -1), s.rows]);
  if (y.size === 0 || s.cols === 0) return y; // device memory starts zeroed
  if (device.kind === "cpu") {
    qmatmulRef(x.host() as Float32Array, hostQuantized(q, s), y.host(), T);
    return y;
  }
  const { WG, TN } = QMATMUL_KERNEL;
  const rowGroups = Math.ceil(s.rows / (WG * TN));
  if (rowGroups > MAX_GROUPS) {
    throw new RangeError(
      `Cannot run qmatmul: ${s.rows} rows need more than ${MAX_GROUPS} workgroups; split the weight`,
    );
  }
  // Tokens per invocation: 4 for short x (a few tokens), else 16 (two pipelines per weight format).
  const TM = T <= 4 ? 4 : QMATMUL_KERNEL.TM;
  const tiles = Math.ceil(T / TM);
  const meta = q.scheme === "nf4" ? nf4Absmax(q) : q.meta;
  const entryPoint = s.cols % 4 === 0 && s.n % 4 === 0 ? "vec4x" : "scalar";
  // One metadata load per word unless a word can straddle two groups (or groups run down columns).
  const perCode = q.axis === 0 || q.groupSize % s.n !== 0;
  for (let t0 = 0; t0 < tiles; t0 += MAX_GROUPS) {
    gpuOf(device).dispatch({ name: "qmatmul", code, entryPoint }, {
      bindings: [q.codes.storage, x.storage, meta.storage, y.storage],
      params: params(
        ["u32", T],
        ["u32", s.rows],
        ["u32", s.cols],
        ["u32", s.W],
        ["u32", q.groupSize],
        ["u32", q.axis],
        ["u32", t0 * TM],
        ["u32", 0],
        ...NF4_PARAMS,
      ),
      workgroups: [Math.min(MAX_GROUPS, tiles - t0), rowGroups],
      constants: { WG, TM, BITS: q.bits, SCHEME: q.scheme === "nf4" ? 1 : 0, PERCODE: perCode ? 1 : 0 },
    });
  }
  if (meta !== q.meta) meta.dispose();
  return y;
}
