/**
 * `ferry inspect PATH`: a `.safetensors` file's tensors, or a Hugging Face checkpoint folder's
 * architecture, parameter counts by component and bytes on disk. Only `config.json` and the
 * safetensors headers are read; no weight goes to a device.
 * @module
 */
import { type FileInfo, isNotFound, stat } from "../host/runtime.ts";
import { formatBytes } from "../device/ledger.ts";
import { ConfigError } from "../errors.ts";
import { DTYPE_BYTES, SafetensorsFile, type TensorInfo } from "../io/safetensors.ts";
import { ShardedCheckpoint } from "../io/sharded.ts";
import type { ModelConfig } from "../models/config.ts";
import { parseModelConfig } from "../models/config.ts";
import { readHfConfig } from "../models/load.ts";
import { checkpointTensors } from "../models/weights.ts";
import { fmtInt, isFile, join, parseFlags, UsageError, writeErr } from "./_common.ts";

export const INSPECT_USAGE =
  `  inspect PATH         a .safetensors file: its tensors and __metadata__; an HF checkpoint folder
                       (config.json): architecture, parameters by component, dtypes and bytes on disk
                       (reads config.json and the safetensors headers only)
      --tensors            also list the tensors of a checkpoint folder
      --limit N            tensor rows to print (default 40, 0 = all)`;

/** Runs `ferry inspect`. */
export async function inspectCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags("inspect", args, {
    limit: { type: "string" },
    tensors: { type: "boolean" },
  });
  if (values.help) {
    console.log(`usage: deno task ferry inspect PATH [options]\n\n${INSPECT_USAGE}`);
    return 0;
  }
  const limitText = (values.limit as string | undefined) ?? "40";
  const limit = /^\d+$/.test(limitText) ? Number(limitText) : NaN;
  if (!Number.isInteger(limit)) {
    throw new RangeError(`Cannot inspect: --limit must be a non-negative integer: received ${limitText}`);
  }
  if (positionals.length !== 1) {
    throw new UsageError("Cannot inspect: expected one PATH (a .safetensors file or a folder)");
  }
  const path = positionals[0];
  let info: FileInfo;
  try {
    info = await stat(path);
  } catch (err) {
    if (!isNotFound(err)) throw err;
    throw new UsageError(`inspect: ${path}: no such file or folder`);
  }
  if (info.isDirectory && await isFile(join(path, "config.json"))) {
    const hfConfig = await readHfConfig(path);
    let config: ModelConfig | undefined;
    try {
      config = parseModelConfig(hfConfig);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      writeErr(
        `ferry: note: ${err.message.split("\n").map((l) => l.trim()).join(" ")}; listing the tensors only\n`,
      );
    }
    if (config) {
      await inspectCheckpoint(path, hfConfig, config);
      if (values.tensors) {
        console.log();
        await listTensors(path, true, limit);
      }
      return 0;
    }
  }
  await listTensors(path, info.isDirectory, limit);
  return 0;
}

/** The tensor table of a file or folder (the original `inspect`). */
async function listTensors(path: string, isDir: boolean, limit: number): Promise<void> {
  using ckpt = isDir ? await ShardedCheckpoint.open(path) : null;
  using file = isDir ? null : await SafetensorsFile.open(path);
  const names = ckpt ? ckpt.names : file!.names;
  const infoOf = (n: string) => ckpt ? ckpt.info(n) : file!.info(n);
  let params = 0;
  let bytes = 0;
  const byDtype = new Map<string, number>();
  const rows: string[][] = [];
  for (const name of names) {
    const i = infoOf(name);
    const n = i.byteLength / DTYPE_BYTES[i.dtype];
    params += n;
    bytes += i.byteLength;
    byDtype.set(i.dtype, (byDtype.get(i.dtype) ?? 0) + n);
    rows.push([name, i.dtype, `[${i.shape.join(", ")}]`, formatBytes(i.byteLength)]);
  }
  const shown = limit > 0 ? rows.slice(0, limit) : rows;
  const w = [0, 1, 2].map((c) => Math.max(...shown.map((r) => r[c].length), 4));
  for (const r of shown) {
    console.log(`${r[0].padEnd(w[0])}  ${r[1].padEnd(w[1])}  ${r[2].padEnd(w[2])}  ${r[3]}`);
  }
  if (shown.length < rows.length) console.log(`... ${rows.length - shown.length} more (--limit 0 shows all)`);
  const files = ckpt ? `${ckpt.shardFiles.length} file(s)` : "1 file";
  const dtypes = [...byDtype].map(([d, n]) => `${d} ${fmtInt(n)}`).join(", ");
  console.log(
    `\n${names.length} tensor${names.length === 1 ? "" : "s"} in ${files}; ${
      fmtInt(params)
    } parameters (${dtypes}); ${formatBytes(bytes)}`,
  );
  const meta = Object.entries(file?.metadata ?? {});
  if (meta.length > 0) {
    const width = Math.max(...meta.map(([k]) => k.length));
    console.log(`\n__metadata__\n${meta.map(([k, v]) => `  ${k.padEnd(width)}  ${v}`).join("\n")}`);
  }
}

