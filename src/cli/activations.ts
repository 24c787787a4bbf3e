/**
 * `ferry activations`: runs a checkpoint on Brown text and writes what each decoder linear receives
 * as its input, one float32 `[T, in]` tensor per weight named like the weight itself
 * (`model.layers.0.mlp.down_proj.weight`; a routed expert sees only the tokens routed to it). The
 * file is the calibration input of `ferry prune --method wanda --act FILE`, which picks the tensor
 * named like its `--tensor`.
 * @module
 */
import { modelSweepWeights } from "../compressors/analysis/model_weights.ts";
import { type TensorInput, writeSafetensors } from "../io/safetensors.ts";
import { loadModel } from "../models/load.ts";
import {
  fmtInt,
  noPositionals,
  openDevice,
  parseBackend,
  parseFlags,
  parseInteger,
  readModelDir,
  required,
  str,
  UsageError,
} from "./_common.ts";
import { calibrationIds, parseBrownData } from "./_calibration.ts";
import { checkOut, makeOutFolder } from "./_out.ts";

export const ACTIVATIONS_USAGE =
  `  activations          the inputs every decoder linear receives on Brown text, for Wanda (prune --act)
      --model DIR          HF checkpoint folder with tokenizer.json
      --data brown:GENRE   calibration text (default brown, training split)
      --tokens N           calibration tokens (default 512; each weight keeps at most N rows)
      --layers 0,1         decoder layers (default all)
      --out FILE           .safetensors to write: one F32 [T, in] tensor per weight, named like
                           the weight (model.layers.0.mlp.down_proj.weight)
      --backend B          auto | webgpu | cpu (default auto)`;

const FLAGS = {
  model: { type: "string" },
  data: { type: "string" },
  tokens: { type: "string" },
  layers: { type: "string" },
  out: { type: "string" },
  backend: { type: "string" },
} as const;

/** Runs `ferry activations`. */
export async function activationsCommand(args: string[]): Promise<number> {
  const cmd = "activations";
  const { values, positionals } = parseFlags(cmd, args, FLAGS);
  if (values.help) {
    console.log(
      `usage: deno task ferry activations --model DIR --out FILE.safetensors [options]\n\n${ACTIVATIONS_USAGE}`,
    );
    return 0;
  }
  noPositionals(cmd, positionals);
  const dir = required(cmd, values, "model", "DIR");
  const data = str(values, "data") ?? "brown";
  const genres = parseBrownData(cmd, data);
  const tokens = parseInteger(cmd, "tokens", str(values, "tokens") ?? "512", 1);
  const layersText = str(values, "layers");
  const out = required(cmd, values, "out", "FILE");
  const backend = parseBackend(cmd, values);
  await checkOut(cmd, out, "file", [{ flag: "--model", path: dir }]);
  const { config } = await readModelDir(cmd, dir);
  const layers = layersText?.split(",").map((s) => parseInteger(cmd, "layers", s, 0));
  const bad = layers?.find((l) => l >= config.layers);
  if (bad !== undefined) {
    throw new UsageError(`${cmd}: --layers: layer ${bad} is outside 0..${config.layers - 1}`);
  }
  const { ids, sequences } = await calibrationIds(cmd, dir, config, genres, tokens);

  const device = await openDevice(backend);
  try {
    using model = await loadModel(dir, { device });
    const weights = await modelSweepWeights(model, sequences, { layers, maxTokens: tokens });
    const tensors: Record<string, TensorInput> = {};
    for (const w of weights) {
      const cols = w.shape[1];
      const x = w.activations!; // [T_w, in]
      tensors[`${w.name}.weight`] = { dtype: "F32", shape: [x.length / cols, cols], data: x };
    }
    await makeOutFolder(out);
    await writeSafetensors(out, tensors, {
      format: "pt",
      model: dir,
      data,
      split: "train",
      tokens: String(ids.length),
      backend: device.info.backend,
    });
    const rows = weights.map((w) => w.activations!.length / w.shape[1]);
    console.log(
      `wrote ${out}: ${weights.length} tensors, the inputs of each weight ` +
        `(${fmtInt(Math.min(...rows))}..${fmtInt(Math.max(...rows))} rows) from ${fmtInt(ids.length)} ` +
        `tokens of ${data} (${device.info.backend})`,
    );
  } finally {
    device.destroy();
  }
  return 0;
}
