/**
 * `ferry loram plan|run`: LoRAM from the command line
 * ([LoRAM](https://arxiv.org/abs/2502.13533)).
 *
 * - `loram plan --config FILE --ratio P --method stru|rand|semi|unst [--layers START:END] [--json]`:
 *   the parameter accounting of `src/loram/param_count.ts` from a HF `config.json` alone; with
 *   `--json` one JSON object (`params`, `pruned_params`, `loram_reduction`, `qloram_reduction`,
 *   `loram_gib`, `qloram_gib`, and the exact NF4 figures), else a readable table.
 * - `loram run`: see `loram_run.ts`.
 * @module
 */
import { isNotFound, readTextFile } from "../host/runtime.ts";
import { ConfigError, FormatError } from "../errors.ts";
import { LORAM_METHODS, type LoramParamCounts, loramParamCounts } from "../loram/param_count.ts";
import { parseModelConfig } from "../models/config.ts";
import { fmtInt, isFile, join, noPositionals, parseFlags, required, str, UsageError } from "./_common.ts";
import { parseLayerRange, parseMethod, parseRatio } from "./loram_args.ts";
import { LORAM_RUN_USAGE, loramRunCommand } from "./loram_run.ts";

export const LORAM_USAGE =
  `  loram plan           LoRAM parameter accounting from a HF config.json alone (paper Tables 4-6)
      --config FILE        config.json (or a checkpoint folder holding one)
      --ratio P            pruning ratio in (0, 1) (semi: 0.5)
      --method M           stru | rand (structured: a smaller model) | semi | unst (masked, same shapes)
      --layers START:END   pruned decoder layers [START, END) (default LoRAM's [4, L-2))
      --json               print one JSON object (params, pruned_params, loram_reduction,
                           qloram_reduction, loram_gib, qloram_gib, qloram_nf4_*)
${LORAM_RUN_USAGE}`;

const SUBCOMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  plan: loramPlanCommand,
  run: loramRunCommand,
};

/** Runs `ferry loram`. */
export async function loramCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === "--help" || sub === "-h") {
    console.log(`usage: deno task ferry loram plan|run [options]\n\n${LORAM_USAGE}`);
    return sub === undefined ? 2 : 0;
  }
  const run = Object.hasOwn(SUBCOMMANDS, sub) ? SUBCOMMANDS[sub] : undefined;
  if (!run) {
    throw new UsageError(`loram: unknown subcommand "${sub}": expected plan or run (see ferry loram --help)`);
  }
  return await run(rest);
}

async function loramPlanCommand(args: string[]): Promise<number> {
  const cmd = "loram plan";
  const { values, positionals } = parseFlags(cmd, args, {
    config: { type: "string" },
    ratio: { type: "string" },
    method: { type: "string" },
    layers: { type: "string" },
    json: { type: "boolean" },
  });
  if (values.help) {
    console.log(
      `usage: deno task ferry loram plan --config FILE --ratio P --method M [--layers S:E] [--json]\n\n${LORAM_USAGE}`,
    );
    return 0;
  }
  noPositionals(cmd, positionals);
  const path = required(cmd, values, "config", "FILE");
  const method = parseMethod(cmd, required(cmd, values, "method", LORAM_METHODS.join("|")));
  const ratio = parseRatio(cmd, required(cmd, values, "ratio", "P"));
  const layersText = str(values, "layers");
  const layers = layersText === undefined ? undefined : parseLayerRange(cmd, layersText);
  const file = (await isFile(path)) ? path : join(path, "config.json");
  let json: unknown;
  try {
    json = JSON.parse(await readTextFile(file));
  } catch (err) {
    if (isNotFound(err)) {
      throw new UsageError(`${cmd}: --config ${path}: no such file (pass a HF config.json)`);
    }
    if (err instanceof SyntaxError) {
      throw new FormatError(`${cmd}: ${file} is not valid JSON: ${err.message}`, file);
    }
    throw err;
  }
  let counts: LoramParamCounts;
  try {
    counts = loramParamCounts(parseModelConfig(json), { method, ratio, layers });
  } catch (err) {
    if (err instanceof RangeError || (err instanceof TypeError && !(err instanceof ConfigError))) {
      throw new UsageError(`${cmd}: ${err.message}`);
    }
    throw err;
  }
  console.log(values.json ? JSON.stringify(counts) : planTable(counts));
  return 0;
}

/** The readable table of `loram plan`. */
export function planTable(c: LoramParamCounts): string {
  const gib = (v: number) => v >= 1 ? `${v.toFixed(2)} GiB` : `${(v * 1024).toFixed(2)} MiB`;
  const x = (v: number) => `${v.toFixed(2)}×`;
  const rows: [string, string][] = [
    [
      "model",
      `${c.model_type}, layers [${c.layers[0]}, ${c.layers[1]}) pruned by ${c.method} at p = ${c.ratio}`,
    ],
    [
      "pruned layer",
      `d_ff ${fmtInt(c.kept.intermediate)}, heads ${c.kept.heads}, KV heads ${c.kept.kv_heads}`,
    ],
    ["params", fmtInt(c.params)],
    [
      "pruned params",
      `${fmtInt(c.pruned_params)}${c.saves_memory ? "" : " (non-zero; zeros stored: no memory saved)"}`,
    ],
    ["LoRAM", `${x(c.loram_reduction)}  ${gib(c.loram_gib)} (bf16)`],
    ["QLoRAM", `${x(c.qloram_reduction)}  ${gib(c.qloram_gib)} (paper: N_P/4, metadata ignored)`],
    [
      "QLoRAM NF4+DQ",
      `${x(c.qloram_nf4_reduction)}  ${gib(c.qloram_nf4_gib)} (${
        fmtInt(c.qloram_nf4_bytes)
      } bytes: linears NF4 + double-quant metadata, rest bf16)`,
    ],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join("\n");
}
