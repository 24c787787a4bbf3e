/**
 * Random {@link QuantizedTensor}s for the packed-op tests: uniform random codes and metadata in the
 * exact layout of `src/tensor/quantized_tensor.ts`, with the host form the references take.
 * @module
 */
import type { Device } from "../../src/device/device.ts";
import {
  type HostQuantized,
  nf4AbsmaxRef,
  packAffineMeta,
  unpackAffineMeta,
} from "../../src/ops/dequantize_ref.ts";
import {
  numGroups,
  packCodes,
  type QuantBits,
  type QuantizedTensor,
} from "../../src/tensor/quantized_tensor.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { rng } from "../_helpers.ts";

/** What to build: a layout and whether NF4 absmax values are double-quantised. */
export interface QuantCase {
  scheme: "affine" | "nf4";
  bits: QuantBits;
  groupSize: number;
  axis: 0 | 1;
  shape: [number, number];
  dq?: boolean;
}

/** A short label for assertion messages. */
export function label(c: QuantCase): string {
  const scheme = c.scheme === "nf4" ? (c.dq ? "nf4+dq" : "nf4") : `${c.bits}-bit`;
  return `${scheme} [${c.shape}] g=${c.groupSize} axis=${c.axis}`;
}

/**
 * A random quantized weight on `device` and its host arrays. Affine: scales in [0.01, 0.11), zero
 * points anywhere in [0, 2^bits − 1] (f16-rounded, as stored). NF4: absmax in [0.1, 2.1); with `dq`,
 * random 8-bit absmax codes, second-level scales in [0.5, 1.5) and an offset of 0.3.
 */
export function randomQuantized(
  device: Device,
  c: QuantCase,
  seed: number,
): { q: QuantizedTensor; host: HostQuantized } {
  const u = rng(seed);
  const [rows, cols] = c.shape;
  const groups = numGroups(c.shape, c.groupSize);
  const codes = packCodes(
    Uint8Array.from({ length: rows * cols }, () => Math.floor(u() * (1 << c.bits))),
    rows,
    cols,
    c.bits,
  );
  const w = { dtype: "u32", category: "weights" } as const;
  const f = { dtype: "f32", category: "weights" } as const;
  const base = {
    method: c.scheme === "nf4" ? "nf4" : "rtn",
    scheme: c.scheme,
    bits: c.bits,
    groupSize: c.groupSize,
    axis: c.axis,
    shape: c.shape,
  } as const;
  const host = {
    scheme: c.scheme,
    bits: c.bits,
    groupSize: c.groupSize,
    axis: c.axis,
    shape: c.shape,
    codes,
  };
  if (c.scheme === "affine") {
    const meta = packAffineMeta(
      Float32Array.from({ length: groups }, () => 0.01 + 0.1 * u()),
      Float32Array.from({ length: groups }, () => u() * ((1 << c.bits) - 1)),
    );
    const q = {
      ...base,
      codes: Tensor.fromArray(device, codes, undefined, w),
      meta: Tensor.fromArray(device, meta, undefined, w),
    };
    return { q, host: { ...host, ...unpackAffineMeta(meta) } };
  }
  if (!c.dq) {
    const absmax = Float32Array.from({ length: groups }, () => 0.1 + 2 * u());
    const q = {
      ...base,
      codes: Tensor.fromArray(device, codes, undefined, w),
      meta: Tensor.fromArray(device, absmax, undefined, f),
    };
    return { q, host: { ...host, scale: absmax } };
  }
  const mcodes = Uint32Array.from({ length: Math.ceil(groups / 4) }, () => Math.floor(u() * 2 ** 32) >>> 0);
  const meta2 = Float32Array.from({ length: Math.ceil(groups / 256) }, () => 0.5 + u());
  const metaOffset = Math.fround(0.3); // an f32 value, as a quantizer stores it (the GPU adds it in f32)
  const q = {
    ...base,
    codes: Tensor.fromArray(device, codes, undefined, w),
    meta: Tensor.fromArray(device, mcodes, undefined, w),
    meta2: Tensor.fromArray(device, meta2, undefined, f),
    metaOffset,
  };
  return { q, host: { ...host, scale: nf4AbsmaxRef(mcodes, meta2, metaOffset, groups) } };
}

/** Odd shapes (not multiples of a tile or of codes per word), each with its group sizes per axis (full dims included). */
export const SHAPES: { shape: [number, number]; g1: number[]; g0: number[] }[] = [
  { shape: [1, 8], g1: [8, 2], g0: [1] },
  { shape: [3, 40], g1: [40, 8], g0: [3, 1] },
  { shape: [17, 96], g1: [96, 32], g0: [17, 1] },
  { shape: [65, 160], g1: [160, 32, 20], g0: [65, 5] },
  { shape: [130, 64], g1: [64, 16], g0: [130, 2] },
];

/** Every bits × axis × group size on {@link SHAPES}, then NF4 (axis 1 and 0) with and without double quantisation. */
export function allCases(): QuantCase[] {
  const out: QuantCase[] = [];
  for (const { shape, g1, g0 } of SHAPES) {
    for (const bits of [2, 3, 4, 8] as const) {
      for (const g of g1) out.push({ scheme: "affine", bits, groupSize: g, axis: 1, shape });
      for (const g of g0) out.push({ scheme: "affine", bits, groupSize: g, axis: 0, shape });
    }
    for (const dq of [false, true]) {
      for (const g of g1) out.push({ scheme: "nf4", bits: 4, groupSize: g, axis: 1, shape, dq });
      out.push({ scheme: "nf4", bits: 4, groupSize: g0[0], axis: 0, shape, dq });
    }
  }
  return out;
}
