/**
 * The safetensors format: dtypes, tensor records, and strict parsing of the header.
 *
 * Layout of a file (all integers little-endian):
 *
 * ```
 * [8 bytes]  N = u64 header length
 * [N bytes]  UTF-8 JSON: {"__metadata__": {str: str}?, name: {"dtype", "shape", "data_offsets": [b, e]}, ...}
 *            padded with spaces to a multiple of 8
 * [rest]     byte buffer; each tensor is buffer[b, e), C order, no gaps, nothing after the last one
 * ```
 *
 * The rules match Hugging Face's reference implementation (`safetensors/src/tensor.rs`), so a
 * file this module accepts loads there and the other way round.
 *
 * @module
 */

import { FormatError } from "../errors.ts";
import { bf16ToF32, f16ToF32 } from "./dtype_convert.ts";

/** Bytes of the little-endian u64 that precedes the JSON header. */
export const HEADER_PREFIX_BYTES = 8;
/** The reference library refuses headers larger than this (100 MB), and so do we. */
export const MAX_HEADER_BYTES = 100_000_000;
/** The header key that holds the string→string metadata map instead of a tensor. */
export const METADATA_KEY = "__metadata__";

/**
 * Element types and their byte widths, in the reference library's `Dtype` enum order. That order
 * matters: writers lay tensors out by descending rank (widest alignment first), then by name.
 */
export const DTYPE_BYTES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
} as const;

/** A safetensors element type name, as it appears in the header. */
export type SafetensorsDtype = keyof typeof DTYPE_BYTES;

/** All supported dtypes, in layout rank order (see {@linkcode DTYPE_BYTES}). */
export const SAFETENSORS_DTYPES: readonly SafetensorsDtype[] = Object.keys(DTYPE_BYTES) as SafetensorsDtype[];

/** Layout rank of each dtype: higher ranks are written first. */
export const DTYPE_RANK: Readonly<Record<SafetensorsDtype, number>> = Object.fromEntries(
  SAFETENSORS_DTYPES.map((d, i) => [d, i]),
) as Record<SafetensorsDtype, number>;

/** Where one tensor lives, as declared in the header. */
export interface TensorInfo {
  readonly dtype: SafetensorsDtype;
  /** Dimensions in C (row-major) order; `[]` is a scalar. */
  readonly shape: readonly number[];
  /** `end - begin`, equal to `product(shape) * DTYPE_BYTES[dtype]`. */
  readonly byteLength: number;
  /** `[begin, end)` relative to the start of the byte buffer (just after the header). */
  readonly dataOffsets: readonly [number, number];
}

/** One tensor's bytes, exactly as stored (little-endian, C order). */
export interface SafetensorsTensor {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** `[product(shape) * DTYPE_BYTES[dtype]]` raw bytes. */
  readonly data: Uint8Array;
}

/** A validated header. */
export interface SafetensorsHeader {
  /** Tensors by name, in offset order. */
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  /** The `__metadata__` map, or `{}` when the file has none. */
  readonly metadata: Readonly<Record<string, string>>;
  /** Absolute file offset of the byte buffer: `8 + N`. */
  readonly dataStart: number;
}

/** `true` when `value` names a supported dtype. */
export function isSafetensorsDtype(value: unknown): value is SafetensorsDtype {
  return typeof value === "string" && Object.hasOwn(DTYPE_BYTES, value);
}

/** Product of dims, or -1 when it would not be an exact JS integer. */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return Number.isSafeInteger(n) ? n : -1;
}

const FIX = "re-save the file with a safetensors writer or re-download it";

/**
 * Read the header length from the 8-byte prefix and check it against the file size.
 *
 * @param prefix The first bytes of the file (at least 8 unless the file is shorter).
 * @param fileBytes Total file size in bytes.
 * @param path Shown in error messages.
 * @returns N, the JSON header length in bytes.
 * @throws {FormatError} When the file is shorter than 8 bytes, or N is past the end of the file
 * or above {@linkcode MAX_HEADER_BYTES}.
 */
