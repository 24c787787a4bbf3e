/**
 * `ferry prune`: prunes one 2-D tensor of a safetensors file (magnitude, Wanda or 2:4) and writes
 * the pruned weight as float32 tensor `pruned` of the same shape (zeros where pruned), with the
 * achieved sparsity in the metadata.
 * @module
 */
import { writeSafetensors } from "../io/safetensors.ts";
import { getPruner, listPruners, type MaskMethod, pruneWeight } from "../compressors/prune/masks.ts";
import { noPositionals, parseFlags, parseNumber, required, str, UsageError } from "./_common.ts";
import { openSafetensors, readMatrix } from "./_matrix.ts";
import { checkOut, makeOutFolder } from "./_out.ts";

export const PRUNE_USAGE =
  `  prune                prune one 2-D tensor; write it as float32 "pruned" (zeros where pruned)
      --method M           magnitude | wanda | 2:4 (2:4 keeps the 2 largest of every 4 inputs)
      --sparsity S         fraction pruned, in [0, 1) (2:4: 0.5, the default for it)
      --in FILE            .safetensors file holding the tensor
      --tensor NAME        the tensor's name in FILE
      --act FILE           wanda (and activation-aware 2:4): calibration inputs of this weight in a
                           .safetensors file: [T, in] activations or [in] norms ‖X_j‖₂
                           (ferry activations writes one for every linear of a checkpoint)
      --act-tensor NAME    the tensor's name in --act (default: the --tensor name if --act has
                           it, else "x")
      --out FILE           .safetensors to write ("pruned" F32; metadata sparsity, method)`;

const FLAGS = {
  method: { type: "string" },
  sparsity: { type: "string" },
  in: { type: "string" },
  tensor: { type: "string" },
  act: { type: "string" },
  "act-tensor": { type: "string" },
  out: { type: "string" },
} as const;

/** Runs `ferry prune`. */
export async function pruneCommand(args: string[]): Promise<number> {
  const cmd = "prune";
  const { values, positionals } = parseFlags(cmd, args, FLAGS);
  if (values.help) {
    console.log(
      `usage: deno task ferry prune --method M --sparsity S --in FILE --tensor NAME --out FILE\n\n${PRUNE_USAGE}`,
    );
    return 0;
  }
  noPositionals(cmd, positionals);
  const methods = listPruners(); // the registered pruners
  const method: MaskMethod = required(cmd, values, "method", methods.join("|"));
  if (!methods.includes(method)) {
    throw new UsageError(`${cmd}: --method must be one of ${methods.join(", ")}: received ${method}`);
  }
  const pruner = getPruner(method);
  const sText = str(values, "sparsity") ?? pruner.fixedSparsity?.toString();
  if (sText === undefined) throw new UsageError(`${cmd}: --sparsity S is required, in [0, 1)`);
  const sparsity = parseNumber(cmd, "sparsity", sText, { min: 0, max: 1, maxExclusive: true });
  const input = required(cmd, values, "in", "FILE");
  const name = required(cmd, values, "tensor", "NAME");
  const out = required(cmd, values, "out", "FILE");
  const act = str(values, "act");
  if (pruner.inputNorms === "required" && act === undefined) {
    throw new UsageError(
      `${cmd}: --method ${method} needs calibration inputs: --act FILE (write one with ferry activations)`,
    );
  }
  await checkOut(cmd, out, "file", [
    { flag: "--in", path: input },
    ...(act === undefined ? [] : [{ flag: "--act", path: act }]),
  ]);
  const w = await readMatrix(cmd, input, name);
  const inputNorms = act === undefined
    ? undefined
    : await readNorms(cmd, act, str(values, "act-tensor"), name, w.shape[1]);
  let r;
  try {
    r = pruneWeight(w.data, w.shape, { method, sparsity, inputNorms });
  } catch (err) {
    if (err instanceof RangeError || err instanceof TypeError) throw new UsageError(`${cmd}: ${err.message}`);
    throw err;
  }
  await makeOutFolder(out);
  await writeSafetensors(out, { pruned: { dtype: "F32", shape: w.shape, data: r.pruned } }, {
    format: "pt",
    source: `${input}:${name}`,
    method,
    sparsity: String(r.sparsity),
    requested_sparsity: String(sparsity),
  });
  console.log(`wrote ${out}: pruned F32 [${w.shape}] by ${method}, sparsity ${r.sparsity.toFixed(4)}`);
  return 0;
}

/**
 * `[in]` ‖X_j‖₂ from a `[T, in]` activation tensor or a `[in]` norm vector: `--act-tensor`, else the
 * weight's own name (as `ferry activations` writes them), else `x`.
 */
async function readNorms(
  cmd: string,
  path: string,
  given: string | undefined,
  weight: string,
  cols: number,
): Promise<Float32Array> {
  using file = await openSafetensors(cmd, "--act", path);
  const name = given ?? (file.names.includes(weight) ? weight : "x");
  if (!file.names.includes(name)) {
    throw new UsageError(
      `${cmd}: ${path} has no tensor "${name}"; it holds: ${file.names.slice(0, 8).join(", ")}${
        file.names.length > 8 ? `, ... (${file.names.length} in all)` : ""
      }; pick one with --act-tensor`,
    );
  }
  const shape = (await file.read(name)).shape;
  const data = await file.readF32(name);
  if (shape.length === 1 && shape[0] === cols) return data;
  if (shape.length === 2 && shape[1] === cols) {
    const norms = new Float64Array(cols);
    for (let i = 0; i < data.length; i++) norms[i % cols] += data[i] * data[i];
    return Float32Array.from(norms, Math.sqrt);
  }
  throw new UsageError(
    `${cmd}: --act tensor "${name}" has shape [${shape}]; expected [T, ${cols}] activations or [${cols}] norms`,
  );
}