/** Parameter components, in print order. */
const COMPONENTS = [
  ["embedding", "embedding"],
  ["attention", "attention"],
  ["mlp", "mlp (dense)"],
  ["experts", "experts (routed)"],
  ["sharedExpert", "shared expert"],
  ["router", "router"],
  ["norms", "norms"],
  ["lmHead", "lm head"],
] as const;
type Component = typeof COMPONENTS[number][0];

/** The component of a Ferry parameter name (as `CausalLM.numParameters` counts them). */
function componentOf(name: string): Component {
  if (name.startsWith("model.embed_tokens")) return "embedding";
  if (name.startsWith("lm_head")) return "lmHead";
  if (name.includes(".self_attn.")) return "attention";
  if (name.includes(".mlp.experts.")) return "experts";
  if (name.includes(".mlp.shared_expert")) return "sharedExpert";
  if (name.includes(".mlp.gate.")) return "router";
  if (name.includes(".mlp.")) return "mlp";
  return "norms";
}

const numel = (i: TensorInfo) => i.shape.reduce((a, b) => a * b, 1);
const yesNo = (b: boolean) => b ? "yes" : "no";

function row(key: string, value: string | number): string {
  return `  ${key.padEnd(18)}${typeof value === "number" ? fmtInt(value) : value}`;
}