export function readHeaderLength(prefix: Uint8Array, fileBytes: number, path = "<bytes>"): number {
  const where = `Cannot read safetensors file ${path}`;
  if (fileBytes < HEADER_PREFIX_BYTES || prefix.length < HEADER_PREFIX_BYTES) {
    throw new FormatError(
      `${where}: file is ${fileBytes} bytes, shorter than the 8-byte header length; it is truncated or not safetensors, ${FIX}`,
      path,
    );
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new FormatError(
      `${where}: header length ${n} bytes exceeds the 100 MB limit; the file is corrupt or not safetensors, ${FIX}`,
      path,
    );
  }
  if (n > BigInt(fileBytes - HEADER_PREFIX_BYTES)) {
    throw new FormatError(
      `${where}: header length ${n} bytes runs past the end of the file (${fileBytes} bytes); the file is truncated, ${FIX}`,
      path,
    );
  }
  return Number(n);
}

/**
 * Decode and validate the JSON header of a safetensors file.
 *
 * Checks, each failing with a {@linkcode FormatError} that names the file and the problem: UTF-8
 * and JSON syntax; the header is an object; metadata values are strings; every tensor has a known
 * `dtype`, a `shape` of non-negative integers and `data_offsets` `[begin, end]` with
 * `begin <= end` inside the buffer; `end - begin` matches shape and dtype; and the tensors tile the
 * buffer exactly, with no overlap, no gap and nothing left over.
 *
 * @param json The N header bytes (trailing space padding allowed).
 * @param fileBytes Total file size in bytes; the buffer is `fileBytes - 8 - N` bytes.
 * @param path Shown in error messages.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseHeader } from "./safetensors_format.ts";
 * const json = new TextEncoder().encode('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}');
 * const header = parseHeader(json, 8 + json.length + 8);
 * assert.ok(header.tensors.get("w")?.byteLength === 8);
 * ```
 */
export function parseHeader(json: Uint8Array, fileBytes: number, path = "<bytes>"): SafetensorsHeader {
  const where = `Cannot read safetensors file ${path}`;
  const fail = (problem: string): never => {
    throw new FormatError(`${where}: ${problem}; ${FIX}`, path);
  };
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(json);
  } catch {
    return fail("header is not valid UTF-8");
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return fail(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    return fail(`header must be a JSON object, received ${Array.isArray(raw) ? "an array" : typeof raw}`);
  }

  const metaEntries: [string, string][] = [];
  const entries: [string, TensorInfo][] = [];
  const bufferBytes = fileBytes - HEADER_PREFIX_BYTES - json.length;
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    if (name === METADATA_KEY) {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        fail(`"${METADATA_KEY}" must be an object of strings`);
      }
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== "string") {
          fail(`metadata value for "${k}" must be a string, received ${JSON.stringify(v)}`);
        }
        metaEntries.push([k, v as string]);
      }
      continue;
    }
    entries.push([name, parseTensorInfo(name, value, bufferBytes, fileBytes, fail)]);
  }

  // Tile check, as the reference does it: sorted by offsets, each tensor starts where the last ended.
  entries.sort(([, a], [, b]) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let end = 0;
  let prev = "";
  for (const [name, info] of entries) {
    const [b, e] = info.dataOffsets;
    if (b < end) fail(`tensor "${name}" data_offsets [${b}, ${e}] overlap tensor "${prev}" (ends at ${end})`);
    if (b > end) {
      fail(
        `bytes [${end}, ${b}) before tensor "${name}" belong to no tensor (a gap); the buffer must be fully covered`,
      );
    }
    end = e;
    prev = name;
  }
  if (end !== bufferBytes) {
    fail(
      `${
        bufferBytes - end
      } bytes after the last tensor belong to no tensor; the buffer must be fully covered`,
    );
  }
  return {
    tensors: new Map(entries),
    metadata: Object.fromEntries(metaEntries), // fromEntries: a "__proto__" key stays plain data
    dataStart: HEADER_PREFIX_BYTES + json.length,
  };
}

