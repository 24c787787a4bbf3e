/**
 * Hugging Face checkpoint weights split over several safetensors files ("shards"), described by
 * `model.safetensors.index.json`:
 *
 * ```json
 * { "metadata": { "total_size": 123 }, "weight_map": { "lm_head.weight": "model-00002-of-00002.safetensors" } }
 * ```
 *
 * A folder with a single `model.safetensors` reads the same way. Reads are lazy: opening parses
 * every shard's header, and each tensor is read from its shard on demand.
 *
 * @module
 */

import { isNotFound, mkdir, readDir, readTextFile, remove, stat } from "../host/runtime.ts";
import { FormatError } from "../errors.ts";
import { writeChunksAtomic, writeFileAtomic } from "./atomic.ts";
import { layoutSafetensors, type TensorData, type TensorInput, type TensorsInput } from "./safetensors.ts";
import {
  DTYPE_BYTES,
  isSafetensorsDtype,
  SAFETENSORS_DTYPES,
  type SafetensorsDtype,
  type SafetensorsTensor,
  type TensorInfo,
} from "./safetensors_format.ts";
import { SafetensorsFile } from "./safetensors_reader.ts";

/** File name of the shard index. */
export const INDEX_NAME = "model.safetensors.index.json";
/** File name of an unsharded checkpoint. */
export const SINGLE_NAME = "model.safetensors";
/** Hugging Face's default `max_shard_size` ("5GB", decimal). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;
/** Shard file names as Hugging Face writes them: `model-00001-of-00003.safetensors`. */
const SHARD_RE = /^model-\d{5}-of-\d{5}\.safetensors$/;

/** HF shard file name for shard `i` (1-based) of `n`. */
export function shardFileName(i: number, n: number): string {
  return `model-${String(i).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.safetensors`;
}

const join = (dir: string, name: string) => `${dir.replace(/[\\/]+$/, "")}/${name}`;

async function exists(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

/** Validate the index JSON: `weight_map` of plain shard file names, optional `metadata` object. */
function parseIndex(
  text: string,
  path: string,
): { metadata: Record<string, unknown>; weightMap: [string, string][] } {
  const fail = (problem: string): never => {
    throw new FormatError(
      `Cannot read checkpoint index ${path}: ${problem}; re-save the checkpoint or fix the index`,
      path,
    );
  };
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return fail(`not valid JSON (${(e as Error).message})`);
  }
  if (!isObject(raw)) return fail("expected a JSON object with a weight_map");
  if (!isObject(raw.weight_map)) {
    return fail(`"weight_map" must be an object mapping tensor names to shard files`);
  }
  if (raw.metadata !== undefined && !isObject(raw.metadata)) fail(`"metadata" must be an object`);
  const weightMap = Object.entries(raw.weight_map);
  for (const [name, file] of weightMap) {
    if (typeof file !== "string" || file === "" || /[\\/]/.test(file) || file === "." || file === "..") {
      fail(
        `weight_map entry for "${name}" must be a shard file name in the same folder, received ${
          JSON.stringify(file)
        }`,
      );
    }
  }
  return {
    metadata: (raw.metadata ?? {}) as Record<string, unknown>,
    weightMap: weightMap as [string, string][],
  };
}

