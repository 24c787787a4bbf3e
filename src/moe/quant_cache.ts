/**
 * HQQ-quantized experts of a checkpoint, quantized once and kept on disk, as mixtral-offloading
 * ships its experts pre-quantized (ALGORITHMS.md C.1): quantizing every expert of a Mixtral-sized
 * model takes far longer than decoding with it, so the `cached` policy's packed experts and the
 * `floe` policy's INT2 up projections come from {@link quantizeExperts}, which reads what a cache
 * file already holds and quantizes (on the device, one matrix at a time) only what it lacks, then
 * rewrites the file with the union (atomically).
 *
 * The cache holds one file per MoE layer, `<cacheDir>/hqq-<bits>b-g<group>/layer-<l>.safetensors`,
 * written as soon as that layer is quantized (an interrupted run keeps its finished layers), with,
 * per `layer.expert.proj`, the packed codes (`….codes`, U32) and metadata (`….meta`, U32) of
 * {@link quantize}'s HQQ output, and in its metadata the format, the settings, each projection's
 * layout, and the checkpoint's fingerprint ({@link checkpointFingerprint}). A file made from
 * another checkpoint or with other settings is not read: it is replaced, with a notice.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { makeTempDir, remove } from "../host/runtime.ts";
 * import { HostExperts } from "./host_experts.ts";
 * import { quantizeExperts } from "./quant_cache.ts";
 * const device = await createDevice({ backend: "cpu" });
 * const store = await HostExperts.fromCheckpoint("test/fixtures/models/mixtral-top2-f32");
 * const cacheDir = await makeTempDir();
 * const spec = { bits: 2, groupSize: 16, projs: ["up"] } as const;
 * const a = await quantizeExperts(device, store, spec, { cacheDir });
 * const b = await quantizeExperts(device, store, spec, { cacheDir }); // read back, nothing quantized
 * assert.equal(b.quantized, 0);
 * assert.deepEqual(b.packed.get("1.3.up")!.codes, a.packed.get("1.3.up")!.codes);
 * await remove(cacheDir, { recursive: true });
 * ```
 * @module
 */
import { quantize } from "../compressors/quant/quantize.ts";
import type { Device } from "../device/device.ts";
import { isNotFound, mkdir, RandomAccessFile, readDir, readTextFile } from "../host/runtime.ts";
import { SafetensorsFile, type TensorInput, writeSafetensors } from "../io/safetensors.ts";
import { ProgressBar, type ProgressMode } from "../metrics/progress.ts";
import { Tensor } from "../tensor/tensor.ts";
import type { ExpertProj, HostExperts } from "./host_experts.ts";
import type { QuantizedTensor } from "../tensor/quantized_tensor.ts";

/** One packed matrix on the host. */
export interface HostPacked {
  codes: Uint32Array;
  meta: Uint32Array;
  /** The quantized tensor's layout fields (codes and meta are replaced by a slot's tensors). */
  layout: Omit<QuantizedTensor, "codes" | "meta" | "meta2" | "info">;
}

/** Which experts to quantize, how. */
export interface ExpertQuantSpec {
  bits: 2 | 3 | 4;
  groupSize: number;
  /** Projections of each expert. */
  projs: readonly ExpertProj[];
  /** MoE layers (default: all of the store's). */
  layers?: readonly number[];
}

/** Where and how {@link quantizeExperts} works. */
export interface QuantCacheOptions {
  /** The cache folder; without it every matrix is quantized and nothing is written. */
  cacheDir?: string;
  /** Progress while quantizing (default `"auto"`). */
  progress?: ProgressMode;
}

/** The packed matrices by `layer.expert.proj`, and how many were quantized now (not read). */
export interface QuantizedExpertSet {
  packed: Map<string, HostPacked>;
  quantized: number;
}

const FORMAT = "ferry-hqq-experts-1";

/**
 * The HQQ-quantized matrices of `spec` (groups along each matrix's input features), from the
 * cache where it has them.
 */
export async function quantizeExperts(
  device: Device,
  store: HostExperts,
  spec: ExpertQuantSpec,
  options: QuantCacheOptions = {},
): Promise<QuantizedExpertSet> {
  const { bits, groupSize } = spec;
  const layers = spec.layers ?? store.layers;
  const folder = options.cacheDir && `${options.cacheDir.replace(/[\\/]+$/, "")}/hqq-${bits}b-g${groupSize}`;
  if (folder && store.dir === undefined) {
    throw new TypeError(
      "Cannot cache quantized experts on disk: these experts were read from a loaded model, not a checkpoint " +
        "folder; open them with HostExperts.fromCheckpoint, or leave out cacheDir",
    );
  }
  const fingerprint = folder ? await checkpointFingerprint(store.dir!) : "";
  const keys = (l: number) =>
    Array.from({ length: store.numExperts }, (_, e) => spec.projs.map((p) => [l, e, p] as const)).flat();
  const cached = new Map<number, Map<string, HostPacked>>();
  let total = 0;
  for (const l of layers) {
    const have = folder
      ? await readCache(`${folder}/layer-${l}.safetensors`, fingerprint, bits, groupSize)
      : new Map();
    cached.set(l, have);
    total += keys(l).filter(([, e, p]) => !have.has(`${l}.${e}.${p}`)).length;
  }
  const out = new Map<string, HostPacked>();
  const bar = total > 0
    ? new ProgressBar({
      total,
      label: `hqq ${bits}-bit experts`,
      mode: options.progress ?? "auto",
      every: 32,
    })
    : undefined;
  bar?.start();
  let done = 0;
  const staging = new Float32Array(store.matrixValues());
  for (const l of layers) {
    const have = cached.get(l)!;
    const missing = keys(l).filter(([, e, p]) => !have.has(`${l}.${e}.${p}`));
    for (const [, e, p] of missing) {
      have.set(`${l}.${e}.${p}`, await quantizeOne(device, store, l, e, p, bits, groupSize, staging));
      bar?.update(++done);
    }
    // One file per layer, written as soon as the layer is done: an interrupted run keeps its layers.
    if (folder && missing.length > 0) {
      await writeCache(`${folder}/layer-${l}.safetensors`, have, fingerprint, bits, groupSize);
    }
    for (const [, e, p] of keys(l)) out.set(`${l}.${e}.${p}`, have.get(`${l}.${e}.${p}`)!);
  }
  bar?.finish();
  return { packed: out, quantized: total };
}

