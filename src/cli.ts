/**
 * The Ferry command line: `deno task ferry <command> [options]`.
 *
 *   info                    the compute devices here: adapter, features, limits
 *   inspect PATH            a .safetensors file's tensors, or an HF checkpoint's architecture and parameters
 *   generate                continue a prompt (text or token ids), streaming to stdout
 *   ppl                     sliding-window perplexity on Brown or a text/JSONL file
 *   logits                  float32 logits of token ids, to a safetensors file
 *   quantize                one tensor through RTN, HQQ or NF4; its dequantized form to a safetensors file
 *   prune                   one tensor through magnitude, Wanda or 2:4 pruning, to a safetensors file
 *   activations             the inputs of every decoder linear on Brown text (Wanda's calibration)
 *   sweep                   compression sweep of a checkpoint's weights, and FloE's sensitivity study
 *   floe                    FloE: calibrate thresholds, compressed-expert logits, the paper's tables
 *   loram                   LoRAM: parameter accounting from a config (plan), the pipeline (run)
 *   random-model            an HF folder of seeded random weights (llama | mixtral), for systems measurements
 *
 * Each command lives in `src/cli/<command>.ts`. Flags are parsed strictly (unknown flags are
 * errors). `--out` follows one rule everywhere (`src/cli/_out.ts`): missing folders are created,
 * and an input, an existing folder (for a file) or a checkpoint folder's inside is refused. Errors go to stderr as one line, `ferry: <message>`, with exit status 1.
 * @module
 */
import { args, exit } from "./host/runtime.ts";
import { FLOE_USAGE, floeCommand } from "./cli/floe.ts";
import { ACTIVATIONS_USAGE, activationsCommand } from "./cli/activations.ts";
import { GENERATE_USAGE, generateCommand } from "./cli/generate.ts";
import { INFO_USAGE, infoCommand } from "./cli/info.ts";
import { INSPECT_USAGE, inspectCommand } from "./cli/inspect.ts";
import { LOGITS_USAGE, logitsCommand } from "./cli/logits.ts";
import { LORAM_USAGE, loramCommand } from "./cli/loram.ts";
import { PPL_USAGE, pplCommand } from "./cli/ppl.ts";
import { PRUNE_USAGE, pruneCommand } from "./cli/prune.ts";
import { QUANTIZE_USAGE, quantizeCommand } from "./cli/quantize.ts";
import { RANDOM_MODEL_USAGE, randomModelCommand } from "./cli/random_model.ts";
import { SWEEP_USAGE, sweepCommand } from "./cli/sweep.ts";

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  info: infoCommand,
  inspect: inspectCommand,
  generate: generateCommand,
  ppl: pplCommand,
  logits: logitsCommand,
  quantize: quantizeCommand,
  prune: pruneCommand,
  activations: activationsCommand,
  sweep: sweepCommand,
  floe: floeCommand,
  loram: loramCommand,
  "random-model": randomModelCommand,
};

/** The text `--help` prints. */
export const USAGE = `usage: deno task ferry <command> [options]
       deno task ferry <command> --help

commands:
${
  [
    INFO_USAGE,
    INSPECT_USAGE,
    GENERATE_USAGE,
    PPL_USAGE,
    LOGITS_USAGE,
    QUANTIZE_USAGE,
    PRUNE_USAGE,
    ACTIVATIONS_USAGE,
    SWEEP_USAGE,
    FLOE_USAGE,
    LORAM_USAGE,
    RANDOM_MODEL_USAGE,
  ].join("\n\n")
}

Errors print one line, "ferry: ...", on stderr and exit with status 1.`;

/** Runs the command line on `args`; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const [command, ...rest] = args;
  if (command === undefined) {
    console.log(USAGE);
    return 2;
  }
  if (command === "--help" || command === "-h" || command === "help") {
    console.log(USAGE);
    return 0;
  }
  const run = Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined;
  if (!run) {
    const what = command.startsWith("-")
      ? `Expected a command before option ${command}`
      : `Unknown command "${command}"`;
    throw new TypeError(`${what}: expected one of ${Object.keys(COMMANDS).join(", ")} (see --help)`);
  }
  return await run(rest);
}

/** An error as one line: its message with line breaks folded into "; ". */
export function errorLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.split("\n").map((l) => l.trim()).filter((l) => l !== "").join("; ").replace(/:;/g, ":");
}

if (import.meta.main) {
  let status: number;
  try {
    status = await main(args());
  } catch (err) {
    console.error(`ferry: ${errorLine(err)}`);
    status = 1;
  }
  exit(status);
}
