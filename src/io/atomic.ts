/**
 * Crash-safe file writes: write everything to a temporary file in the destination's folder,
 * flush it to disk, then rename it over the destination. Readers see either the old file or the
 * complete new one, never a half-written file, and a failed write leaves the old file untouched.
 *
 * @module
 */
import { type FileHandle, open } from "node:fs/promises";
import { pid, remove, rename } from "../host/runtime.ts";

/** Write every byte of `chunk`, looping over short writes. */
async function writeAll(file: FileHandle, chunk: Uint8Array): Promise<void> {
  let off = 0;
  while (off < chunk.length) off += (await file.write(chunk, off, chunk.length - off)).bytesWritten;
}

/** Temporary sibling of `path`: same folder (so the rename stays on one filesystem), unique name. */
function tempPath(path: string): string {
  return `${path}.${pid()}-${crypto.randomUUID().slice(0, 8)}.tmp`;
}

/**
 * Atomically write chunks to `path`, streaming: the chunks are never joined in memory, so a
 * multi-GB checkpoint can be written tensor by tensor. The folder must exist.
 *
 * @param path Destination file; replaced if it exists.
 * @param chunks Bytes to write, in order. A sync or async iterable; an error thrown while
 * iterating aborts the write and removes the temporary file.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeChunksAtomic } from "./atomic.ts";
 * const dir = await Deno.makeTempDir();
 * await writeChunksAtomic(`${dir}/out.bin`, [new Uint8Array([1, 2]), new Uint8Array([3])]);
 * assert.ok((await Deno.readFile(`${dir}/out.bin`)).length === 3);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeChunksAtomic(
  path: string,
  chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
): Promise<void> {
  const tmp = tempPath(path);
  const file = await open(tmp, "wx"); // created new, never an existing file
  try {
    try {
      for await (const chunk of chunks) await writeAll(file, chunk);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await remove(tmp).catch(() => {});
    throw err;
  }
}

/**
 * Atomically write `data` to `path` (temporary name, then rename). Strings are written as UTF-8.
 * The folder must exist.
 *
 * @param path Destination file; replaced if it exists.
 * @param data File contents.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeFileAtomic } from "./atomic.ts";
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/config.json`, '{"r": 8}\n');
 * assert.ok(await Deno.readTextFile(`${dir}/config.json`) === '{"r": 8}\n');
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  return writeChunksAtomic(path, [typeof data === "string" ? new TextEncoder().encode(data) : data]);
}
