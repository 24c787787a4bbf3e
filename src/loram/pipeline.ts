/**
 * `loramRun`: LoRAM end to end ([LoRAM](https://arxiv.org/abs/2502.13533) Fig. 2; ALGORITHMS.md
 * B.1–B.7), every stage's artefact on disk under `OUT/` so a killed run resumes where it stopped:
 *
 * ```
 * original ─loramPrune(method, ratio, layers)→ plan.json + pruned model
 *          ─align (optional; continual pre-training, LM head frozen)→ pruned/        (HF folder)
 *          ─LoRA Trainer on the genre (runs/lora, checkpoints)→ pruned-adapter/     (PEFT folder)
 *          ─recover(plan, zeroA | normA)→ adapter/    (PEFT folder for the original model)
 *          ─original + adapter, mergeAndUnload→ merged/ (HF folder)
 *          ─perplexity in-domain, out-of-domain (Brown, SOTU), parameter accounting, ledger peaks→ eval.json
 * ```
 *
 * Folders are written under a temporary name and renamed, files atomically; a stage whose output
 * exists is skipped on a rerun, and the Trainer resumes from its newest checkpoint. `loram_config.json`
 * and `held_out.json` (what the perplexities are scored on) must match on a rerun. Perplexity is
 * measured for the original (large w/o FT), the pruned model (small w/o FT, before and after
 * alignment), the pruned model with its adapter (inference on the pruned model) and the merged
 * original (LoRAM); on held-out documents each perplexity keeps its per-document scores and 95%
 * interval, so the tables pair any two of them (`pairedRatio`). The original model is released while the pruned one trains, so the ledger's
 * peaks during training are the pruned model's (`weights` vs the formula `4·N_P` bytes in f32).
 * With `nf4` (QLoRAM) the pruned model's projections are NF4 + double quant while LoRA trains
 * (`quantizeLinearsNf4`); `pruned/` stays f32, and the recovered adapter merges into the f32 original.
 *
 * @example Two LoRA steps of LoRAM-Rand on a tiny model
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loramRun } from "./pipeline.ts";
 * const device = await createDevice({ backend: "cpu" });
 * const ids = (s: number) => Int32Array.from({ length: 17 }, (_, i) => (s + 3 * i) % 100); // [T + 1]
 * const blocks = Array.from({ length: 8 }, (_, s) => ids(s));
 * const out = await Deno.makeTempDir();
 * const e = await loramRun(device, {
 *   model: "test/fixtures/models/llama-gqa-tied-f32", out, method: "rand", ratio: 0.5, layers: [0, 2],
 *   train: { steps: 2, batch: 2 }, evalBlock: 16,
 * }, { align: blocks, train: blocks, evalIn: ids(1), evalOut: ids(2) }, { progress: false });
 * assert.ok(e.params.pruned_params < e.params.params && e.params.measured_weight_bytes === e.params.formula_weight_bytes);
 * await Deno.remove(out, { recursive: true });
 * ```
 *
 * @module
 */
import { copyFile, mkdir, readTextFile } from "../host/runtime.ts";
import { planFromJSON, type PruningPlan, savePlan } from "../compressors/prune/pruning_plan.ts";
import { createPruningPlan, planDimsOf } from "../compressors/prune/pruning_plan.ts";
import type { Device } from "../device/device.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { loadLoraAdapter, saveLoraAdapter } from "../lora/adapter_io.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import { loadModel, readHfConfig } from "../models/load.ts";
import { saveModel } from "../models/save.ts";
import { parseModelConfig } from "../models/config.ts";
import { isStructured, loramParamCounts } from "./param_count.ts";
import { loramPrune } from "./prune.ts";
import { quantizeLinearsNf4 } from "./qloram.ts";
import { checkPlanFor, recoverAdapterFolder } from "./recover.ts";
import { align, applyGivenPlan, copyTokenizer, exists, readJson, writeFolder } from "./_stages.ts";
import { type LoramRunConfig, type LoramRunOptions, parseLoramRunConfig } from "./run_config.ts";
import type { LoramData } from "./data.ts";
import { domainPerplexity, type DomainPpl, formatDomainPpl } from "./eval.ts";
import { heldOutSummary } from "./held_out.ts";
import { trainLora, type TrainStats } from "./train_lora.ts";
export type { LoramData } from "./data.ts";
export type { DomainPpl } from "./eval.ts";
export type { TrainStats } from "./train_lora.ts";

/** What `eval.json` holds. */
export interface LoramEval {
  config: LoramRunConfig;
  criterion: string;
  /** Fraction of the range's projection weights pruned. */
  sparsity: number;
  ppl: {
    original: DomainPpl;
    pruned: DomainPpl;
    pruned_aligned: DomainPpl | null;
    pruned_lora: DomainPpl;
    loram: DomainPpl;
  };
  /** The config-only accounting (B.7) and what the ledger measured while the pruned model trained. */
  params: ReturnType<typeof loramParamCounts> & {
    /** Ledger `weights` peak while LoRA trained (the pruned model: f32, or NF4 codes + metadata). */
    measured_weight_bytes: number;
    /** The same from the shapes: `4·params`, or NF4 + double-quant bytes of the projections + `4·rest`. */
    formula_weight_bytes: number;
    /** NF4 per-tensor offsets Ferry keeps as host scalars (in the formula, not on the ledger). */
    host_offset_bytes: number;
  };
  train: TrainStats;
}

