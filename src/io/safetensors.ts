/**
 * Safetensors read and write, byte-compatible with Hugging Face's `safetensors` library.
 *
 * - {@linkcode SafetensorsFile}: lazy reader; parses the header on open and reads each tensor's
 *   exact byte range on demand, so a multi-GB checkpoint is never loaded whole.
 * - {@linkcode writeSafetensors}: atomic, streaming writer (temporary name, then rename).
 * - {@linkcode serializeSafetensors} / {@linkcode parseSafetensors}: the same, in memory.
 *
 * Writers lay tensors out the way the reference does: by descending dtype rank (8-byte types
 * first, so every tensor is aligned to its item size), then by name in byte order, with no gaps;
 * the JSON header is compact and padded with spaces to a multiple of 8 bytes. Metadata keys are
 * written in sorted order (the reference uses a hash map, so with two or more keys its order is
 * unspecified).
 *
 * @example Write, then read one tensor back lazily
 * ```ts
 * import assert from "node:assert/strict";
 * import { SafetensorsFile, writeSafetensors } from "./safetensors.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSafetensors(`${dir}/model.safetensors`, {
 *   "lm_head.weight": { dtype: "F32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
 * }, { format: "pt" });
 * using st = await SafetensorsFile.open(`${dir}/model.safetensors`);
 * assert.ok(st.info("lm_head.weight").byteLength === 16);
 * assert.ok((await st.readF32("lm_head.weight"))[3] === 4);
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */

import { writeChunksAtomic } from "./atomic.ts";
import {
  DTYPE_BYTES,
  DTYPE_RANK,
  HEADER_PREFIX_BYTES,
  isSafetensorsDtype,
  METADATA_KEY,
  parseHeader,
  readHeaderLength,
  SAFETENSORS_DTYPES,
  type SafetensorsDtype,
  type SafetensorsTensor,
  shapeSize,
} from "./safetensors_format.ts";

export * from "./safetensors_format.ts";
export { SafetensorsFile } from "./safetensors_reader.ts";

/** Element storage a writer accepts: raw little-endian bytes, or a typed array matching the dtype. */
export type TensorData =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Float16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

/** A tensor to write. `data` holds `product(shape)` elements of `dtype`. */
export interface TensorInput {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

/** Tensors to write, by name: a plain object or a `Map`. */
export type TensorsInput = Readonly<Record<string, TensorInput>> | ReadonlyMap<string, TensorInput>;

/** Typed arrays other than `Uint8Array` (which is raw bytes for any dtype), and the dtypes they can hold. */
const VIEW_DTYPES: Readonly<Record<string, readonly SafetensorsDtype[]>> = {
  Int8Array: ["I8"],
  Uint16Array: ["F16", "BF16", "U16"],
  Int16Array: ["I16"],
  Float16Array: ["F16"],
  Uint32Array: ["U32"],
  Int32Array: ["I32"],
  Float32Array: ["F32"],
  Float64Array: ["F64"],
  BigInt64Array: ["I64"],
  BigUint64Array: ["U64"],
};

/** Validate one input tensor and return its raw bytes (a view, no copy). */
function tensorBytes(name: string, t: TensorInput): Uint8Array {
  const where = `Cannot write tensor "${name}" to safetensors`;
  if (name === METADATA_KEY) {
    throw new TypeError(`${where}: the name is reserved for metadata; rename the tensor`);
  }
  if (!isSafetensorsDtype(t.dtype)) {
    throw new TypeError(
      `${where}: unknown dtype ${JSON.stringify(t.dtype)} (supported: ${SAFETENSORS_DTYPES.join(", ")})`,
    );
  }
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new TypeError(
      `${where}: shape must be an array of non-negative integers, received ${JSON.stringify(t.shape)}`,
    );
  }
  const data = t.data;
  if (!ArrayBuffer.isView(data) || data instanceof DataView) {
    throw new TypeError(`${where}: data must be a Uint8Array or a typed array, received ${typeof data}`);
  }
  if (!(data instanceof Uint8Array)) {
    const kind = data.constructor.name;
    if (!VIEW_DTYPES[kind]?.includes(t.dtype)) {
      throw new TypeError(
        `${where}: a ${kind} cannot hold ${t.dtype} data; pass raw bytes as a Uint8Array or a matching typed array`,
      );
    }
  }
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const count = shapeSize(t.shape);
  const need = count * DTYPE_BYTES[t.dtype];
  if (count < 0 || bytes.length !== need) {
    throw new TypeError(
      `${where}: shape [${t.shape}] x ${t.dtype} needs ${need} bytes, received ${bytes.length}`,
    );
  }
  if (t.dtype === "BOOL" && bytes.some((b) => b > 1)) {
    throw new TypeError(`${where}: BOOL bytes must be 0 or 1`);
  }
  return bytes;
}

/** Byte-wise comparison of UTF-8 encodings: the order Rust's `str::cmp` uses. */
function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

/** A validated layout: the 8-byte prefix plus padded header, then tensor bytes in file order. */
export interface SafetensorsLayout {
  /** `[8 + N]` bytes: the u64 header length and the space-padded JSON header. */
  readonly header: Uint8Array;
  /** Tensor bytes in file order; concatenated after `header` they form the byte buffer. */
  readonly chunks: readonly Uint8Array[];
  /** Total file size: `header.length + sum(chunk lengths)`. */
  readonly byteLength: number;
}

