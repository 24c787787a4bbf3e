/**
 * Reading one 2-D float tensor from a safetensors file for the compressor commands
 * (`ferry quantize`, `ferry prune`), with errors that name the file and the tensors it holds.
 * @module
 */
import { isNotFound } from "../host/runtime.ts";
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
  using file = await openSafetensors(command, "--in", path);
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

/** Opens a safetensors file named by `flag`; a missing file is a usage error. */
export async function openSafetensors(command: string, flag: string, path: string): Promise<SafetensorsFile> {
  try {
    return await SafetensorsFile.open(path);
  } catch (err) {
    if (isNotFound(err)) {
      throw new UsageError(`${command}: ${flag} ${path}: no such file`);
    }
    throw err;
  }
}