/** Architecture, parameters by component, and bytes by dtype, from config.json and the headers. */
async function inspectCheckpoint(
  dir: string,
  hfConfig: Record<string, unknown>,
  c: ModelConfig,
): Promise<void> {
  using ckpt = await ShardedCheckpoint.open(dir);
  const arch = Array.isArray(hfConfig.architectures) ? ` (${hfConfig.architectures.join(", ")})` : "";
  const lines: string[] = [`${dir}`, "architecture"];
  lines.push(row("model_type", `${c.modelType}${arch}`));
  lines.push(row("family", c.family === "moe" ? "MoE" : "dense"));
  lines.push(row("layers", c.layers));
  lines.push(row("hidden", c.hidden));
  const grouping = c.kvHeads === c.heads ? "MHA" : c.kvHeads === 1 ? "MQA" : "GQA";
  lines.push(row("heads", `${c.heads} query, ${c.kvHeads} kv (${grouping}), head dim ${c.headDim}`));
  const extras = [
    c.attentionBias ? "q/k/v bias" : "",
    c.oProjBias ? "o bias" : "",
    c.qkNorm === "per_head" ? "q/k norm per head" : c.qkNorm === "full" ? "q/k norm over the projection" : "",
    c.slidingWindow !== null ? `sliding window ${c.slidingWindow}` : "",
  ].filter((s) => s !== "");
  if (extras.length > 0) lines.push(row("attention", extras.join(", ")));
  lines.push(row("vocab", c.vocabSize));
  if (c.moeLayers.some((m) => !m)) lines.push(row("mlp width", c.intermediate));
  if (c.layerSizes) {
    // A structurally pruned checkpoint ("ferry_pruning" in config.json): each layer's own sizes.
    const pruned = c.layerSizes.flatMap((s, i) =>
      s.intermediate !== c.intermediate || s.kvHeads !== c.kvHeads
        ? [`${i}: mlp ${s.intermediate}, heads ${s.heads}/${s.kvHeads} kv`]
        : []
    );
    lines.push(row("pruned layers", pruned.length > 0 ? pruned.join("; ") : "none"));
  }
  if (c.family === "moe") {
    const moe = c.moeLayers.flatMap((m, i) => m ? [i] : []);
    lines.push(
      row(
        "experts",
        `${c.numExperts}, top-${c.topK} (${c.normTopkProb ? "renormalised" : "not renormalised"})`,
      ),
    );
    lines.push(row("expert width", c.moeIntermediate));
    lines.push(
      row(
        "shared expert",
        c.sharedExpertIntermediate > 0 ? `yes, width ${c.sharedExpertIntermediate}, sigmoid-gated` : "no",
      ),
    );
    lines.push(row("moe layers", `${moe.length} of ${c.layers} (${moe.join(", ")})`));
  }
  lines.push(row("rope theta", String(c.ropeTheta)));
  lines.push(row("rms norm eps", String(c.rmsNormEps)));
  lines.push(row("max positions", c.maxPositionEmbeddings));
  lines.push(row("tied embeddings", yesNo(c.tieWordEmbeddings)));

  // Parameters by component: every checkpoint tensor the model uses, mapped to its Ferry parameter.
  const expected = checkpointTensors(c);
  const paramOf = new Map(expected.map((e) => [e.hfName, e.param]));
  const counts = new Map<Component, number>(COMPONENTS.map(([k]) => [k, 0]));
  const byDtype = new Map<string, { params: number; bytes: number }>();
  let total = 0;
  let bytes = 0;
  const unused: string[] = [];
  for (const name of ckpt.names) {
    const info = ckpt.info(name);
    const n = numel(info);
    const d = byDtype.get(info.dtype) ?? { params: 0, bytes: 0 };
    d.params += n;
    d.bytes += info.byteLength;
    byDtype.set(info.dtype, d);
    bytes += info.byteLength;
    const param = paramOf.get(name);
    if (param === undefined) {
      // transformers ignores these too: a tied model's stray lm_head, rotary tables
      const harmless = (c.tieWordEmbeddings && name === "lm_head.weight") ||
        /rotary_emb\.inv_freq$/.test(name);
      if (!harmless) unused.push(name);
      continue;
    }
    counts.set(componentOf(param), counts.get(componentOf(param))! + n);
    total += n;
  }
  const missing = expected.filter((e) => !ckpt.has(e.hfName)).map((e) => e.hfName);
  const misshaped = expected.filter((e) => {
    if (!ckpt.has(e.hfName)) return false;
    const s = ckpt.info(e.hfName).shape;
    return s.length !== e.shape.length || s.some((v, i) => v !== e.shape[i]);
  }).map((e) => `${e.hfName} [${ckpt.info(e.hfName).shape}] (config: [${e.shape}])`);

  lines.push("parameters");
  for (const [key, label] of COMPONENTS) {
    const n = counts.get(key)!;
    if (key === "lmHead" && c.tieWordEmbeddings) {
      lines.push(row(label, "0 (tied to the embedding)"));
    } else if (n > 0 || ["embedding", "attention", "norms", "lmHead"].includes(key)) {
      lines.push(row(label, n));
    }
  }
  lines.push(row("total", total));
  if (c.family === "moe") {
    const experts = counts.get("experts")!;
    lines.push(row("active per token", total - experts + Math.round(experts * c.topK / c.numExperts)));
  }

  lines.push("on disk");
  for (const [dtype, d] of [...byDtype].sort()) {
    lines.push(row(dtype, `${fmtInt(d.params)} values, ${formatBytes(d.bytes)}`));
  }
  lines.push(
    row("total", `${fmtInt(bytes)} bytes (${formatBytes(bytes)}) in ${ckpt.shardFiles.length} file(s)`),
  );
  lines.push(row("as f32 on device", formatBytes(total * 4)));
  console.log(lines.join("\n"));

  const warn = (what: string, list: string[]) =>
    writeErr(
      `ferry: warning: ${list.length} ${what}: ${list.slice(0, 8).join(", ")}${
        list.length > 8 ? ", ..." : ""
      }\n`,
    );
  if (missing.length > 0) warn("tensors that config.json implies are missing", missing);
  if (misshaped.length > 0) warn("tensors do not match config.json", misshaped);
  if (unused.length > 0) warn("tensors are not used by the model (not counted)", unused);
}
