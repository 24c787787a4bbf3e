/**
 * The one rule every command follows for `--out`: a missing folder on the way is created when the
 * output is written; `--out` must not be an existing folder (for a file), an existing file (for a
 * folder), one of the command's inputs, or inside an input checkpoint folder. The checks run before
 * any work, so a refused command writes nothing.
 * @module
 */
import { type FileInfo, isNotFound, mkdir, realPath, stat } from "../host/runtime.ts";
import { basename, dirname, join, resolve, sep } from "node:path";
import { UsageError } from "./_common.ts";

/** An input a command reads: a file (`--in FILE`) or a checkpoint folder (`--model DIR`). */
export interface OutInput {
  flag: string;
  path: string;
}

async function statOrNull(path: string): Promise<FileInfo | null> {
  try {
    return await stat(path);
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

/**
 * The nearest existing ancestor of `path` (`path` itself excluded), and `path` with that ancestor
 * resolved through symbolic links (so two spellings of one file compare equal).
 */
async function locate(path: string): Promise<{ above: string; aboveInfo: FileInfo; real: string }> {
  const rest: string[] = [basename(resolve(path))];
  let p = dirname(resolve(path));
  for (;;) {
    const info = await statOrNull(p);
    if (info) return { above: p, aboveInfo: info, real: join(await realPath(p), ...rest) };
    rest.unshift(basename(p));
    p = dirname(p); // the root always exists
  }
}

/**
 * Checks an `--out` path before any work is done.
 *
 * @param command the command name, for messages
 * @param out the `--out` value
 * @param kind whether `--out` names a file to write or a folder to write into
 * @param inputs the files and folders the command reads
 * @throws {UsageError} naming what is wrong with `--out` and what to pass instead
 */
export async function checkOut(
  command: string,
  out: string,
  kind: "file" | "folder",
  inputs: readonly OutInput[] = [],
): Promise<void> {
  const info = await statOrNull(out);
  const located = await locate(out);
  const { above, aboveInfo } = located;
  const real = info ? await realPath(out) : located.real;
  if (!aboveInfo.isDirectory) {
    throw new UsageError(`${command}: --out ${out}: ${above} is a file, not a folder`);
  }
  if (kind === "file" && info?.isDirectory) {
    throw new UsageError(
      `${command}: --out ${out} is a folder; pass a file path such as ${
        out.replace(/[\\/]+$/, "")
      }/out.safetensors`,
    );
  }
  if (kind === "folder" && info && !info.isDirectory) {
    throw new UsageError(`${command}: --out ${out} is a file; pass a folder (created if missing)`);
  }
  for (const input of inputs) {
    const inputInfo = await statOrNull(input.path);
    if (!inputInfo) continue;
    const inReal = await realPath(input.path);
    if (real === inReal) {
      throw new UsageError(
        `${command}: --out ${out} is the ${input.flag} file; write to another file (inputs are never overwritten)`,
      );
    }
    if (inputInfo.isDirectory && real.startsWith(inReal + sep)) {
      throw new UsageError(
        `${command}: --out ${out} is inside the ${input.flag} folder ${input.path}; write outside the checkpoint`,
      );
    }
  }
}

/** Creates the folder that `out` (a file) goes into, with any missing parents. */
export async function makeOutFolder(out: string): Promise<void> {
  await mkdir(dirname(resolve(out)), { recursive: true });
}