/**
 * Validate tensors and compute the exact file layout, without copying tensor data.
 *
 * @param tensors Tensors by name.
 * @param metadata Optional `__metadata__` map; omitted from the header when `undefined`.
 * @throws {TypeError} On an unknown dtype, bad shape, wrong byte count, mismatched typed array,
 * the reserved name `__metadata__`, or a non-string metadata value.
 */
export function layoutSafetensors(
  tensors: TensorsInput,
  metadata?: Record<string, string>,
): SafetensorsLayout {
  const list = (tensors instanceof Map ? [...tensors] : Object.entries(tensors)) as [string, TensorInput][];
  const enc = new TextEncoder();
  const items = list.map(([name, t]) => ({ name, key: enc.encode(name), t, bytes: tensorBytes(name, t) }));
  // Reference order: descending dtype rank, then name.
  items.sort((a, b) => DTYPE_RANK[b.t.dtype] - DTYPE_RANK[a.t.dtype] || compareBytes(a.key, b.key));

  const parts: string[] = [];
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") {
        throw new TypeError(
          `Cannot write safetensors metadata: value for "${k}" must be a string, received ${typeof v}`,
        );
      }
    }
    const keys = Object.keys(metadata).sort((a, b) => compareBytes(enc.encode(a), enc.encode(b)));
    parts.push(
      `"${METADATA_KEY}":{${
        keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(",")
      }}`,
    );
  }
  let offset = 0;
  for (const { name, t, bytes } of items) {
    const end = offset + bytes.length;
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"${t.dtype}","shape":[${
        t.shape.join(",")
      }],"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const json = enc.encode(`{${parts.join(",")}}`);
  const n = Math.ceil(json.length / 8) * 8; // pad with spaces so the buffer starts 8-aligned
  const header = new Uint8Array(HEADER_PREFIX_BYTES + n).fill(0x20, HEADER_PREFIX_BYTES + json.length);
  new DataView(header.buffer).setBigUint64(0, BigInt(n), true);
  header.set(json, HEADER_PREFIX_BYTES);
  return { header, chunks: items.map((i) => i.bytes), byteLength: header.length + offset };
}

/**
 * Serialize tensors to safetensors bytes in memory. Same layout as {@linkcode writeSafetensors}.
 *
 * @param tensors Tensors by name.
 * @param metadata Optional string→string `__metadata__` map (e.g. `{ format: "pt" }`).
 * @returns The complete file contents.
 * @throws {TypeError} On invalid tensors or metadata (see {@linkcode layoutSafetensors}).
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSafetensors, serializeSafetensors } from "./safetensors.ts";
 * const bytes = serializeSafetensors({ b: { dtype: "I32", shape: [2], data: new Int32Array([7, 8]) } });
 * assert.ok(parseSafetensors(bytes).tensors.get("b")?.data.length === 8);
 * ```
 */
export function serializeSafetensors(tensors: TensorsInput, metadata?: Record<string, string>): Uint8Array {
  const { header, chunks, byteLength } = layoutSafetensors(tensors, metadata);
  const out = new Uint8Array(byteLength);
  out.set(header);
  let at = header.length;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Atomically write tensors to a safetensors file: every input is validated first, then the file is
 * streamed to a temporary name and renamed over `path`, so a failure never leaves a partial file.
 *
 * @param path Destination file; replaced if it exists. Its folder must exist.
 * @param tensors Tensors by name.
 * @param metadata Optional string→string `__metadata__` map. Hugging Face transformers expects
 * `{ format: "pt" }` in model files.
 * @throws {TypeError} On invalid tensors or metadata, before anything is written.
 * @example
 * ```ts
 * import { writeSafetensors } from "./safetensors.ts";
 * const dir = await Deno.makeTempDir();
 * await writeSafetensors(`${dir}/a.safetensors`, { x: { dtype: "U8", shape: [3], data: new Uint8Array(3) } });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeSafetensors(
  path: string,
  tensors: TensorsInput,
  metadata?: Record<string, string>,
): Promise<void> {
  const { header, chunks } = layoutSafetensors(tensors, metadata);
  await writeChunksAtomic(path, [header, ...chunks]);
}

/** The contents of a safetensors file, parsed in memory. */
export interface ParsedSafetensors {
  /** Tensors in file order; each `data` is a view into the input bytes (no copy). */
  readonly tensors: Map<string, SafetensorsTensor>;
  readonly metadata: Readonly<Record<string, string>>;
}

/**
 * Parse and validate a whole safetensors file already in memory. Prefer
 * {@linkcode SafetensorsFile} for files on disk: it reads tensors lazily.
 *
 * @param bytes The complete file contents.
 * @param path Shown in error messages.
 * @throws {FormatError} When the bytes are not a valid safetensors file.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseSafetensors, serializeSafetensors } from "./safetensors.ts";
 * const bytes = serializeSafetensors({}, { format: "pt" });
 * assert.ok(parseSafetensors(bytes).metadata.format === "pt");
 * ```
 */
export function parseSafetensors(bytes: Uint8Array, path = "<bytes>"): ParsedSafetensors {
  const n = readHeaderLength(bytes, bytes.length, path);
  const header = parseHeader(
    bytes.subarray(HEADER_PREFIX_BYTES, HEADER_PREFIX_BYTES + n),
    bytes.length,
    path,
  );
  const tensors = new Map<string, SafetensorsTensor>();
  for (const [name, info] of header.tensors) {
    const [b, e] = info.dataOffsets;
    tensors.set(name, {
      dtype: info.dtype,
      shape: info.shape,
      data: bytes.subarray(header.dataStart + b, header.dataStart + e),
    });
  }
  return { tensors, metadata: header.metadata };
}
