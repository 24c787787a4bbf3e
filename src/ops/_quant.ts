/**
 * Helpers shared by the packed-weight ops (`dequantize`, `qgemv`, `qmatmul`): validation of a
 * {@link QuantizedTensor} at the op boundary, its host form for the CPU references, the NF4
 * codebook as uniform parameters and the per-device DYNAMIC8 table. Private to `src/ops/`.
 * @module
 */
import type { Device } from "../device/device.ts";
import { DYNAMIC8, NF4 } from "../tensor/codebooks.ts";
import {
  checkQuantLayout,
  codesPerWord,
  numGroups,
  type QuantizedTensor,
  wordsPerRow,
} from "../tensor/quantized_tensor.ts";
import { Tensor } from "../tensor/tensor.ts";
import { type HostQuantized, nf4AbsmaxRef, unpackAffineMeta } from "./dequantize_ref.ts";
import type { ParamField } from "./_kernel.ts";

/** Sizes every packed op needs, computed once from a checked {@link QuantizedTensor}. */
export interface QuantShape {
  rows: number;
  cols: number;
  /** Codes per `u32` word. */
  n: number;
  /** Words per row. */
  W: number;
  /** Number of groups (of metadata entries before double quantisation). */
  groups: number;
  /** NF4 with double-quantised absmax values. */
  dq: boolean;
}

/**
 * Throws a `TypeError`/`RangeError` naming the problem unless `q` is a well-formed
 * {@link QuantizedTensor} (layout, tensor sizes and dtypes, one device); returns its sizes.
 */
export function checkQuantized(op: string, q: QuantizedTensor): QuantShape {
  const what = `run ${op}`;
  checkQuantLayout(what, q.shape, q.bits, q.groupSize, q.axis);
  const [rows, cols] = q.shape;
  if (q.scheme !== "affine" && q.scheme !== "nf4") {
    throw new RangeError(`Cannot ${what}: scheme must be "affine" or "nf4": received ${q.scheme}`);
  }
  if (q.scheme === "nf4" && q.bits !== 4) {
    throw new RangeError(`Cannot ${what}: the nf4 scheme stores 4-bit codes: received bits = ${q.bits}`);
  }
  const W = wordsPerRow(cols, q.bits);
  const groups = numGroups(q.shape, q.groupSize);
  const dq = q.scheme === "nf4" && q.meta2 !== undefined;
  const expect = (name: string, t: Tensor | undefined, dtype: string, size: number) => {
    if (!t || t.dtype !== dtype || t.size !== size) {
      throw new TypeError(
        `Cannot ${what}: ${name} of a [${q.shape}] ${q.scheme} weight (${q.bits}-bit, group ${q.groupSize}) ` +
          `must be ${dtype}[${size}]: received ${t ? `${t.dtype}[${t.shape}]` : "nothing"}`,
      );
    }
    if (t.device !== q.codes.device) throw new TypeError(`Cannot ${what}: ${name} lives on another device`);
  };
  expect("codes", q.codes, "u32", rows * W);
  if (q.scheme === "affine") expect("meta", q.meta, "u32", groups);
  else if (!dq) expect("meta", q.meta, "f32", groups);
  else {
    expect("meta (8-bit absmax codes)", q.meta, "u32", Math.ceil(groups / 4));
    expect("meta2", q.meta2, "f32", Math.ceil(groups / 256));
    if (!Number.isFinite(q.metaOffset)) {
      throw new TypeError(
        `Cannot ${what}: double-quantised nf4 needs a finite metaOffset: received ${q.metaOffset}`,
      );
    }
  }
  return { rows, cols, n: codesPerWord(q.bits), W, groups, dq };
}

/** CPU backend: the host arrays of `q` with metadata unpacked to f32 per group. */
export function hostQuantized(q: QuantizedTensor, s: QuantShape): HostQuantized {
  const base = { scheme: q.scheme, bits: q.bits, groupSize: q.groupSize, axis: q.axis, shape: q.shape };
  const codes = q.codes.host() as Uint32Array;
  if (q.scheme === "affine") return { ...base, codes, ...unpackAffineMeta(q.meta.host() as Uint32Array) };
  const scale = s.dq
    ? nf4AbsmaxRef(q.meta.host() as Uint32Array, q.meta2!.host() as Float32Array, q.metaOffset!, s.groups)
    : q.meta.host() as Float32Array;
  return { ...base, codes, scale };
}

/** The NF4 codebook as 16 uniform `f32` fields (a WGSL `array<vec4<f32>, 4>`). */
export const NF4_PARAMS: readonly ParamField[] = Array.from(NF4, (v) => ["f32", v] as const);

const dynamic8 = new WeakMap<Device, Tensor<"f32">>();

/** The DYNAMIC8 codebook on `device`, uploaded once per device (1 KiB under "weights"). */
export function dynamic8Table(device: Device): Tensor<"f32"> {
  let t = dynamic8.get(device);
  if (!t || t.disposed) {
    t = Tensor.fromArray(device, DYNAMIC8, undefined, { category: "weights", label: "DYNAMIC8" });
    dynamic8.set(device, t);
  }
  return t;
}

/** Throws a `TypeError` unless `x` is f32 `[cols]` or `[1, cols]` (the GEMV input of a `[rows, cols]` weight). */
export function checkVector(op: string, q: QuantizedTensor, x: Tensor): void {
  if (x.dtype !== "f32") throw new TypeError(`Cannot run ${op}: x must be f32: received ${x.dtype}`);
  const cols = q.shape[1];
  if (x.rank < 1 || x.rank > 2 || (x.rank === 2 && x.shape[0] !== 1) || x.shape[x.rank - 1] !== cols) {
    throw new TypeError(
      `Cannot run ${op}: weight of shape [${q.shape}] and x of shape [${x.shape}]: x must be [${cols}] or ` +
        `[1, ${cols}]` + (x.rank === 2 && x.shape[0] !== 1 ? "; for several rows use qmatmul(x, q)" : ""),
    );
  }
  if (x.device !== q.codes.device) {
    throw new TypeError(`Cannot run ${op}: x and the weight live on different devices`);
  }
}
