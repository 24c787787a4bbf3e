/**
 * `ferry floe`: FloE (https://arxiv.org/abs/2505.05950) from the command line, for checking Ferry
 * against an independent reference.
 *
 * - `floe calibrate`: thresholds `t[l][e]` (F32 `[L, E]`, tensor `thresholds`) calibrated over the
 *   given ids as one sequence (one round), with every MoE layer's up projection at `--up-bits`.
 * - `floe logits`: the FloE model's logits (F32 `[T, V]`, tensor `logits`) on the ids in one forward,
 *   sparse experts in every MoE layer but `--dense-layers`.
 *
 * Inputs are checked before anything is written; files are written atomically.
 * @module
 */
import { checkOut, makeOutFolder } from "./_out.ts";
import { calibrateThresholds } from "../floe/calibrate.ts";
import { floeCompress } from "../floe/compress.ts";
import { FloeThresholds } from "../floe/thresholds.ts";
import { writeSafetensors } from "../io/safetensors.ts";
import { FLOE_TABLES_USAGE, floeTablesCommand } from "./floe_tables.ts";
import { FLOE_BENCH_USAGE, floeBenchCommand } from "./floe_bench.ts";
import { parseSparsity, parseUpBits } from "./_floe_args.ts";
import type { ModelConfig } from "../models/config.ts";
import { loadModel } from "../models/load.ts";
import {
  checkIdsInVocab,
  type FlagValues,
  isFile,
  noPositionals,
  openDevice,
  parseBackend,
  parseFlags,
  parseIds,
  parseInteger,
  readModelDir,
  required,
  str,
  UsageError,
} from "./_common.ts";

export const FLOE_USAGE =
  `  floe calibrate       calibrate FloE thresholds t[l][e] over token ids (one sequence, one round)
      --model DIR          HF checkpoint folder of a MoE model
      --ids 1,2,3          calibration token ids
      --sparsity S         target sparsity in [0, 1)
      --up-bits B          2 | 3 | 4 (HQQ) | 16 (exact); default 2
      --group-size G       HQQ group size along the hidden size (default 64)
      --out FILE           .safetensors to write (F32 "thresholds" [layers, experts])
  floe logits          write the FloE model's logits F32 [T, vocab] on token ids (one forward)
      --model DIR, --ids 1,2,3, --sparsity S, --up-bits B, --group-size G as above
      --mode M             topk | threshold (threshold needs --thresholds)
      --thresholds FILE    thresholds from floe calibrate
      --dense-layers L     comma-separated MoE layers kept dense (default: the first MoE layer, 0 for
                           Mixtral; "none" for none)
      --out FILE           .safetensors to write (tensor "logits")
      --backend B          auto | webgpu | cpu (default auto)
${FLOE_TABLES_USAGE}
${FLOE_BENCH_USAGE}`;

const FLAGS = {
  model: { type: "string" },
  ids: { type: "string" },
  sparsity: { type: "string" },
  "up-bits": { type: "string" },
  "group-size": { type: "string" },
  mode: { type: "string" },
  thresholds: { type: "string" },
  "dense-layers": { type: "string" },
  out: { type: "string" },
  backend: { type: "string" },
} as const;

