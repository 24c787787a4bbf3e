/**
 * Training checkpoints in a run folder, written atomically:
 *
 * ```text
 * <runDir>/checkpoints/
 *   step-000200/
 *     trainable.safetensors   trainable tensors by name (F32), the values after 200 steps
 *     optimizer.safetensors   "<name>.exp_avg", "<name>.exp_avg_sq" (F32); step counts and
 *                             options in the metadata ("ferry.adamw", JSON)
 *     trainer_state.json      step, data position, seed, lr, config, metric rows so far
 *   step-000300/ …
 *   latest                    "step-000300\n": the newest complete checkpoint
 * ```
 *
 * A checkpoint is written into a hidden temporary folder, which is renamed to `step-XXXXXX` only
 * once every file is complete and synced; then `latest` is replaced atomically and all but the
 * newest `keep` folders are removed. A crash at any point leaves the previous checkpoints
 * intact; {@linkcode latestCheckpoint} ignores temporary folders and, if the crash fell between
 * the rename and the pointer update, finds the newer folder anyway.
 *
 * @example Save and restore a parameter and its optimizer state
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { AdamW } from "../optim/adamw.ts";
 * import { latestCheckpoint, loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const w = Tensor.fromArray(dev, [1, 2], [2]); // [2]
 * const opt = new AdamW({ lr: 0.1 });
 * using g = Tensor.fromArray(dev, [1, -1], [2]);
 * opt.step([{ name: "w", value: w, grad: g }]);
 * const runDir = await Deno.makeTempDir();
 * const params = new Map([["w", w]]);
 * await saveCheckpoint(runDir, { params, optimizer: opt, state: { step: 1 } });
 * const path = await latestCheckpoint(runDir);
 * assert.ok(path?.endsWith("step-000001"));
 * const w2 = Tensor.fromArray(dev, [0, 0], [2]);
 * const opt2 = new AdamW({ lr: 0.1 });
 * const state = await loadCheckpoint(path!, { params: new Map([["w", w2]]), optimizer: opt2 });
 * assert.equal(state.step, 1);
 * assert.deepEqual(await w2.toArray(), await w.toArray());
 * assert.equal(opt2.stepCount("w"), 1);
 * await Deno.remove(runDir, { recursive: true });
 * ```
 * @module
 */
import { isNotFound, mkdir, readDir, readTextFile, remove, rename } from "../host/runtime.ts";
import { basename, dirname, join } from "node:path";
import { FormatError } from "../errors.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { SafetensorsFile, type TensorInput, writeSafetensors } from "../io/safetensors.ts";
import type { AdamW, AdamWStateDict } from "../optim/adamw.ts";
import type { Tensor } from "../tensor/tensor.ts";

/** Folder of checkpoints inside a run folder. */
export const CHECKPOINTS_DIR = "checkpoints";
/** The pointer file naming the newest checkpoint folder. */
export const LATEST_FILE = "latest";
/** File names inside one checkpoint folder. */
export const CHECKPOINT_FILES = Object.freeze({
  trainable: "trainable.safetensors",
  optimizer: "optimizer.safetensors",
  state: "trainer_state.json",
});

const STEP_DIR = /^step-(\d{6,})$/;
const ADAMW_METADATA = "ferry.adamw";

/** The JSON saved beside the tensors. `step` is the number of completed optimizer steps. */
export interface TrainerState {
  step: number;
  [key: string]: unknown;
}

/** What {@linkcode saveCheckpoint} writes. */
export interface CheckpointContents {
  /** Trainable tensors by name (read back to the host). */
  params: ReadonlyMap<string, Tensor>;
  optimizer: AdamW;
  state: TrainerState;
}

/** `step-000042`: the folder name of the checkpoint after `step` steps. */
export function checkpointName(step: number): string {
  if (!Number.isInteger(step) || step < 0) {
    throw new RangeError(`Cannot name checkpoint: step must be a non-negative integer: received ${step}`);
  }
  return `step-${String(step).padStart(6, "0")}`;
}

/** Complete checkpoint folders of `runDir`, oldest first (temporary folders are skipped). */
export async function listCheckpoints(runDir: string): Promise<{ step: number; path: string }[]> {
  const dir = join(runDir, CHECKPOINTS_DIR);
  const out: { step: number; path: string }[] = [];
  try {
    for (const entry of await readDir(dir)) {
      const m = entry.isDirectory ? STEP_DIR.exec(entry.name) : null;
      if (m) out.push({ step: Number(m[1]), path: join(dir, entry.name) });
    }
  } catch (err) {
    if (isNotFound(err)) return [];
    throw err;
  }
  return out.sort((a, b) => a.step - b.step);
}

/** The newest complete checkpoint folder of `runDir`, or `null` when there is none. */
export async function latestCheckpoint(runDir: string): Promise<string | null> {
  const all = await listCheckpoints(runDir);
  return all.length === 0 ? null : all[all.length - 1].path;
}

/**
 * Writes `<runDir>/checkpoints/step-XXXXXX/` atomically, points `latest` at it and removes all
 * but the newest `keep` checkpoints (default 2).
 *
 * @returns The checkpoint folder's path.
 */
