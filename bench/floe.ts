/**
 * FloE offload benchmark: the systems table (ondemand, cached, floe) on the reference systems model
 * (Mixtral-8x7B at a quarter of its width and full depth, random f16 weights, about 5.6 GB of
 * experts; f16 weights on the device; budget 12% of its f16 expert bytes, s = 0.9, 16 prompt + 16
 * decoded tokens, prefilled in chunks of 8 so that floe fits the budget; its smallest budgets per
 * policy first, `--plan`) and on the
 * embedded brown-moe (trained weights, so real predictor accuracy; budget 250% of its f16 experts,
 * since its non-expert weights outweigh its experts, and the 4-bit cache capped at 5 of its 32
 * experts, the fraction the reference model's cache gets at its target), each with the hardware
 * projection; and, in every run, a transfer-bound case small enough for a small machine (the
 * reference width at 2 layers).
 *
 * Run: `deno task bench:floe` (writes the reference model to runs/bench-floe/ first, several GB,
 * and HQQ-quantizes its experts once into runs/bench-floe/quant-cache; heavy on a small machine)
 * or `deno task bench:floe --quick` (brown-moe and the 2-layer case). Backend: auto
 * (`FERRY_BACKEND=cpu|webgpu` forces one). Writes bench/results/floe_reference_plan.json,
 * floe_reference.json, floe_brown_moe.json and floe_mini_ref.json (and .arrow) through
 * `ferry floe bench`.
 * @module
 */
import { floeBenchCommand } from "../src/cli/floe_bench.ts";
import { writeRandomCheckpoint } from "../src/models/random.ts";

const quick = Deno.args.includes("--quick");
const REFERENCE = "runs/bench-floe/mixtral-quarter";
/** HQQ experts of the reference model, quantized on the first run (the longest part of it) and kept. */
const QUANT_CACHE = "runs/bench-floe/quant-cache";

/** Mixtral-8x7B at a quarter of its width, with `layers` decoder layers (HF config.json fields). */
function quarterMixtral(layers: number): Record<string, unknown> {
  return {
    model_type: "mixtral",
    architectures: ["MixtralForCausalLM"],
    hidden_size: 1024,
    intermediate_size: 3584,
    num_hidden_layers: layers,
    num_local_experts: 8,
    num_experts_per_tok: 2,
    num_attention_heads: 16,
    num_key_value_heads: 4,
    vocab_size: 4096,
    tie_word_embeddings: false,
  };
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

if (!quick) {
  if (!(await exists(`${REFERENCE}/config.json`))) {
    console.log(
      `writing the reference systems model to ${REFERENCE} (random f16 weights, sharded at 2 GiB)...`,
    );
    await writeRandomCheckpoint(REFERENCE, quarterMixtral(32), {
      dtype: "f16",
      seed: 0,
      maxShardBytes: 2 ** 31,
    });
  }
  // The smallest budgets first (nothing runs): does each policy fit 12% with f16 weights?
  await floeBenchCommand([
    ...["--model", REFERENCE, "--budget", "12%", "--policies", "ondemand,cached,floe", "--sparsity", "0.9"],
    ...["--dtype", "f16", "--prompt-tokens", "16", "--tokens", "16", "--prefill-chunk", "8", "--plan"],
    ...["--json", "bench/results/floe_reference_plan.json"],
  ]);
  await floeBenchCommand([
    ...["--model", REFERENCE, "--budget", "12%", "--policies", "ondemand,cached,floe", "--sparsity", "0.9"],
    ...["--dtype", "f16", "--quant-cache", QUANT_CACHE, "--prefill-chunk", "8"],
    ...[
      "--prompt-tokens",
      "16",
      "--tokens",
      "16",
      "--project",
      "--json",
      "bench/results/floe_reference.json",
    ],
  ]);
}
// A transfer-bound case small enough for this machine: the reference model's width at 2 layers
// (336 MiB of f16 experts, random weights), budget 250 MB, f32 cache, no dense layer.
const MINI = "runs/bench-floe/mixtral-quarter-2-layers";
if (!(await exists(`${MINI}/config.json`))) {
  console.log(`writing the 2-layer transfer-bound model to ${MINI}...`);
  await writeRandomCheckpoint(MINI, quarterMixtral(2), { dtype: "f16", seed: 0, maxShardBytes: 2 ** 31 });
}
await floeBenchCommand([
  ...["--model", MINI, "--budget", "250MB", "--policies", "ondemand,cached,floe", "--cache-bits", "16"],
  ...["--floe-dense-layers", "none", "--sparsity", "0.9", "--prompt-tokens", "8", "--tokens", "8"],
  ...["--json", "bench/results/floe_mini_ref.json"],
]);
await floeBenchCommand([
  ...[
    "--model",
    "examples/models/brown-moe",
    "--budget",
    "250%",
    "--policies",
    "ondemand,cached,floe,resident",
  ],
  ...["--sparsity", "0.9", "--prompt-tokens", "16", "--tokens", quick ? "8" : "16", "--project"],
  // the reference model's 4-bit cache gets 39 of its 256 experts at the target budget: 5 of brown-moe's 32
  ...["--cache-slots", "5"],
  ...["--json", "bench/results/floe_brown_moe.json"],
]);
