/**
 * `ferry logits`: the full-sequence logits `[T, V]` for given token ids, written as one float32
 * tensor `logits` to a safetensors file (atomically), so other implementations can be checked
 * against Ferry.
 * @module
 */
import { writeSafetensors } from "../io/safetensors.ts";
import { loadModel } from "../models/load.ts";
import {
  checkIdsInVocab,
  noPositionals,
  openDevice,
  parseBackend,
  parseFlags,
  parseIds,
  readModelDir,
  required,
} from "./_common.ts";
import { checkOut, makeOutFolder } from "./_out.ts";

export const LOGITS_USAGE =
  `  logits               write the logits of token ids as float32 [T, vocab] to a safetensors file
      --model DIR          HF checkpoint folder
      --ids 1,2,3          input token ids, used as given (no BOS is added)
      --out FILE           the .safetensors file to write (tensor "logits"; written atomically)
      --backend B          auto | webgpu | cpu (default auto)`;

const FLAGS = {
  model: { type: "string" },
  ids: { type: "string" },
  out: { type: "string" },
  backend: { type: "string" },
} as const;

/** Runs `ferry logits`. */
export async function logitsCommand(args: string[]): Promise<number> {
  const cmd = "logits";
  const { values, positionals } = parseFlags(cmd, args, FLAGS);
  if (values.help) {
    console.log(
      `usage: deno task ferry logits --model DIR --ids 1,2,3 --out FILE.safetensors [options]\n\n${LOGITS_USAGE}`,
    );
    return 0;
  }
  noPositionals(cmd, positionals);
  const dir = required(cmd, values, "model", "DIR");
  const ids = parseIds(cmd, required(cmd, values, "ids", "1,2,3"));
  const out = required(cmd, values, "out", "FILE");
  const backend = parseBackend(cmd, values);
  await checkOut(cmd, out, "file", [{ flag: "--model", path: dir }]);
  const { config } = await readModelDir(cmd, dir);
  checkIdsInVocab(cmd, ids, config);

  const device = await openDevice(backend);
  try {
    using model = await loadModel(dir, { device });
    using logits = model.forward(Int32Array.from(ids)).logits; // [T, V]
    const data = await logits.toArray() as Float32Array;
    const [T, V] = logits.shape;
    await makeOutFolder(out);
    await writeSafetensors(out, { logits: { dtype: "F32", shape: [T, V], data } }, {
      format: "pt",
      input_ids: ids.join(","),
      backend: device.info.backend,
    });
    console.log(`wrote ${out}: logits F32 [${T}, ${V}] (${device.info.backend})`);
  } finally {
    device.destroy();
  }
  return 0;
}