export async function saveCheckpoint(
  runDir: string,
  contents: CheckpointContents,
  options: { keep?: number } = {},
): Promise<string> {
  const { params, optimizer, state } = contents;
  const dir = join(runDir, CHECKPOINTS_DIR);
  const name = checkpointName(state.step);
  const final = join(dir, name);
  const tmp = join(dir, `.tmp-${name}-${crypto.randomUUID().slice(0, 8)}`);
  await mkdir(tmp, { recursive: true });
  try {
    const tensors = new Map<string, TensorInput>();
    for (const [key, t] of params) {
      tensors.set(key, { dtype: "F32", shape: t.shape, data: await t.toArray() as Float32Array });
    }
    await writeSafetensors(join(tmp, CHECKPOINT_FILES.trainable), tensors, { format: "pt" });
    const dict = await optimizer.stateDict();
    const moments = new Map<string, TensorInput>();
    const steps: Record<string, number> = {};
    for (const [key, s] of Object.entries(dict.state)) {
      moments.set(`${key}.exp_avg`, { dtype: "F32", shape: s.shape, data: s.expAvg });
      moments.set(`${key}.exp_avg_sq`, { dtype: "F32", shape: s.shape, data: s.expAvgSq });
      steps[key] = s.step;
    }
    await writeSafetensors(join(tmp, CHECKPOINT_FILES.optimizer), moments, {
      format: "pt",
      [ADAMW_METADATA]: JSON.stringify({ options: dict.options, steps }),
    });
    await writeFileAtomic(join(tmp, CHECKPOINT_FILES.state), `${JSON.stringify(state, null, 1)}\n`);
    await replaceDir(tmp, final);
  } catch (err) {
    await remove(tmp, { recursive: true }).catch(() => {});
    throw err;
  }
  await writeFileAtomic(join(dir, LATEST_FILE), `${name}\n`);
  await pruneCheckpoints(runDir, options.keep ?? 2);
  return final;
}

/**
 * Restores a checkpoint: uploads the saved values into `params` **in place** (the tensors the
 * model holds), replaces the optimizer's state and returns the trainer state.
 *
 * @throws {FormatError} When a file is missing or malformed, or the saved tensors do not match
 *   `params` by name and shape.
 */
export async function loadCheckpoint(
  path: string,
  target: { params: ReadonlyMap<string, Tensor>; optimizer: AdamW },
): Promise<TrainerState> {
  const state = await readState(join(path, CHECKPOINT_FILES.state));
  const trainableFile = join(path, CHECKPOINT_FILES.trainable);
  {
    using st = await SafetensorsFile.open(trainableFile);
    const want = [...target.params.keys()].sort().join(", ");
    const got = [...st.names].sort().join(", ");
    if (want !== got) {
      throw new FormatError(
        `Cannot resume from ${path}: it holds the tensors [${got}] but the task trains [${want}]; ` +
          `use a new runDir or pass resume: false`,
        trainableFile,
      );
    }
    for (const [key, t] of target.params) {
      const info = st.info(key);
      if (info.shape.join() !== t.shape.join()) {
        throw new FormatError(
          `Cannot resume from ${path}: "${key}" was saved with shape [${info.shape}], the task's is [${t.shape}]`,
          trainableFile,
        );
      }
    }
    for (const [key, t] of target.params) t.device.upload(t.storage, await st.readF32(key));
  }
  const optimizerFile = join(path, CHECKPOINT_FILES.optimizer);
  using st = await SafetensorsFile.open(optimizerFile);
  let meta: { options: AdamWStateDict["options"]; steps: Record<string, number> };
  try {
    meta = JSON.parse(st.metadata[ADAMW_METADATA] ?? "");
  } catch {
    throw new FormatError(`Cannot resume from ${path}: ${optimizerFile} has no "${ADAMW_METADATA}" metadata`);
  }
  const dict: AdamWStateDict = { options: meta.options, state: {} };
  for (const [key, step] of Object.entries(meta.steps)) {
    dict.state[key] = {
      step,
      shape: [...st.info(`${key}.exp_avg`).shape],
      expAvg: await st.readF32(`${key}.exp_avg`),
      expAvgSq: await st.readF32(`${key}.exp_avg_sq`),
    };
  }
  const device = target.params.values().next().value?.device;
  if (device) {
    target.optimizer.loadStateDict(dict, device);
    await device.flush(); // uploads are flushed by a submit (see PLATFORM.md)
  }
  return state;
}

/** Removes all but the newest `keep` checkpoint folders of `runDir`, and stale temporary ones. */
export async function pruneCheckpoints(runDir: string, keep: number): Promise<void> {
  const all = await listCheckpoints(runDir);
  for (const { path } of all.slice(0, Math.max(0, all.length - keep))) {
    await remove(path, { recursive: true });
  }
}

/** Removes temporary folders a crashed save left behind in `<runDir>/checkpoints`. */
export async function removeStaleTemporaries(runDir: string): Promise<void> {
  const dir = join(runDir, CHECKPOINTS_DIR);
  try {
    for (const entry of await readDir(dir)) {
      if (entry.name.startsWith(".tmp-") || entry.name.startsWith(".old-")) {
        await remove(join(dir, entry.name), { recursive: true });
      }
    }
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}

/** Renames `tmp` to `final`, replacing an existing folder (renamed aside first, then removed). */
async function replaceDir(tmp: string, final: string): Promise<void> {
  const aside = join(dirname(final), `.old-${basename(final)}-${crypto.randomUUID().slice(0, 8)}`);
  let moved = false;
  try {
    await rename(final, aside);
    moved = true;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  await rename(tmp, final);
  if (moved) await remove(aside, { recursive: true });
}

async function readState(file: string): Promise<TrainerState> {
  let state: unknown;
  try {
    state = JSON.parse(await readTextFile(file));
  } catch (err) {
    throw new FormatError(`Cannot resume: ${file} is missing or not JSON: ${(err as Error).message}`, file);
  }
  const step = (state as { step?: unknown } | null)?.step;
  if (typeof step !== "number" || !Number.isInteger(step) || step < 0) {
    throw new FormatError(
      `Cannot resume: ${file} has no integer "step": received ${JSON.stringify(step)}`,
      file,
    );
  }
  return state as TrainerState;
}
