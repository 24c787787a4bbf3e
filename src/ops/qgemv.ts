/**
 * Packed matrix-vector product for decoding one token from quantized weights:
 * `qgemv(q, x) = Ŵ x` with Ŵ `[rows, cols]` the dequantised {@link QuantizedTensor}, computed from
 * the packed codes without materialising Ŵ (2/3/4/8-bit affine groups along either axis, NF4 with or
 * without double quantisation). Kernel: `kernels/qgemv.wgsl` (a small prep pass lays x out per code
 * slot; the main pass streams the codes, R = 32 rows per invocation, dequantising in registers).
 *
 * Speed against the f32 `gemv`: `deno task bench:quant` measures it; the README's packed-GEMV table
 * (section "Compressors") is generated from its committed results, `bench/results/quant.json` (the
 * kernel header says what limits it).
 *
 * Groups along columns (axis 0) cost a larger prep: x is scaled per row group, `rows / g` copies of
 * x' (each about `cols` floats), so small groups on axis 0 are slow and use memory.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { packCodes } from "../tensor/quantized_tensor.ts";
 * import { packAffineMeta } from "./dequantize_ref.ts";
 * import { qgemv } from "./qgemv.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const u32 = { dtype: "u32", category: "weights" } as const;
 * // Ŵ = [[-1, 0, 1, 2], [2, 1, 0, -1]]: 2-bit codes, one group per row, scale 1, zero 1
 * const q = {
 *   method: "rtn", scheme: "affine", bits: 2, groupSize: 4, axis: 1, shape: [2, 4],
 *   codes: Tensor.fromArray(dev, packCodes([0, 1, 2, 3, 3, 2, 1, 0], 2, 4, 2), [2], u32),
 *   meta: Tensor.fromArray(dev, packAffineMeta(new Float32Array([1, 1]), new Float32Array([1, 1])), [2], u32),
 * } as const;
 * const x = Tensor.fromArray(dev, [1, 1, 1, 1]); // [cols]
 * const y = qgemv(q, x); // [2, 4] · [4] -> [2]
 * assert.deepEqual(Array.from(await y.toArray()), [2, 2]);
 * ```
 * @module
 */
import code from "../../kernels/qgemv.wgsl" with { type: "text" };
import { NF4 } from "../tensor/codebooks.ts";
import { codesPerWord, type QuantizedTensor, wordsPerRow } from "../tensor/quantized_tensor.ts";
import { Tensor } from "../tensor/tensor.ts";
import { type HostQuantized } from "./dequantize_ref.ts";
import { nf4Absmax } from "./dequantize.ts";
import { gpuOf, grid1d, params } from "./_kernel.ts";
import { checkQuantized, checkVector, hostQuantized, NF4_PARAMS, type QuantShape } from "./_quant.ts";

/** Kernel configuration: invocations per workgroup and the most rows per invocation. */
export const QGEMV_KERNEL = { WG: 16, R: 32 } as const;

// ---------------------------------------------------------------------------------------
// Reference (the CPU backend and the test oracle)

/**
 * `y[r] = Σ_c Ŵ[r, c]·x[c]` straight from the packed codes: each Ŵ element is computed in f32
 * exactly as `dequantizeRef` does, the products and the sum in float64, rounded once to f32 — so
 * the result equals `dequantizeRef` followed by `gemvRef`.
 */
export function qgemvRef(q: HostQuantized, x: Float32Array, y: Float32Array): void {
  const [rows, cols] = q.shape;
  const n = codesPerWord(q.bits);
  const W = wordsPerRow(cols, q.bits);
  const mask = (1 << q.bits) - 1;
  const { scale, zero, groupSize: g, axis, bits } = q;
  const f = Math.fround;
  const affine = q.scheme === "affine";
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let k = 0; k < W; k++) {
      const word = q.codes[r * W + k];
      for (let i = 0, c = k * n; i < n && c < cols; i++, c++) {
        const code = (word >>> (i * bits)) & mask;
        const grp = axis === 1 ? r * (cols / g) + Math.floor(c / g) : (r % (rows / g)) * cols + c;
        s += (affine ? f(f(code - zero![grp]) * scale[grp]) : f(NF4[code] * scale[grp])) * x[c];
      }
    }
    y[r] = s;
  }
}

// ---------------------------------------------------------------------------------------
// Op

/**
 * `Ŵ [rows, cols] · x [cols] -> [rows]`, or `x [1, cols] -> [1, rows]`. f32 in and out; on the GPU
 * the sums are f32 (per group, then across groups).
 *
 * @param q packed weight `[rows, cols]` (HF `[out, in]`).
 * @param x f32 `[cols]` or `[1, cols]`.
 * @throws {TypeError} when x is not f32 or its length is not `cols`, or `q` is malformed.
 * @see https://arxiv.org/abs/2305.14314 (QLoRA: NF4), https://mobiusml.github.io/hqq_blog/ (HQQ)
 */