function parseTensorInfo(
  name: string,
  value: unknown,
  bufferBytes: number,
  fileBytes: number,
  fail: (problem: string) => never,
): TensorInfo {
  const t = `tensor "${name}"`;
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    fail(`${t} must be an object with dtype, shape and data_offsets, received ${JSON.stringify(value)}`);
  }
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (dtype === undefined) fail(`${t} is missing "dtype"`);
  if (!isSafetensorsDtype(dtype)) {
    fail(`${t} has unknown dtype ${JSON.stringify(dtype)} (supported: ${SAFETENSORS_DTYPES.join(", ")})`);
  }
  if (shape === undefined) fail(`${t} is missing "shape"`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    fail(`${t} has invalid shape ${JSON.stringify(shape)}: expected an array of non-negative integers`);
  }
  if (offsets === undefined) fail(`${t} is missing "data_offsets"`);
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
  ) {
    fail(
      `${t} has invalid data_offsets ${
        JSON.stringify(offsets)
      }: expected [begin, end], non-negative integers`,
    );
  }
  const dims = shape as number[];
  const [b, e] = offsets as [number, number];
  if (b > e) fail(`${t} has data_offsets [${b}, ${e}] with begin > end`);
  if (e > bufferBytes) {
    fail(
      `${t} data_offsets [${b}, ${e}] run past the end of the file: its data section holds ${bufferBytes} ` +
        `bytes (file ${fileBytes} bytes, header ${fileBytes - bufferBytes}); the file is truncated`,
    );
  }
  const itemBytes = DTYPE_BYTES[dtype as SafetensorsDtype];
  const count = shapeSize(dims);
  if (count < 0 || count * itemBytes !== e - b) {
    fail(
      `${t} size mismatch: shape [${dims}] x ${dtype} (${itemBytes} bytes) needs ${
        count < 0 ? "too many" : count * itemBytes
      } bytes but data_offsets [${b}, ${e}] span ${e - b}`,
    );
  }
  return { dtype: dtype as SafetensorsDtype, shape: dims, byteLength: e - b, dataOffsets: [b, e] };
}

/**
 * Convert a floating-point tensor to `Float32Array`: `F32` is reinterpreted (copied only when the
 * bytes are not 4-aligned), `F16` and `BF16` are widened exactly, `F64` is rounded.
 *
 * @param tensor A tensor from a reader.
 * @returns `[product(shape)]` float32 values.
 * @throws {TypeError} For non-float dtypes.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tensorToF32 } from "./safetensors_format.ts";
 * const data = new Uint8Array(new Uint16Array([0x3c00]).buffer); // 1.0 as F16
 * assert.ok(tensorToF32({ dtype: "F16", shape: [1], data })[0] === 1);
 * ```
 */
export function tensorToF32(tensor: SafetensorsTensor): Float32Array {
  const { dtype, data } = tensor;
  const aligned = (k: number) => data.byteOffset % k === 0 ? data : data.slice();
  switch (dtype) {
    case "F32": {
      const d = aligned(4);
      return new Float32Array(d.buffer, d.byteOffset, d.byteLength / 4);
    }
    case "F16":
    case "BF16": {
      const d = aligned(2);
      const bits = new Uint16Array(d.buffer, d.byteOffset, d.byteLength / 2);
      return dtype === "F16" ? f16ToF32(bits) : bf16ToF32(bits);
    }
    case "F64": {
      const d = aligned(8);
      return Float32Array.from(new Float64Array(d.buffer, d.byteOffset, d.byteLength / 8));
    }
    default:
      throw new TypeError(
        `Cannot convert tensor to float32: dtype ${dtype} is not a float type (F32, F16, BF16, F64); read its raw bytes instead`,
      );
  }
}
