/**
 * Pieces of `loramRun`: alignment (continual pre-training with the LM head frozen, B.4), a given
 * plan applied, and the folder and file helpers that make every stage's output appear whole.
 * @module
 */
import { copyFile, isNotFound, readTextFile, remove, rename, stat } from "../host/runtime.ts";
import { applyPlan } from "../compressors/prune/apply_plan.ts";
import type { PruningPlan } from "../compressors/prune/pruning_plan.ts";
import { causalLmTask } from "../lora/causal_lm_task.ts";
import type { TrainTask } from "../lora/train_task.ts";
import { Trainer } from "../lora/trainer.ts";
import type { CausalLM } from "../models/causal_lm.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { LoramData } from "./data.ts";
import type { LoramPruneResult } from "./prune.ts";
import type { LoramRunConfig } from "./run_config.ts";

/** `plan` applied to `model` as a {@link LoramPruneResult}. */
export async function applyGivenPlan(model: CausalLM, plan: PruningPlan): Promise<LoramPruneResult> {
  const small = await applyPlan(model, plan);
  const n = (m: CausalLM) =>
    [...m.parameters()].filter(([k]) => /_proj\.weight$/.test(k)).reduce((s, [, t]) => s + t.size, 0);
  return { model: small, plan, sparsity: 1 - n(small) / n(model), criterion: plan.method };
}

/**
 * Alignment: full-parameter training of the pruned model on general text with the LM head frozen
 * (and the embedding too when the head is tied to it). For masked variants the pruned entries of
 * the range's projections are zeroed again afterwards, so the model keeps its sparsity.
 */
export async function align(
  model: CausalLM,
  config: LoramRunConfig,
  data: LoramData,
  runDir: string,
  progress: boolean,
  layers: readonly [number, number],
): Promise<void> {
  const frozen = new Set([
    "lm_head.weight",
    ...(model.config.tieWordEmbeddings ? ["model.embed_tokens.weight"] : []),
  ]);
  const base = causalLmTask(model);
  const task: TrainTask<Int32Array> = {
    parameters: () => new Map([...model.parameters()].filter(([k]) => !frozen.has(k))),
    loss: (ctx, batch) => base.loss(ctx, batch),
  };
  const masks = new Map<Tensor, Uint8Array>();
  for (const [k, t] of model.parameters()) {
    const m = /^model\.layers\.(\d+)\..*_proj\.weight$/.exec(k);
    if (!m || Number(m[1]) < layers[0] || Number(m[1]) >= layers[1]) continue;
    const w = await t.toArray() as Float32Array;
    if (w.some((v) => v === 0)) masks.set(t, Uint8Array.from(w, (v) => (v === 0 ? 0 : 1)));
  }
  const a = config.align;
  using trainer = new Trainer(task, {
    optimizer: { lr: a.lr, weightDecay: 0 },
    schedule: {
      totalSteps: a.steps,
      warmupSteps: a.warmupSteps ?? Math.floor(a.steps / 10),
      minLr: a.lr / 10,
    },
    batch: a.batch,
    checkpointEvery: a.checkpointEvery,
    runDir,
    seed: config.seed,
    progress,
  });
  await trainer.fit(data.align);
  for (const [t, mask] of masks) {
    const w = await t.toArray() as Float32Array;
    t.device.upload(t.storage, w.map((v, i) => v * mask[i]));
  }
}

/** Writes a folder under `DIR.partial`, then renames it to `dir` (a killed write leaves no `dir`). */
export async function writeFolder(dir: string, write: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = `${dir}.partial`;
  await remove(tmp, { recursive: true }).catch((e) => {
    if (!isNotFound(e)) throw e;
  });
  await write(tmp);
  await rename(tmp, dir);
}

/** Copies `tokenizer.json` and `tokenizer_config.json` when the model folder has them. */
export async function copyTokenizer(from: string, to: string): Promise<void> {
  for (const f of ["tokenizer.json", "tokenizer_config.json"]) {
    if (await exists(`${from}/${f}`)) await copyFile(`${from}/${f}`, `${to}/${f}`);
  }
}

/** Whether `path` exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if (isNotFound(e)) return false;
    throw e;
  }
}

/** The parsed JSON of `path`, or null when it does not exist. */
export async function readJson<T>(path: string): Promise<T | null> {
  if (!(await exists(path))) return null;
  return JSON.parse(await readTextFile(path)) as T;
}