export function qgemv(q: QuantizedTensor, x: Tensor): Tensor<"f32"> {
  const s = checkQuantized("qgemv", q);
  checkVector("qgemv", q, x);
  const device = x.device;
  const y = Tensor.empty(device, x.rank === 2 ? [1, s.rows] : [s.rows]);
  if (s.rows === 0 || s.cols === 0) return y; // device memory starts zeroed
  if (device.kind === "cpu") {
    qgemvRef(hostQuantized(q, s), x.host() as Float32Array, y.host());
    return y;
  }
  const absmax = q.scheme === "nf4" ? nf4Absmax(q) : undefined;
  const xp = q.axis === 1 ? prepAxis1(q, s, x) : prepAxis0(q, s, x, absmax ?? q.meta);
  const { WG } = QGEMV_KERNEL;
  gpuOf(device).dispatch({ name: "qgemv", code, entryPoint: `${q.axis === 1 ? "rows" : "cols"}${xp.L}` }, {
    bindings: [
      q.codes.storage,
      xp.t.storage,
      q.axis === 1 ? (absmax ?? q.meta).storage : xp.t.storage,
      y.storage,
    ],
    params: params(
      ["u32", s.rows],
      ["u32", s.cols],
      ["u32", s.W],
      ["u32", q.axis === 1 ? s.cols / q.groupSize : q.groupSize],
      ["u32", q.groupSize],
      ["u32", xp.span],
      ["u32", xp.xoff],
      ["u32", 0],
      ...NF4_PARAMS,
    ),
    workgroups: grid1d(Math.ceil(s.rows / (xp.R * WG))),
    constants: { WG, R: xp.R, BITS: q.bits, SCHEME: q.scheme === "nf4" ? 1 : 0 },
  });
  xp.t.dispose(); // buffers are destroyed after the pending submit
  if (absmax !== q.meta) absmax?.dispose();
  return y;
}

/** The prepared x' buffer and how the main pass walks it. */
interface Prepared {
  t: Tensor<"f32">;
  /** Words per load unit: 4 (vec4 loads) or 1. */
  L: 1 | 4;
  /** Load units per x' segment (per column group on axis 1, per row on axis 0). */
  span: number;
  /** f32 index of the sums (Σx per group, or partial Σ z·s·x). */
  xoff: number;
  /** Rows per invocation. */
  R: number;
}

/** Rows per invocation: 32, halved while that leaves fewer than 4 workgroups (at least 4; 1 for tiny). */
function rowsPerInvocation(rows: number): number {
  let R: number = QGEMV_KERNEL.R;
  while (R > 4 && Math.ceil(rows / (R * QGEMV_KERNEL.WG)) < 4) R /= 2;
  return R;
}

/** x' for groups along rows: per column group j, the load units covering it, x masked to the group. */
function prepAxis1(q: QuantizedTensor, s: QuantShape, x: Tensor): Prepared {
  const { n, W, cols } = s;
  const g = q.groupSize;
  const G = cols / g;
  const unitsOf = (L: number) => {
    let span = 0;
    for (let j = 0; j < G; j++) {
      const first = Math.floor(Math.floor((j * g) / n) / L);
      span = Math.max(span, Math.floor(Math.floor(((j + 1) * g - 1) / n) / L) - first + 1);
    }
    return span;
  };
  // vec4 loads when rows are vec4-aligned and the units covering a group add little waste.
  let L: 1 | 4 = 1;
  let span = unitsOf(1);
  if (W % 4 === 0) {
    const span4 = unitsOf(4);
    if (4 * span4 * n <= 1.25 * g || span4 * 4 <= span) [L, span] = [4, span4];
  }
  const slots = 4 * Math.ceil(n / 4);
  const xoff = G * span * L * slots;
  const t = Tensor.empty(x.device, [xoff + 4 * Math.ceil(G / 4)], { label: "qgemv x'" });
  gpuOf(x.device).dispatch({ name: "qgemv", code, entryPoint: "prep1" }, {
    bindings: [x.storage, t.storage],
    params: params(
      ["u32", cols],
      ["u32", n],
      ["u32", q.bits],
      ["u32", g],
      ["u32", G],
      ["u32", span * L],
      ["u32", L],
      ["u32", slots],
      ["u32", q.scheme === "affine" ? 1 : 0],
      ["u32", xoff],
    ),
    workgroups: grid1d(Math.ceil((xoff + G) / 64)),
  });
  return { t, L, span, xoff, R: rowsPerInvocation(s.rows) };
}

/** xa for groups along columns: x times each column's scale (or absmax), per row group, and Σ z·s·x. */
function prepAxis0(q: QuantizedTensor, s: QuantShape, x: Tensor, meta: Tensor): Prepared {
  const { n, W, cols, rows } = s;
  const g = q.groupSize;
  const RG = rows / g;
  const L: 1 | 4 = W % 4 === 0 ? 4 : 1;
  const slots = 4 * Math.ceil(n / 4);
  const xoff = RG * W * slots;
  const units = RG * (W / L);
  const t = Tensor.empty(x.device, [xoff + units], { label: "qgemv xa" });
  gpuOf(x.device).dispatch({ name: "qgemv", code, entryPoint: "prep0" }, {
    bindings: [x.storage, meta.storage, t.storage],
    params: params(
      ["u32", cols],
      ["u32", n],
      ["u32", q.bits],
      ["u32", g],
      ["u32", RG],
      ["u32", W],
      ["u32", L],
      ["u32", slots],
      ["u32", q.scheme === "affine" ? 1 : 0],
      ["u32", xoff],
    ),
    workgroups: grid1d(Math.ceil(units / 64)),
  });
  // All R rows of an invocation must share a row group: R divides g.
  let R = rowsPerInvocation(rows);
  while (R > 1 && g % R !== 0) R /= 2;
  return { t, L, span: W / L, xoff, R };
}