/** HQQ of one matrix on the device, read back to the host. */
async function quantizeOne(
  device: Device,
  store: HostExperts,
  l: number,
  e: number,
  p: ExpertProj,
  bits: 2 | 3 | 4,
  groupSize: number,
  staging: Float32Array,
): Promise<HostPacked> {
  const { hidden: C, intermediate: F } = store;
  store.pack(l, e, p, staging);
  using w = Tensor.fromArray(device, staging, p === "down" ? [C, F] : [F, C], { category: "staging" }); // [out, in]
  const q = await quantize(w, { method: "hqq", bits, groupSize });
  const codes = await q.codes.toArray() as Uint32Array;
  const meta = await q.meta.toArray() as Uint32Array;
  q.codes.dispose();
  q.meta.dispose();
  q.meta2?.dispose();
  const { codes: _c, meta: _m, meta2: _m2, info: _i, ...layout } = q;
  return { codes, meta, layout };
}

/**
 * A fingerprint of the checkpoint folder `dir`: SHA-256 over `config.json` and, per safetensors
 * file (sorted by name), its name, size and first and last 64 KiB. Cheap on a multi-GB folder, and
 * it changes when the weights are rewritten (a new seed, a fine-tune, another shard layout).
 */
export async function checkpointFingerprint(dir: string): Promise<string> {
  const root = dir.replace(/[\\/]+$/, "");
  const parts: Uint8Array[] = [new TextEncoder().encode(await readTextFile(`${root}/config.json`))];
  const shards = (await readDir(root)).filter((e) => e.isFile && e.name.endsWith(".safetensors"))
    .map((e) => e.name).sort();
  for (const name of shards) {
    using f = RandomAccessFile.open(`${root}/${name}`);
    const n = Math.min(65536, f.size);
    const head = new Uint8Array(n);
    const tail = new Uint8Array(n);
    f.readAt(head, 0);
    f.readAt(tail, f.size - n);
    parts.push(new TextEncoder().encode(`${name}:${f.size}`), head, tail);
  }
  const all = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return Array.from(hash, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The cache's matrices, or none when it is absent, from another checkpoint or other settings. */
async function readCache(path: string, fingerprint: string, bits: number, groupSize: number) {
  const packed = new Map<string, HostPacked>();
  let file: SafetensorsFile;
  try {
    file = await SafetensorsFile.open(path);
  } catch (err) {
    if (isNotFound(err)) return packed;
    throw err;
  }
  using f = file;
  const m = f.metadata;
  if (
    m.format !== FORMAT || m.fingerprint !== fingerprint || m.bits !== `${bits}` ||
    m.group_size !== `${groupSize}`
  ) {
    console.error(`note: ${path} was made from another checkpoint or with other settings; quantizing anew`);
    return packed;
  }
  const layouts = JSON.parse(m.layouts) as Record<string, HostPacked["layout"]>;
  for (const name of f.names.filter((n) => n.endsWith(".codes"))) {
    const key = name.slice(0, -".codes".length);
    const codes = (await f.read(name)).data;
    const meta = (await f.read(`${key}.meta`)).data;
    const u32 = (b: Uint8Array) => new Uint32Array(b.buffer, b.byteOffset, b.byteLength / 4); // a fresh buffer
    packed.set(key, { codes: u32(codes), meta: u32(meta), layout: layouts[key.split(".")[2]] });
  }
  return packed;
}

async function writeCache(
  path: string,
  packed: Map<string, HostPacked>,
  fingerprint: string,
  bits: number,
  groupSize: number,
): Promise<void> {
  const tensors = new Map<string, TensorInput>();
  const layouts: Record<string, HostPacked["layout"]> = {};
  for (const [key, h] of packed) {
    tensors.set(`${key}.codes`, { dtype: "U32", shape: [h.codes.length], data: h.codes });
    tensors.set(`${key}.meta`, { dtype: "U32", shape: [h.meta.length], data: h.meta });
    layouts[key.split(".")[2]] = h.layout;
  }
  await mkdir(path.replace(/[\\/][^\\/]*$/, ""), { recursive: true });
  await writeSafetensors(path, tensors, {
    format: FORMAT,
    fingerprint,
    bits: `${bits}`,
    group_size: `${groupSize}`,
    layouts: JSON.stringify(layouts),
  });
}
