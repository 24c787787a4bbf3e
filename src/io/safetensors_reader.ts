/**
 * Lazy safetensors reader: {@linkcode SafetensorsFile} parses and validates the header on open
 * and reads each tensor's exact byte range on demand (seek + read), so memory use is the size of
 * the tensors you ask for, not the size of the file.
 *
 * @module
 */

import { RandomAccessFile } from "../host/runtime.ts";
import { FormatError } from "../errors.ts";
import {
  HEADER_PREFIX_BYTES,
  parseHeader,
  readHeaderLength,
  type SafetensorsHeader,
  type SafetensorsTensor,
  type TensorInfo,
  tensorToF32,
} from "./safetensors_format.ts";

/**
 * An open safetensors file. Only the header is held in memory; tensors are read on demand, by
 * positioned reads (no shared cursor, so concurrent reads cannot interleave). Close it when done,
 * or open it with `using` so it closes itself.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SafetensorsFile, writeSafetensors } from "./safetensors.ts";
 * const path = `${await Deno.makeTempDir()}/w.safetensors`;
 * await writeSafetensors(path, { w: { dtype: "BF16", shape: [2], data: new Uint16Array([0x3f80, 0x4000]) } });
 * using st = await SafetensorsFile.open(path);
 * assert.ok(st.names[0] === "w" && st.info("w").dtype === "BF16");
 * const t = await st.read("w"); // { dtype: "BF16", shape: [2], data: Uint8Array(4) }
 * assert.ok(t.data.length === 4 && (await st.readF32("w"))[1] === 2);
 * ```
 */
export class SafetensorsFile implements Disposable {
  /** The path the file was opened from. */
  readonly path: string;
  /** Size of the file in bytes. */
  readonly byteLength: number;
  #file: RandomAccessFile | null;
  #header: SafetensorsHeader;

  private constructor(path: string, file: RandomAccessFile, header: SafetensorsHeader, byteLength: number) {
    this.path = path;
    this.#file = file;
    this.#header = header;
    this.byteLength = byteLength;
  }

  /**
   * Open a file and parse and validate its header (8-byte length, then the JSON). No tensor data
   * is read.
   *
   * @param path The `.safetensors` file.
   * @throws {FormatError} When the header is malformed (see `parseHeader` for every check).
   * @throws {Error} When the file does not exist (`isNotFound(err)` in `src/host/runtime.ts`).
   */
  static open(path: string | URL): Promise<SafetensorsFile> {
    try {
      return Promise.resolve(SafetensorsFile.#openSync(path));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  static #openSync(path: string | URL): SafetensorsFile {
    const shown = path instanceof URL ? decodeURIComponent(path.pathname) : path;
    const file = RandomAccessFile.open(path);
    try {
      const size = file.size;
      const prefix = new Uint8Array(Math.min(HEADER_PREFIX_BYTES, size));
      file.readAt(prefix, 0);
      const n = readHeaderLength(prefix, size, shown);
      const json = new Uint8Array(n);
      const got = file.readAt(json, HEADER_PREFIX_BYTES);
      if (got !== n) readHeaderLength(prefix, HEADER_PREFIX_BYTES + got, shown); // shrank since stat: report it
      return new SafetensorsFile(shown, file, parseHeader(json, size, shown), size);
    } catch (err) {
      file.close();
      throw err;
    }
  }

  /** Tensor names in file (offset) order. */
  get names(): string[] {
    return [...this.#header.tensors.keys()];
  }

  /** The `__metadata__` map; `{}` when the file has none. */
  get metadata(): Readonly<Record<string, string>> {
    return this.#header.metadata;
  }

  /** Absolute file offset where the tensor byte buffer starts (`8 + header length`). */
  get dataStart(): number {
    return this.#header.dataStart;
  }

  /** `true` once {@linkcode close} has been called. */
  get closed(): boolean {
    return this.#file === null;
  }

  /** `true` when the file holds a tensor called `name`. */
  has(name: string): boolean {
    return this.#header.tensors.has(name);
  }

  /**
   * Dtype, shape, byte length and offsets of one tensor, from the header (no I/O).
   *
   * @throws {RangeError} When the file has no tensor called `name`.
   */
  info(name: string): TensorInfo {
    const info = this.#header.tensors.get(name);
    if (info === undefined) {
      const some = this.names.slice(0, 5).map((n) => JSON.stringify(n)).join(", ");
      throw new RangeError(
        `Cannot find tensor ${
          JSON.stringify(name)
        } in ${this.path}: it holds ${this.#header.tensors.size} tensors${
          some ? ` (${some}${this.#header.tensors.size > 5 ? ", ..." : ""})` : ""
        }; check the name or use .names`,
      );
    }
    return info;
  }

  /**
   * Read one tensor's bytes: exactly `info(name).byteLength` bytes, nothing else.
   *
   * @returns `{ dtype, shape, data }` where `data` is a fresh `[byteLength]` `Uint8Array`.
   * @throws {RangeError} When the file has no tensor called `name`.
   * @throws {TypeError} When the file is closed.
   * @throws {FormatError} When the file became shorter after it was opened.
   */
  async read(name: string): Promise<SafetensorsTensor> {
    const info = this.info(name);
    const data = new Uint8Array(info.byteLength);
    if (data.length > 0) await this.#readAt(name, this.#header.dataStart + info.dataOffsets[0], data);
    else this.#requireOpen(name);
    return { dtype: info.dtype, shape: info.shape, data };
  }

  /**
   * Read a float tensor as float32: `F32` as is, `F16`/`BF16` widened exactly, `F64` rounded.
   *
   * @returns `[product(shape)]` values in C order.
   * @throws {TypeError} For non-float dtypes, or when the file is closed.
   */
  async readF32(name: string): Promise<Float32Array> {
    return tensorToF32(await this.read(name));
  }

  /** Close the file handle; later reads throw. Idempotent. */
  close(): void {
    this.#file?.close();
    this.#file = null;
  }

  /** Same as {@linkcode close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #requireOpen(name: string): RandomAccessFile {
    if (this.#file === null) {
      throw new TypeError(
        `Cannot read tensor ${JSON.stringify(name)} from ${this.path}: the file is closed; open it again`,
      );
    }
    return this.#file;
  }

  /** One positioned read of `into.length` bytes at `pos`. */
  #readAt(name: string, pos: number, into: Uint8Array): Promise<void> {
    const got = this.#requireOpen(name).readAt(into, pos);
    if (got !== into.length) {
      return Promise.reject(
        new FormatError(
          `Cannot read tensor ${JSON.stringify(name)} from ${this.path}: the file ends at byte ${
            pos + got
          }, before the tensor's end at byte ${
            pos + into.length
          }; it was truncated after opening, re-save or re-download it`,
          this.path,
        ),
      );
    }
    return Promise.resolve();
  }
}
