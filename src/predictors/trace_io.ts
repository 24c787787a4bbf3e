/**
 * Routing traces as Arrow files, the training and evaluation sets of FloE's predictors
 * (ALGORITHMS.md A.4, A.5): one row per (sequence, layer, token), columns `sequence`, `layer`,
 * `token` (int32), `expert_0 … expert_{K−1}` (int32, best first), `logit_0 … logit_{E−1}` (float32)
 * and, unless left out, the MoE input `x_0 … x_{C−1}` (float32). Flat columns, so pandas, polars or
 * DuckDB read them as they are. Written atomically.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { loadModel } from "../models/load.ts";
 * import { traceMoe } from "./trace.ts";
 * import { loadTraces, saveTraces } from "./trace_io.ts";
 * const device = await createDevice({ backend: "cpu" });
 * using model = await loadModel("test/fixtures/models/mixtral-top2-f32", { device });
 * const dir = await Deno.makeTempDir();
 * await saveTraces(`${dir}/t.arrow`, [await traceMoe(model, Int32Array.of(1, 5, 9))]);
 * const [back] = await loadTraces(`${dir}/t.arrow`);
 * assert.deepEqual([back.get(1)!.T, back.get(1)!.selected.length, back.get(1)!.x.length], [3, 6, 96]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 * @module
 */
import { readFile } from "node:fs/promises";
import * as arrow from "apache-arrow";
import { writeFileAtomic } from "../io/atomic.ts";
import type { MoeLayerTrace } from "./trace.ts";

/** Options of {@link saveTraces}. */
export interface SaveTracesOptions {
  /** Write the MoE inputs `x_c` (default true; the largest part of a trace). */
  includeInput?: boolean;
}

/** Writes traces (one map per sequence) as one Arrow IPC file. */
export async function saveTraces(
  path: string,
  traces: readonly Map<number, MoeLayerTrace>[],
  options: SaveTracesOptions = {},
): Promise<void> {
  const { includeInput = true } = options;
  const rows: { s: number; l: number; t: number; tr: MoeLayerTrace }[] = [];
  traces.forEach((m, s) => {
    for (const [l, tr] of [...m].sort((a, b) => a[0] - b[0])) {
      for (let t = 0; t < tr.T; t++) rows.push({ s, l, t, tr });
    }
  });
  const first = rows[0]?.tr;
  if (!first) throw new RangeError("Cannot save traces: there is no traced token");
  const K = first.K;
  const E = first.logits.length / first.T;
  const C = first.x.length / first.T;
  const cols: Record<string, Int32Array | Float32Array> = {
    sequence: Int32Array.from(rows, (r) => r.s),
    layer: Int32Array.from(rows, (r) => r.l),
    token: Int32Array.from(rows, (r) => r.t),
  };
  for (let k = 0; k < K; k++) cols[`expert_${k}`] = Int32Array.from(rows, (r) => r.tr.selected[r.t * K + k]);
  for (let e = 0; e < E; e++) cols[`logit_${e}`] = Float32Array.from(rows, (r) => r.tr.logits[r.t * E + e]);
  if (includeInput) {
    for (let c = 0; c < C; c++) cols[`x_${c}`] = Float32Array.from(rows, (r) => r.tr.x[r.t * C + c]);
  }
  await writeFileAtomic(path, arrow.tableToIPC(arrow.tableFromArrays(cols), "file"));
}

/**
 * Reads a trace file back: one map (MoE layer → trace) per sequence; `x` is empty when the file
 * was written without inputs.
 *
 * @throws {TypeError} when the file lacks the trace columns
 */
export async function loadTraces(path: string): Promise<Map<number, MoeLayerTrace>[]> {
  const table = arrow.tableFromIPC(await readFile(path));
  const names = table.schema.names.map(String);
  if (!["sequence", "layer", "token", "expert_0", "logit_0"].every((n) => names.includes(n))) {
    throw new TypeError(
      `Cannot load traces from ${path}: expected columns sequence, layer, token, expert_k, logit_e: received ${
        names.join(", ")
      }`,
    );
  }
  const col = (n: string) => table.getChild(n)!.toArray() as Int32Array | Float32Array;
  const count = (prefix: string) => names.filter((n) => n.startsWith(prefix)).length;
  const [K, E, C] = [count("expert_"), count("logit_"), count("x_")];
  const experts = Array.from({ length: K }, (_, k) => col(`expert_${k}`));
  const logits = Array.from({ length: E }, (_, e) => col(`logit_${e}`));
  const xs = Array.from({ length: C }, (_, c) => col(`x_${c}`));
  const [seq, layer, token] = [col("sequence"), col("layer"), col("token")];
  const groups = new Map<string, number[]>();
  for (let i = 0; i < table.numRows; i++) {
    const key = `${seq[i]}:${layer[i]}`;
    groups.set(key, [...(groups.get(key) ?? []), i]);
  }
  const out: Map<number, MoeLayerTrace>[] = [];
  for (const [key, idx] of groups) {
    const [s, l] = key.split(":").map(Number);
    const T = idx.length;
    const tr: MoeLayerTrace = {
      T,
      K,
      x: new Float32Array(T * C),
      logits: new Float32Array(T * E),
      selected: new Int32Array(T * K),
    };
    for (const i of idx) {
      const t = token[i];
      for (let k = 0; k < K; k++) tr.selected[t * K + k] = experts[k][i];
      for (let e = 0; e < E; e++) tr.logits[t * E + e] = logits[e][i];
      for (let c = 0; c < C; c++) tr.x[t * C + c] = xs[c][i];
    }
    while (out.length <= s) out.push(new Map());
    out[s].set(l, tr);
  }
  return out;
}