/** Options of {@link loramRun} besides the config. */
export interface LoramRunExtras {
  /** Show the Trainer's progress bar (default true). */
  progress?: boolean;
  /** A plan file to use instead of building one (structured methods). */
  planFile?: string;
  /** Called with a one-line message per stage. */
  log?: (line: string) => void;
  /** Called after every LoRA step (tests interrupt a run here). */
  onStep?: (step: number) => void | Promise<void>;
}

/**
 * Runs LoRAM (see the module doc) and writes `eval.json`; returns its content. A finished run
 * (eval.json present) returns it without recomputing.
 *
 * @throws {ConfigError} on invalid options; {RangeError}/{TypeError} for a ratio or layer range the
 *   model does not allow, a MoE model, a plan for another model, or an `out` folder that holds a
 *   run with other settings (nothing is written in those cases)
 */
export async function loramRun(
  device: Device,
  options: LoramRunOptions,
  data: LoramData,
  extras: LoramRunExtras = {},
): Promise<LoramEval> {
  const config = parseLoramRunConfig(options);
  const log = extras.log ?? (() => {});
  const { out } = config;
  const path = (name: string) => `${out}/${name}`;
  // Validate everything before writing anything.
  const modelConfig = parseModelConfig(await readHfConfig(config.model));
  const counts = loramParamCounts(modelConfig, {
    method: config.method,
    ratio: config.ratio,
    layers: config.layers,
  });
  const layers = counts.layers;
  let givenPlan: PruningPlan | null = null;
  if (extras.planFile) {
    if (!isStructured(config.method)) {
      throw new TypeError(`Cannot use a plan file with ${config.method}: plans are for rand and stru`);
    }
    givenPlan = planFromJSON(JSON.parse(await readTextFile(extras.planFile)));
    checkPlanFor(modelConfig, givenPlan, "use the plan");
  }
  const savedConfig = JSON.stringify(config, null, 2);
  const heldOut = JSON.stringify(heldOutSummary(data, config.evalTokens), null, 2);
  if (await exists(path("loram_config.json"))) {
    const prev = await readTextFile(path("loram_config.json"));
    if (prev !== savedConfig) {
      throw new RangeError(
        `Cannot run LoRAM into ${out}: it holds a run with other settings (${
          path("loram_config.json")
        }); choose a new out folder or delete it`,
      );
    }
    if (await exists(path("held_out.json"))) {
      const prevHeld = await readTextFile(path("held_out.json"));
      if (prevHeld !== heldOut) {
        throw new RangeError(
          `Cannot resume LoRAM in ${out}: its perplexities were scored on other held-out documents (${
            path("held_out.json")
          } differs); pass the same held-out data (--genre, --eval-docs, --eval-tokens) or choose a new out folder`,
        );
      }
    }
    if (await exists(path("eval.json"))) return JSON.parse(await readTextFile(path("eval.json")));
  }
  if (await exists(path("plan.json"))) {
    checkPlanFor(
      modelConfig,
      planFromJSON(JSON.parse(await readTextFile(path("plan.json")))),
      "resume the run",
    );
  }
  await mkdir(out, { recursive: true });
  await writeFileAtomic(path("loram_config.json"), savedConfig);
  await writeFileAtomic(path("held_out.json"), heldOut);

  // Every model loaded here is released on the way out, also when a stage fails.
  const owned: CausalLM[] = [];
  const own = (m: CausalLM): CausalLM => (owned.push(m), m);
  try {
    return await stages();
  } finally {
    for (const m of owned) m.dispose();
  }

  async function stages(): Promise<LoramEval> {
    const ppl = (model: CausalLM): Promise<DomainPpl> => domainPerplexity(model, data, config);

    // 1) original, plan, pruned model
    let original: CausalLM | undefined = own(await loadModel(config.model, { device }));
    const pOriginal = await ppl(original);
    log(`original: ${formatDomainPpl(pOriginal)}`);
    let plan: PruningPlan | null;
    let pruned: CausalLM;
    let pPruned: DomainPpl;
    let pAligned: DomainPpl | null = null;
    const state = await readJson<
      { criterion: string; sparsity: number; pruned: DomainPpl; aligned: DomainPpl | null }
    >(path("prune_state.json"));
    if (state && await exists(path("pruned"))) {
      original.dispose();
      original = undefined;
      const saved = planFromJSON(await readJson(path("plan.json")));
      plan = isStructured(config.method) ? saved : null;
      pruned = own(await loadModel(path("pruned"), { device }));
      ({ pruned: pPruned, aligned: pAligned } = state);
      log(`resumed: pruned model from ${path("pruned")}`);
    } else {
      const calibration = data.align.slice(0, config.calibrationBlocks);
      const r = givenPlan ? await applyGivenPlan(original, givenPlan) : await loramPrune(original, {
        method: config.method,
        ratio: config.ratio,
        layers,
        seed: config.seed,
        criterion: config.criterion,
        calibration,
      });
      original.dispose();
      original = undefined;
      plan = r.plan;
      pruned = own(r.model);
      // Masked variants record their settings with no structural change.
      await savePlan(
        plan ??
          createPruningPlan({
            method: `${config.method}:${r.criterion}`,
            ratio: config.ratio,
            dims: planDimsOf(modelConfig),
            layers: [],
          }),
        path("plan.json"),
      );
      pPruned = await ppl(pruned);
      log(`pruned (${r.criterion}, sparsity ${r.sparsity.toFixed(3)}): ${formatDomainPpl(pPruned)}`);
      if (config.align.steps > 0) {
        await align(pruned, config, data, path("runs/align"), extras.progress ?? true, layers);
        pAligned = await ppl(pruned);
        log(`aligned: ${formatDomainPpl(pAligned)}`);
      }
      await writeFolder(path("pruned"), async (tmp) => {
        await saveModel(pruned, tmp);
        await copyTokenizer(config.model, tmp);
      });
      await writeFileAtomic(
        path("prune_state.json"),
        JSON.stringify({ criterion: r.criterion, sparsity: r.sparsity, pruned: pPruned, aligned: pAligned }),
      );
    }
    const { criterion, sparsity } =
      (await readJson<{ criterion: string; sparsity: number }>(path("prune_state.json")))!;

    // 2) LoRA on the pruned model
    // QLoRAM: the frozen projections become NF4 + double quant (the pruned/ folder stays f32).
    const stored = pruned.numParameters().total;
    const projections = [...pruned.parameters()].filter(([k]) =>
      /^model\.layers\.\d+\..*_proj\.weight$/.test(k)
    )
      .reduce((n, [, t]) => n + t.size, 0);
    const nf4 = config.nf4 ? await quantizeLinearsNf4(pruned) : null;
    if (nf4) log(`QLoRAM: ${nf4.modules} projections in NF4 + double quant (${nf4.bytes} bytes)`);
    let stats = await readJson<TrainStats>(path("train_stats.json"));
    let pPrunedLora: DomainPpl;
    if (stats && await exists(path("pruned-adapter"))) {
      using _lora = await loadLoraAdapter(path("pruned-adapter"), pruned);
      pPrunedLora = await ppl(pruned);
    } else {
      const trained = await trainLora(pruned, config, data, path("runs/lora"), extras);
      using lora = trained.lora;
      stats = trained.stats;
      await writeFolder(
        path("pruned-adapter"),
        (tmp) => saveLoraAdapter(tmp, lora, { baseModelNameOrPath: path("pruned") }),
      );
      await copyFile(trained.logPath, path("training_log.arrow"));
      await writeFileAtomic(path("train_stats.json"), JSON.stringify(stats));
      pPrunedLora = await ppl(pruned);
    }
    log(`pruned + LoRA: ${formatDomainPpl(pPrunedLora)}`);
    pruned.dispose();

    // 3) recovery, merge into the original, evaluation
    if (!(await exists(path("adapter")))) {
      await writeFolder(
        path("adapter"),
        (tmp) =>
          recoverAdapterFolder(plan, path("pruned-adapter"), tmp, {
            type: config.recover,
            seed: config.seed,
            baseModel: config.model,
          }),
      );
    }
    let merged: CausalLM;
    if (await exists(path("merged"))) {
      merged = own(await loadModel(path("merged"), { device }));
    } else {
      const base = own(await loadModel(config.model, { device }));
      const lora = await loadLoraAdapter(path("adapter"), base);
      merged = await lora.mergeAndUnload();
      await writeFolder(path("merged"), async (tmp) => {
        await saveModel(merged, tmp);
        await copyTokenizer(config.model, tmp);
      });
    }
    const pLoram = await ppl(merged);
    merged.dispose();
    log(`LoRAM (recovered, merged into the original): ${formatDomainPpl(pLoram)}`);
    const result: LoramEval = {
      config,
      criterion,
      sparsity,
      ppl: {
        original: pOriginal,
        pruned: pPruned,
        pruned_aligned: pAligned,
        pruned_lora: pPrunedLora,
        loram: pLoram,
      },
      params: {
        ...counts,
        measured_weight_bytes: stats.peak_bytes.weights ?? 0,
        formula_weight_bytes: nf4 ? 4 * (stored - projections) + nf4.bytes : 4 * stored,
        host_offset_bytes: nf4 ? 4 * nf4.modules : 0,
      },
      train: stats,
    };
    await writeFileAtomic(path("eval.json"), JSON.stringify(result, null, 2) + "\n");
    return result;
  }
}