/** Runs `ferry floe <calibrate|logits|tables|bench>`. */
export async function floeCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "--help" || sub === "-h") {
    console.log(`usage: deno task ferry floe calibrate|logits|tables|bench [options]\n\n${FLOE_USAGE}`);
    return sub === undefined ? 2 : 0;
  }
  if (sub === "tables") return await floeTablesCommand(rest);
  if (sub === "bench") return await floeBenchCommand(rest);
  if (sub !== "calibrate" && sub !== "logits") {
    throw new UsageError(
      `floe: unknown subcommand "${sub}": expected calibrate, logits, tables or bench (see ferry floe --help)`,
    );
  }
  const cmd = `floe ${sub}`;
  const { values, positionals } = parseFlags(cmd, rest, FLAGS);
  if (values.help) {
    console.log(`usage: deno task ferry floe ${sub} [options]\n\n${FLOE_USAGE}`);
    return 0;
  }
  noPositionals(cmd, positionals);
  const dir = required(cmd, values, "model", "DIR");
  const ids = parseIds(cmd, required(cmd, values, "ids", "1,2,3"));
  const sparsity = parseSparsity(cmd, required(cmd, values, "sparsity", "S"));
  const upBits = parseUpBits(cmd, str(values, "up-bits") ?? "2");
  const groupSize = parseInteger(cmd, "group-size", str(values, "group-size") ?? "64", 1);
  const out = required(cmd, values, "out", "FILE");
  const backend = parseBackend(cmd, values);
  const logits = sub === "logits" ? parseLogitsFlags(cmd, values) : undefined;
  if (sub === "calibrate") {
    for (const f of ["mode", "thresholds", "dense-layers"]) {
      if (values[f] !== undefined) throw new UsageError(`${cmd}: --${f} is a floe logits option`);
    }
  }
  const inputs = [{ flag: "--model", path: dir }];
  if (logits?.thresholds !== undefined) inputs.push({ flag: "--thresholds", path: logits.thresholds });
  await checkOut(cmd, out, "file", inputs);
  const { config } = await readModelDir(cmd, dir);
  checkMoe(cmd, config, dir);
  checkIdsInVocab(cmd, ids, config);
  if (upBits !== 16 && config.hidden % groupSize !== 0) {
    throw new UsageError(
      `${cmd}: --group-size ${groupSize} must divide the hidden size ${config.hidden} (or pass --up-bits 16)`,
    );
  }
  for (const l of logits?.denseLayers ?? []) {
    if (l >= config.layers) {
      throw new UsageError(
        `${cmd}: --dense-layers ${l} is not a layer of the model (0..${config.layers - 1})`,
      );
    }
  }
  if (logits?.thresholds !== undefined && !(await isFile(logits.thresholds))) {
    throw new UsageError(`${cmd}: --thresholds ${logits.thresholds}: no such file`);
  }

  const device = await openDevice(backend);
  try {
    using model = await loadModel(dir, { device });
    if (sub === "calibrate") {
      await floeCompress(model, { upBits, groupSize, sparsity: 0, mode: "topk", denseLayers: [] });
      const t = await calibrateThresholds(model, [Int32Array.from(ids)], { sparsity, rounds: 1 });
      await makeOutFolder(out);
      await t.save(out);
      console.log(
        `wrote ${out}: thresholds F32 [${t.layers}, ${t.experts}] (s ${sparsity}, up ${upBits} bits, ${ids.length} tokens)`,
      );
      return 0;
    }
    const { mode, denseLayers } = logits!;
    const thresholds = logits!.thresholds === undefined
      ? undefined
      : await FloeThresholds.load(logits!.thresholds, model);
    await floeCompress(model, { upBits, groupSize, sparsity, mode, denseLayers, thresholds });
    using y = model.forward(Int32Array.from(ids)).logits; // [T, V]
    await makeOutFolder(out);
    const data = await y.toArray() as Float32Array;
    const [T, V] = y.shape;
    await writeSafetensors(out, { logits: { dtype: "F32", shape: [T, V], data } }, {
      format: "pt",
      input_ids: ids.join(","),
      floe_mode: mode,
      floe_sparsity: String(sparsity),
      floe_up_bits: String(upBits),
      backend: device.info.backend,
    });
    console.log(`wrote ${out}: logits F32 [${T}, ${V}] (FloE ${mode}, s ${sparsity}, up ${upBits} bits)`);
  } finally {
    device.destroy();
  }
  return 0;
}

function parseLogitsFlags(
  cmd: string,
  values: FlagValues,
): { mode: "topk" | "threshold"; thresholds: string | undefined; denseLayers: number[] | undefined } {
  const mode = required(cmd, values, "mode", "topk|threshold");
  if (mode !== "topk" && mode !== "threshold") {
    throw new UsageError(`${cmd}: --mode must be topk or threshold: received ${mode}`);
  }
  const thresholds = str(values, "thresholds");
  if (mode === "threshold" && thresholds === undefined) {
    throw new UsageError(`${cmd}: --mode threshold needs --thresholds FILE (from ferry floe calibrate)`);
  }
  const dl = str(values, "dense-layers");
  const denseLayers = dl === undefined
    ? undefined // the library's default: the first MoE layer (layer 0 for Mixtral)
    : dl.trim() === "none" || dl.trim() === ""
    ? []
    : dl.split(",").map((p) => parseInteger(cmd, "dense-layers", p, 0));
  return { mode, thresholds, denseLayers };
}

function checkMoe(cmd: string, config: ModelConfig, dir: string): void {
  if (config.family !== "moe") {
    throw new UsageError(
      `${cmd}: --model ${dir} is a dense ${config.modelType} model; FloE needs a MoE model (mixtral, qwen2_moe, …)`,
    );
  }
}
