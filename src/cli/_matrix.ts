/**
 * Reading one 2-D float tensor from a safetensors file for the compressor commands
 * (`ferry quantize`, `ferry prune`), with errors that name the file and the tensors it holds.
 * @module
 */
import { SafetensorsFile } from "../io/safetensors.ts";
import { UsageError } from "./_common.ts";

/** A 2-D float tensor read as f32. */
export interface Matrix {
  data: Float32Array;
  shape: [number, number];
  dtype: string;
}

/** Reads tensor `name` of `path` as f32 `[rows, cols]`. */
export async function readMatrix(command: string, path: string, name: string): Promise<Matrix> {
  let file: SafetensorsFile;
  try {
    file = await SafetensorsFile.open(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) throw new UsageError(`${command}: --in ${path}: no such file`);
    throw err;
  }
  using _file = file;
  if (!file.names.includes(name)) {
    const names = file.names.slice(0, 12).join(", ") + (file.names.length > 12 ? ", …" : "");
    throw new UsageError(`${command}: ${path} has no tensor "${name}"; it holds: ${names}`);
  }
  const info = await file.read(name);
  if (info.shape.length !== 2) {
    throw new UsageError(
      `${command}: tensor "${name}" of ${path} has shape [${info.shape}]; expected a 2-D weight [rows, cols]`,
    );
  }
  if (!["F32", "F16", "BF16", "F64"].includes(info.dtype)) {
    throw new UsageError(`${command}: tensor "${name}" of ${path} is ${info.dtype}; expected a float tensor`);
  }
  return { data: await file.readF32(name), shape: [info.shape[0], info.shape[1]], dtype: info.dtype };
}

/** Throws a usage error unless the folder of `out` exists. */
export async function checkOutFolder(command: string, out: string): Promise<void> {
  const parent = out.includes("/") ? out.slice(0, out.lastIndexOf("/")) || "/" : ".";
  try {
    if (!(await Deno.stat(parent)).isDirectory) throw new Deno.errors.NotFound();
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory)) throw err;
    throw new UsageError(`${command}: --out ${out}: the folder ${parent} does not exist`);
  }
}
