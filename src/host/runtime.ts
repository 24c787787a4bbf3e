/**
 * The host runtime: files, the process and the terminal through `node:` APIs that Deno and Bun both
 * provide, so Ferry runs on either (`deno task ferry …`, `bun run src/cli.ts …`). Code outside
 * `src/host/` reaches the file system and the process through this module, not `Deno.*`.
 *
 * Not-found errors are recognised by {@link isNotFound} (Node's `ENOENT`/`ENOTDIR` codes, and Deno's
 * `NotFound` for code that still calls `Deno.*`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isNotFound, makeTempDir, readTextFile, remove, stat, writeTextFile } from "./runtime.ts";
 * const dir = await makeTempDir("ferry-doc-");
 * await writeTextFile(`${dir}/a.txt`, "hi");
 * assert.equal(await readTextFile(`${dir}/a.txt`), "hi");
 * assert.ok((await stat(`${dir}/a.txt`)).isFile);
 * await stat(`${dir}/missing`).catch((err) => assert.ok(isNotFound(err)));
 * await remove(dir, { recursive: true });
 * ```
 * @module
 */
import { closeSync, fstatSync, openSync, promises as fsp, readSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";

/** What {@link stat} reports. */
export interface FileInfo {
  readonly isFile: boolean;
  readonly isDirectory: boolean;
  readonly size: number;
}

/** One entry of {@link readDir}. */
export interface DirEntry {
  readonly name: string;
  readonly isFile: boolean;
  readonly isDirectory: boolean;
}

/** True for "no such file or directory" (and "a path component is not a directory"). */
export function isNotFound(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "ENOENT" || code === "ENOTDIR") return true;
  const deno = (globalThis as { Deno?: { errors?: { NotFound?: unknown; NotADirectory?: unknown } } }).Deno;
  const is = (c: unknown) => typeof c === "function" && err instanceof (c as new () => unknown);
  return is(deno?.errors?.NotFound) || is(deno?.errors?.NotADirectory);
}

/** File or folder facts; follows symbolic links. */
export async function stat(path: string | URL): Promise<FileInfo> {
  const s = await fsp.stat(path);
  return { isFile: s.isFile(), isDirectory: s.isDirectory(), size: s.size };
}

/** A file's bytes. */
export async function readFile(path: string | URL): Promise<Uint8Array<ArrayBuffer>> {
  const b = await fsp.readFile(path);
  return new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, b.byteLength);
}

/** A UTF-8 file's text. */
export function readTextFile(path: string | URL): Promise<string> {
  return fsp.readFile(path, "utf8");
}

/** Writes `text` as UTF-8 (not atomic: see `src/io/atomic.ts` for files others read). */
export function writeTextFile(path: string | URL, text: string): Promise<void> {
  return fsp.writeFile(path, text);
}

/** A folder's entries (not recursive, any order). */
export async function readDir(path: string | URL): Promise<DirEntry[]> {
  const entries = await fsp.readdir(path, { withFileTypes: true });
  return entries.map((e) => ({ name: e.name, isFile: e.isFile(), isDirectory: e.isDirectory() }));
}

/** Creates a folder (and its parents with `recursive`). */
export async function mkdir(path: string | URL, options: { recursive?: boolean } = {}): Promise<void> {
  await fsp.mkdir(path, { recursive: options.recursive ?? false });
}

/** Removes a file, or a folder (with its contents when `recursive`). */
export async function remove(path: string | URL, options: { recursive?: boolean } = {}): Promise<void> {
  if (options.recursive) await fsp.rm(path, { recursive: true });
  else if ((await fsp.lstat(path)).isDirectory()) await fsp.rmdir(path);
  else await fsp.unlink(path);
}

/** Renames (moves) `from` to `to`, replacing a file at `to`. */
export function rename(from: string, to: string): Promise<void> {
  return fsp.rename(from, to);
}

/** Copies a file. */
export function copyFile(from: string | URL, to: string | URL): Promise<void> {
  return fsp.copyFile(from, to);
}

/** The canonical absolute path (symbolic links resolved). */
export function realPath(path: string): Promise<string> {
  return fsp.realpath(path);
}

/** A new empty folder under the system's temporary folder. */
export function makeTempDir(prefix = "ferry-"): Promise<string> {
  return fsp.mkdtemp(join(tmpdir(), prefix));
}

/**
 * A file opened for positioned reads (synchronous reads at an offset: no shared cursor, so
 * concurrent readers cannot interleave). Close it when done.
 */
export class RandomAccessFile {
  #fd: number | null;
  /** The size when it was opened. */
  readonly size: number;

  private constructor(fd: number) {
    this.#fd = fd;
    this.size = fstatSync(fd).size;
  }

  /** Opens `path` for reading. */
  static open(path: string | URL): RandomAccessFile {
    return new RandomAccessFile(openSync(path, "r"));
  }

  /** Reads up to `into.length` bytes at `position`; returns how many were read (fewer at the end). */
  readAt(into: Uint8Array, position: number): number {
    if (this.#fd === null) throw new TypeError("Cannot read: the file is closed");
    let off = 0;
    while (off < into.length) {
      const n = readSync(this.#fd, into, off, into.length - off, position + off);
      if (n === 0) break;
      off += n;
    }
    return off;
  }

  /** Closes the file; idempotent. */
  close(): void {
    if (this.#fd === null) return;
    closeSync(this.#fd);
    this.#fd = null;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/** The command-line arguments after the script. */
export function args(): string[] {
  const deno = (globalThis as { Deno?: { args?: string[] } }).Deno;
  return deno?.args ? [...deno.args] : process.argv.slice(2);
}

/** Ends the process with `code`. */
export function exit(code: number): never {
  process.exit(code);
}

/** This process's id. */
export function pid(): number {
  return process.pid;
}

/** Whether standard output or error is a terminal. */
export function isTerminal(stream: "stdout" | "stderr"): boolean {
  return (stream === "stdout" ? process.stdout : process.stderr).isTTY === true;
}

/** Writes all of `bytes` to standard output or error, synchronously (ordered with console output). */
export function writeAllSync(stream: "stdout" | "stderr", bytes: Uint8Array): void {
  const fd = stream === "stdout" ? 1 : 2;
  let at = 0;
  while (at < bytes.length) at += writeSync(fd, bytes, at, bytes.length - at);
}