/**
 * A Hugging Face checkpoint folder's weights: `model.safetensors`, or shards listed in
 * `model.safetensors.index.json` (a single file wins when both exist, as in transformers).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ShardedCheckpoint, writeShardedCheckpoint } from "./sharded.ts";
 * const dir = await Deno.makeTempDir();
 * const w = (v: number) => ({ dtype: "F32" as const, shape: [2], data: new Float32Array([v, v]) });
 * await writeShardedCheckpoint(dir, { a: w(1), b: w(2) }, { maxShardBytes: 8 }); // two shards
 * using ckpt = await ShardedCheckpoint.open(dir);
 * assert.ok(ckpt.shardOf("b") === "model-00002-of-00002.safetensors");
 * assert.ok((await ckpt.readF32("b"))[0] === 2);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class ShardedCheckpoint implements Disposable {
  /** The checkpoint folder. */
  readonly dir: string;
  /** The index's `metadata` (e.g. `total_size`); `{}` for a single-file checkpoint. */
  readonly indexMetadata: Readonly<Record<string, unknown>>;
  #shards: Map<string, SafetensorsFile>;
  #where: Map<string, string>;

  private constructor(
    dir: string,
    indexMetadata: Record<string, unknown>,
    shards: Map<string, SafetensorsFile>,
    where: Map<string, string>,
  ) {
    this.dir = dir;
    this.indexMetadata = indexMetadata;
    this.#shards = shards;
    this.#where = where;
  }

  /**
   * Open a checkpoint folder: parse the index (if any) and every shard's header, and check that
   * each `weight_map` entry exists in the shard it names.
   *
   * @param dir Folder holding `model.safetensors` or `model.safetensors.index.json` and its shards.
   * @throws {FormatError} When neither file exists, the index is malformed, a shard is missing or
   * malformed, or a listed tensor is not in its shard.
   */
  static async open(dir: string): Promise<ShardedCheckpoint> {
    const shards = new Map<string, SafetensorsFile>();
    try {
      if (await exists(join(dir, SINGLE_NAME))) {
        const st = await SafetensorsFile.open(join(dir, SINGLE_NAME));
        shards.set(SINGLE_NAME, st);
        return new ShardedCheckpoint(dir, {}, shards, new Map(st.names.map((n) => [n, SINGLE_NAME])));
      }
      const indexPath = join(dir, INDEX_NAME);
      if (!(await exists(indexPath))) {
        throw new FormatError(
          `Cannot open checkpoint ${dir}: found neither ${SINGLE_NAME} nor ${INDEX_NAME}; pass a Hugging Face checkpoint folder`,
          dir,
        );
      }
      const { metadata, weightMap } = parseIndex(await readTextFile(indexPath), indexPath);
      for (const [name, file] of weightMap) {
        let st = shards.get(file);
        if (st === undefined) {
          if (!(await exists(join(dir, file)))) {
            throw new FormatError(
              `Cannot open checkpoint ${dir}: shard ${file} (listed for tensor "${name}" in ${INDEX_NAME}) does not exist; re-download or re-save the checkpoint`,
              indexPath,
            );
          }
          st = await SafetensorsFile.open(join(dir, file));
          shards.set(file, st);
        }
        if (!st.has(name)) {
          throw new FormatError(
            `Cannot open checkpoint ${dir}: ${INDEX_NAME} maps tensor "${name}" to ${file}, but that shard has no such tensor; re-save the checkpoint or fix the index`,
            indexPath,
          );
        }
      }
      return new ShardedCheckpoint(dir, metadata, shards, new Map(weightMap));
    } catch (err) {
      for (const st of shards.values()) st.close();
      throw err;
    }
  }

  /** All tensor names, sorted. */
  get names(): string[] {
    return [...this.#where.keys()].sort();
  }

  /** Shard file names (relative to {@linkcode dir}), in the order they were opened. */
  get shardFiles(): string[] {
    return [...this.#shards.keys()];
  }

  /** `true` when the checkpoint holds a tensor called `name`. */
  has(name: string): boolean {
    return this.#where.has(name);
  }

  /**
   * The shard file (relative to {@linkcode dir}) that holds `name`.
   *
   * @throws {RangeError} When there is no tensor called `name`.
   */
  shardOf(name: string): string {
    const file = this.#where.get(name);
    if (file === undefined) {
      throw new RangeError(
        `Cannot find tensor ${
          JSON.stringify(name)
        } in checkpoint ${this.dir}: it holds ${this.#where.size} tensors; check the name or use .names`,
      );
    }
    return file;
  }

  /** The open shard that holds `name`. */
  shard(name: string): SafetensorsFile {
    return this.#shards.get(this.shardOf(name))!;
  }

  /** Dtype, shape and byte range of `name` in its shard (no I/O). */
  info(name: string): TensorInfo {
    return this.shard(name).info(name);
  }

  /** Read one tensor's exact bytes from its shard. */
  read(name: string): Promise<SafetensorsTensor> {
    return this.shard(name).read(name);
  }

  /** Read a float tensor as float32 (see {@linkcode SafetensorsFile.readF32}). */
  readF32(name: string): Promise<Float32Array> {
    return this.shard(name).readF32(name);
  }

  /** Close every shard. Idempotent. */
  close(): void {
    for (const st of this.#shards.values()) st.close();
  }

  /** Same as {@linkcode close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Options for {@linkcode writeShardedCheckpoint}. */
export interface WriteShardedOptions {
  /** Largest shard in tensor bytes; a bigger tensor gets a shard of its own. Default 5 GB. */
  maxShardBytes?: number;
  /** `__metadata__` of every shard file. Default `{ format: "pt" }`, which transformers checks for. */
  metadata?: Record<string, string>;
  /** Extra index `metadata` entries, written beside `total_size`. */
  indexMetadata?: Record<string, unknown>;
}

/** What {@linkcode writeShardedCheckpoint} wrote. */
export interface WriteShardedResult {
  /** Safetensors files written, relative to the folder, in shard order. */
  readonly files: string[];
  /** Sum of all tensor bytes (the index's `metadata.total_size`). */
  readonly totalSize: number;
}

/**
 * Write weights as Hugging Face does: one `model.safetensors` when they fit in one shard, else
 * `model-0000i-of-0000N.safetensors` plus `model.safetensors.index.json`. Tensors fill shards in
 * input order, a new shard starting when the next tensor would exceed `maxShardBytes` (the
 * huggingface_hub rule). Every file is written atomically; the index goes last, and stale files
 * from an earlier save in the folder (shards, the index or the single file) are removed afterwards.
 *
 * @param dir Destination folder; created if missing.
 * @param tensors Tensors by name.
 * @param options Shard size and metadata.
 * @throws {TypeError} On invalid tensors or metadata, before anything is written.
 * @throws {RangeError} When `maxShardBytes` is not a positive integer.
 */
export async function writeShardedCheckpoint(
  dir: string,
  tensors: TensorsInput,
  options: WriteShardedOptions = {},
): Promise<WriteShardedResult> {
  const list = (tensors instanceof Map ? [...tensors] : Object.entries(tensors)) as [string, TensorInput][];
  const plan = planShards(list.map(([name, t]) => [name, t.data?.byteLength ?? 0]), options.maxShardBytes);
  const { metadata = { format: "pt" } } = options;
  const byName = new Map(list);
  // validate every shard before writing any
  const layouts = plan.groups.map((g) =>
    layoutSafetensors(new Map(g.map((n) => [n, byName.get(n)!])), metadata)
  );
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < layouts.length; i++) {
    await writeChunksAtomic(join(dir, plan.files[i]), [layouts[i].header, ...layouts[i].chunks]);
  }
  await finishShards(dir, plan, options.indexMetadata ?? {});
  return { files: plan.files, totalSize: plan.totalSize };
}

/** A tensor whose bytes are made only when its shard is written (see {@linkcode writeShardedLazy}). */
export interface LazyTensorInput {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Makes the tensor's data (`product(shape)` elements of `dtype`); called once, when its shard is written. */
  readonly data: () => TensorData;
}

/**
 * {@linkcode writeShardedCheckpoint} for checkpoints too large to hold in memory: shards are
 * planned from shapes and dtypes, and each shard's tensors are made, written (atomically) and
 * dropped before the next shard's are made, so memory holds one shard at a time. A tensor whose
 * data is invalid fails its shard; shards already written stay, and no index is written.
 *
 * @param dir Destination folder; created if missing.
 * @param tensors Tensors by name, in shard order.
 * @param options Shard size and metadata.
 * @throws {TypeError} On an unknown dtype, a bad shape or data that does not match them.
 * @throws {RangeError} When `maxShardBytes` is not a positive integer.
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ShardedCheckpoint, writeShardedLazy } from "./sharded.ts";
 * const dir = await Deno.makeTempDir();
 * const w = (v: number) => ({ dtype: "F32" as const, shape: [2], data: () => new Float32Array([v, v]) });
 * const { files } = await writeShardedLazy(dir, new Map([["a", w(1)], ["b", w(2)]]), { maxShardBytes: 8 });
 * assert.deepEqual(files, ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]);
 * using ckpt = await ShardedCheckpoint.open(dir);
 * assert.ok((await ckpt.readF32("b"))[1] === 2);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeShardedLazy(
  dir: string,
  tensors: ReadonlyMap<string, LazyTensorInput>,
  options: WriteShardedOptions = {},
): Promise<WriteShardedResult> {
  const sizes: [string, number][] = [];
  for (const [name, t] of tensors) {
    if (!isSafetensorsDtype(t.dtype)) {
      throw new TypeError(
        `Cannot write tensor "${name}": unknown dtype ${JSON.stringify(t.dtype)} (supported: ${
          SAFETENSORS_DTYPES.join(", ")
        })`,
      );
    }
    const count = t.shape.reduce((a, b) => a * b, 1);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new TypeError(
        `Cannot write tensor "${name}": shape must be non-negative integers, received ${
          JSON.stringify(t.shape)
        }`,
      );
    }
    sizes.push([name, count * DTYPE_BYTES[t.dtype]]);
  }
  const plan = planShards(sizes, options.maxShardBytes);
  const { metadata = { format: "pt" } } = options;
  await mkdir(dir, { recursive: true });
  for (let i = 0; i < plan.groups.length; i++) {
    const made = new Map<string, TensorInput>();
    for (const name of plan.groups[i]) {
      const t = tensors.get(name)!;
      made.set(name, { dtype: t.dtype, shape: t.shape, data: t.data() });
    }
    const layout = layoutSafetensors(made, metadata);
    await writeChunksAtomic(join(dir, plan.files[i]), [layout.header, ...layout.chunks]);
  }
  await finishShards(dir, plan, options.indexMetadata ?? {});
  return { files: plan.files, totalSize: plan.totalSize };
}

/** Which tensors go in which shard file. */
interface ShardPlan {
  groups: string[][];
  files: string[];
  totalSize: number;
}

/** Groups tensors (name, bytes) into shards by the huggingface_hub rule, in input order. */
function planShards(sizes: readonly [string, number][], maxShardBytes = DEFAULT_MAX_SHARD_BYTES): ShardPlan {
  if (!Number.isSafeInteger(maxShardBytes) || maxShardBytes <= 0) {
    throw new RangeError(
      `Cannot write sharded checkpoint: maxShardBytes must be a positive integer, received ${maxShardBytes}`,
    );
  }
  const groups: string[][] = [];
  let current: string[] = [];
  let currentBytes = 0;
  let totalSize = 0;
  for (const [name, bytes] of sizes) {
    totalSize += bytes;
    if (bytes > maxShardBytes) {
      groups.push([name]);
      continue;
    }
    if (currentBytes + bytes > maxShardBytes) {
      groups.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(name);
    currentBytes += bytes;
  }
  if (current.length > 0 || groups.length === 0) groups.push(current);
  const files = groups.length === 1
    ? [SINGLE_NAME]
    : groups.map((_, i) => shardFileName(i + 1, groups.length));
  return { groups, files, totalSize };
}

/** Writes the index (when sharded), then removes stale shard, index or single files of an earlier save. */
async function finishShards(
  dir: string,
  plan: ShardPlan,
  indexMetadata: Record<string, unknown>,
): Promise<void> {
  const keep = new Set(plan.files);
  if (plan.groups.length > 1) {
    const byKey = (
      [a]: readonly [string, unknown],
      [b]: readonly [string, unknown],
    ) => (a < b ? -1 : a > b ? 1 : 0);
    const weightMap = Object.fromEntries(
      plan.groups.flatMap((g, i) => g.map((name) => [name, plan.files[i]] as const)).sort(byKey),
    );
    const meta = Object.fromEntries(
      Object.entries({ ...indexMetadata, total_size: plan.totalSize }).sort(byKey),
    );
    // transformers writes json.dumps(index, indent=2, sort_keys=True) + "\n"; ensure_ascii escapes non-ASCII.
    const json = JSON.stringify({ metadata: meta, weight_map: weightMap }, null, 2)
      .replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
    await writeFileAtomic(join(dir, INDEX_NAME), json + "\n");
    keep.add(INDEX_NAME);
  }
  for (const entry of await readDir(dir)) {
    const stale = entry.isFile && !keep.has(entry.name) &&
      (SHARD_RE.test(entry.name) || entry.name === SINGLE_NAME || entry.name === INDEX_NAME);
    if (stale) await remove(join(dir, entry.name));
  }
}
