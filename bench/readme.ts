/**
 * The README's performance figures, generated from the committed results in `bench/results/`: one
 * source of truth. Each figure block in `README.md` sits between `<!-- bench:ID -->` and
 * `<!-- /bench:ID -->` and is exactly what {@link renderBlock} makes of its results file;
 * `test/bench/readme_figures_test.ts` fails when a block differs from its file or the file is missing.
 *
 * Run: `deno task bench:readme` (after a benchmark) rewrites the blocks from the results.
 * @module
 */
import { writeFileAtomic } from "../src/io/atomic.ts";
import { renderFloeBench, renderFloePlan } from "./readme_floe.ts";
import type { BenchRow } from "./_harness.ts";

/** A results file as the benchmarks write it. */
export interface BenchResults {
  meta: Record<string, unknown> & { date?: string; command?: string; machine?: Record<string, unknown> };
  rows: BenchRow[];
}

/** A README block: the results file it is made from, and how. */
export interface ReadmeBlock {
  file: string;
  render(results: BenchResults): string;
}

const int = (x: number) => Math.round(x).toLocaleString("en-US");
const day = (meta: BenchResults["meta"]) => (meta.date ?? "").slice(0, 10);
const machine = (meta: BenchResults["meta"]) => {
  const m = meta.machine ?? {};
  return `${m.cores ?? meta.cores} cores (${m.cpu ?? "cpu unknown"})`;
};

/** Ferry's CPU backend against PyTorch (`bench/peers.ts`). */
function renderPeers({ meta, rows }: BenchResults): string {
  const models = [...new Set(rows.map((r) => r.name))];
  const groups = ["prefill", "decode", "train full", "train LoRA r8"];
  const cell = (model: string, group: string) => {
    const r = rows.find((x) => x.name === model && x.group === group);
    if (!r || r.limit === undefined) return "—";
    return `${int(r.value)} / ${int(r.limit)} (${(r.value / r.limit).toFixed(2)}×)`;
  };
  const ferry = meta.ferry as { device?: string } | undefined;
  const torch = meta.torch as { version?: string } | undefined;
  return [
    "| tokens/s, Ferry / PyTorch (ratio) | prefill (P 128) | decode | full fine-tuning | LoRA r 8 |",
    "| --- | ---: | ---: | ---: | ---: |",
    ...models.map((m) => `| ${m} | ${groups.map((g) => cell(m, g)).join(" | ")} |`),
    "",
    `Measured ${day(meta)} by \`${meta.command}\` on ${machine(meta)}: Ferry's ${
      ferry?.device ?? "CPU backend"
    } ` +
    `against PyTorch ${
      torch?.version ?? "?"
    } on the same OpenBLAS and thread count; medians of the timed runs ` +
    `after warm-ups (T 128, batch 2, AdamW for training). Both sides' logits agree to ~1e-5 and decode the same ids.`,
  ].join("\n");
}

/** Full fine-tuning against LoRA, per backend (`bench/training.ts`). */
function renderTraining({ meta, rows }: BenchResults): string {
  const get = (name: string) => rows.find((r) => r.name === name);
  const kinds = [...new Set(rows.map((r) => /\[(\w+)\]/.exec(r.name)?.[1]).filter((k) => k))] as string[];
  const line = (k: string) => {
    const full = get(`full [${k}]`), lora = get(`lora r=8 [${k}]`);
    const fullMem = get(`full [${k}] peak ledger`), loraMem = get(`lora r=8 [${k}] peak ledger`);
    const saving = get(`LoRA saving [${k}]`);
    const tps = (r?: BenchRow) => r ? int(r.value) : "—";
    const mem = (r?: BenchRow) => r ? `${r.value.toFixed(1)} MiB` : "—";
    return `| ${k} | ${tps(full)} | ${tps(lora)} | ${mem(fullMem)} | ${mem(loraMem)} | ${
      saving ? `${saving.value.toFixed(2)}×` : "—"
    } |`;
  };
  const byCategory = kinds.flatMap((k) =>
    ["full", "lora r=8"].map((m) => {
      const r = get(`${m} [${k}] peak ledger`);
      return r ? `${m === "full" ? "full" : "LoRA"} on ${k}: ${r.note}` : "";
    }).filter((x) => x)
  );
  const devices = (meta.devices as string[] | undefined)?.join("; ") ?? "";
  return [
    "| backend | full tokens/s | LoRA r 8 tokens/s | full peak ledger | LoRA peak ledger | LoRA's saving |",
    "| --- | ---: | ---: | --- | --- | ---: |",
    ...kinds.map(line),
    "",
    `Measured ${day(meta)} by \`${meta.command}\` on ${machine(meta)} (${devices}): T ${meta.block}, batch ` +
    `${meta.batch}, ${meta.steps} steps of ${meta.model}. Peak ledger by category: ${byCategory.join("; ")}.`,
  ].join("\n");
}

/** `x` to 3 significant digits, thousands separated: 11.3, 0.141, 90.6, 2,620. */
const sig = (x: number) =>
  Math.abs(x) >= 1000
    ? int(x)
    : Number(x.toPrecision(3)).toLocaleString("en-US", { maximumFractionDigits: 6 });

/** The row of `rows` whose name starts with `prefix`; a clear error when the results lack it. */
function rowStarting(rows: BenchRow[], prefix: string, file: string): BenchRow {
  const r = rows.find((x) => x.name.startsWith(prefix));
  if (!r) throw new RangeError(`${file} has no row "${prefix}…": rerun its benchmark`);
  return r;
}

/** Submit-and-wait against batched dispatches (`bench/kernels.ts`). */
function renderBatching({ meta, rows }: BenchResults): string {
  const file = "bench/results/kernels.json";
  const chain = meta.chain as number;
  const wait = rowStarting(rows, "empty submit-and-wait", file);
  const batched = rowStarting(rows, `per dispatch, ${chain} in one submit`, file);
  const each = rowStarting(rows, "per dispatch, submit-and-wait each", file);
  const speedup = rowStarting(rows, `batched speed-up, chain of ${chain}`, file);
  return [
    `On ${meta.adapter}, ${machine(meta)}, an empty submit-and-wait costs ${sig(wait.value)} ms, while a ` +
    `dispatch inside a batch costs ${
      sig(batched.value)
    } ms (the chain's one submit-and-wait included), so a ` +
    `chain of ${chain} small ops runs ${sig(speedup.value)}× faster batched than with a sync per op ` +
    `(${sig(each.value)} ms per op). Measured ${
      day(meta)
    } by \`${meta.command}\`; medians of repeated runs, ` +
    `each output checked against its TypeScript reference.`,
  ].join("\n");
}

/** One packed-GEMV measurement as `bench/quant.ts` records it in `meta.results`. */
interface QgemvResult {
  kernel: string;
  config: string;
  ms: number;
  msMin: number;
  msMax: number;
  f32Ms: number;
  f32MsMin: number;
  f32MsMax: number;
  rounds: number;
  speedup: number;
  byteRatio: number;
}

/** Packed GEMV against the f32 GEMV on the same weight (`bench/quant.ts`). */
function renderQgemv({ meta }: BenchResults): string {
  const all = (meta.results as QgemvResult[] | undefined) ?? [];
  const res = all.filter((r) => r.kernel === "qgemv");
  if (res.length === 0) {
    throw new RangeError("bench/results/quant.json has no qgemv results: rerun bench:quant");
  }
  const [rows, cols] = meta.shape as number[];
  const range = (lo: number, hi: number) => `${sig(lo)}–${sig(hi)}`;
  const line = (label: string, cell: (r: QgemvResult) => string) =>
    `| ${label} | ${res.map(cell).join(" | ")} |`;
  return [
    `| packed GEMV, ${rows} × ${cols}, g = ${meta.groupSize} | ${res.map((r) => r.config).join(" | ")} |`,
    `| --- | ${res.map(() => "---:").join(" | ")} |`,
    line("packed ms, median", (r) => sig(r.ms)),
    line("packed ms, min–max", (r) => range(r.msMin, r.msMax)),
    line("f32 GEMV ms, same rounds", (r) => sig(r.f32Ms)),
    line("speed-up over f32", (r) => `${r.speedup.toFixed(2)}×`),
    line("byte ratio (memory-bound ceiling)", (r) => `${r.byteRatio.toFixed(1)}×`),
    "",
    `Measured ${day(meta)} by \`${meta.command}\` on ${machine(meta)}, adapter ${meta.adapter}: each ` +
    `packed kernel and the f32 GEMV run in turns in one loop, ${
      res[0].rounds
    } rounds after a warm-up, and every output ` +
    `matches its TypeScript reference (\`qgemvRef\`, \`gemvRef\`).`,
  ].join("\n");
}

/** One quantize timing as `bench/quantize.ts` records it in `meta.details`. */
interface QuantizeDetail {
  device: string;
  setting: string;
  seconds: number;
  relError: number;
  iterations?: number;
}

/** Quantize time per method and backend (`bench/quantize.ts`). */
function renderQuantize({ meta }: BenchResults): string {
  const details = (meta.details as QuantizeDetail[] | undefined) ?? [];
  if (details.length === 0) {
    throw new RangeError("bench/results/quantize.json has no details: rerun bench:quant");
  }
  const settings = [...new Set(details.map((d) => d.setting))];
  const devices = [...new Set(details.map((d) => d.device))];
  const get = (device: string, setting: string) =>
    details.find((d) => d.device === device && d.setting === setting);
  const cell = (d?: QuantizeDetail) =>
    d ? `${sig(d.seconds)} s${d.iterations !== undefined ? ` (${d.iterations} it.)` : ""}` : "—";
  const infos = (meta.devices as { backend?: string; adapter?: string }[] | undefined) ?? [];
  return [
    `| quantize ${meta.n} × ${meta.n}, g = ${meta.groupSize} | ${settings.join(" | ")} |`,
    `| --- | ${settings.map(() => "---:").join(" | ")} |`,
    ...devices.map((dev) => `| ${dev} | ${settings.map((s) => cell(get(dev, s))).join(" | ")} |`),
    `| relative weight error | ${
      settings.map((s) => sig(get(devices[0], s)?.relError ?? NaN)).join(" | ")
    } |`,
    "",
    `Measured ${day(meta)} by \`${meta.command}\` on ${machine(meta)} (${
      infos.map((i) => `${i.backend}: ${i.adapter}`).join("; ")
    }): one timed run after a warm-up run of the same setting, on a heavy-tailed (Student-t) weight; ` +
    `"it." is the HQQ iterations kept by its early stop.`,
  ].join("\n");
}

/** Embedded and random models' prefill and decode speed (`bench/models.ts`). */
function renderModels({ meta, rows }: BenchResults): string {
  const names = rows.filter((r) => r.group === "prefill").map((r) => r.name);
  const get = (group: string, name: string) => rows.find((r) => r.group === group && r.name === name);
  const tps = (r?: BenchRow) =>
    r ? `${int(r.value)} (${int(r.min ?? r.value)}–${int(r.max ?? r.value)})` : "—";
  const label = (name: string) => {
    const m = /^(.*) \[(\w+)\]$/.exec(name);
    return m ? `${m[1]} | ${m[2]}` : `${name} | ?`;
  };
  const devices = (meta.devices as string[] | undefined)?.join("; ") ?? "";
  return [
    `| model | backend | prefill tokens/s (P ${meta.prompt}) | decode tokens/s | submits per token |`,
    "| --- | --- | ---: | ---: | ---: |",
    ...names.map((n) =>
      `| ${label(n)} | ${tps(get("prefill", n))} | ${tps(get("decode", n))} | ${
        sig(get("decode", `${n} submits per token`)?.value ?? NaN)
      } |`
    ),
    "",
    `Measured ${day(meta)} by \`${meta.command}\` on ${machine(meta)} (${devices}): median (min–max) of ` +
    `${meta.repeats} runs of a ${meta.prompt}-token prompt and ${meta.newTokens} new tokens, after ` +
    `${meta.warmup} warm-up runs of the same lengths.`,
  ].join("\n");
}

/** Every generated block of the README, by id. */
export const BLOCKS: Record<string, ReadmeBlock> = {
  peers: { file: "bench/results/peers.json", render: renderPeers },
  training: { file: "bench/results/training.json", render: renderTraining },
  models: { file: "bench/results/models.json", render: renderModels },
  qgemv: { file: "bench/results/quant.json", render: renderQgemv },
  quantize: { file: "bench/results/quantize.json", render: renderQuantize },
  batching: { file: "bench/results/kernels.json", render: renderBatching },
  "floe-brown-moe": {
    file: "bench/results/floe_brown_moe.json",
    render: renderFloeBench("deno task bench:floe --quick"),
  },
  "floe-reference": {
    file: "bench/results/floe_reference.json",
    render: renderFloeBench(
      "deno task ferry floe bench --model runs/bench-floe/mixtral-quarter --budget 12% --sparsity 0.9 " +
        "--prompt-tokens 16 --tokens 16 --dtype f16 --quant-cache runs/bench-floe/quant-cache --prefill-chunk 8 " +
        "--project --json bench/results/floe_reference.json",
    ),
  },
  "floe-reference-plan": {
    file: "bench/results/floe_reference_plan.json",
    render: renderFloePlan(
      "deno task ferry floe bench --model runs/bench-floe/mixtral-quarter --budget 12% --dtype f16 " +
        "--prompt-tokens 16 --tokens 16 --prefill-chunk 8 --plan --json bench/results/floe_reference_plan.json",
    ),
  },
  "floe-mini-ref": {
    file: "bench/results/floe_mini_ref.json",
    render: renderFloeBench("deno task bench:floe --quick"),
  },
};

/**
 * The block text for `id` from its committed results (`root` is the repository root), formatted
 * as `deno fmt` formats the README (so the rewritten README stays fmt-clean).
 */
export async function renderBlock(id: string, root = "."): Promise<string> {
  const block = BLOCKS[id];
  if (!block) {
    throw new RangeError(`No README block "${id}": known blocks are ${Object.keys(BLOCKS).join(", ")}`);
  }
  const parsed = JSON.parse(await Deno.readTextFile(`${root}/${block.file}`));
  // `ferry floe bench --json` writes an array of rows; the benchmarks write { meta, rows }.
  const results: BenchResults = Array.isArray(parsed) ? { meta: parsed[0] ?? {}, rows: parsed } : parsed;
  return await formatMarkdown(block.render(results), root);
}

/** `text` through `deno fmt` with the project's settings (line width, tables). */
export async function formatMarkdown(text: string, root = "."): Promise<string> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--ext", "md", "-"],
    cwd: root,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text + "\n"));
  await writer.close();
  const { success, stdout, stderr } = await child.output();
  if (!success) throw new Error(`deno fmt failed on a README block: ${new TextDecoder().decode(stderr)}`);
  return new TextDecoder().decode(stdout).replace(/\n+$/, "");
}

/** The README's blocks: id and current text, in order. */
export function readmeBlocks(readme: string): { id: string; text: string }[] {
  const out: { id: string; text: string }[] = [];
  for (const m of readme.matchAll(/<!-- bench:([\w-]+) -->\n+([\s\S]*?)\n+<!-- \/bench:\1 -->/g)) {
    out.push({ id: m[1], text: m[2] });
  }
  return out;
}

/** `readme` with every block replaced by its rendering (blank lines around it, as `deno fmt` keeps them). */
export async function rewriteReadme(readme: string, root = "."): Promise<string> {
  let out = readme;
  for (const { id } of readmeBlocks(readme)) {
    const text = await renderBlock(id, root);
    out = out.replace(
      new RegExp(`<!-- bench:${id} -->\\n+[\\s\\S]*?\\n+<!-- /bench:${id} -->`),
      () => `<!-- bench:${id} -->\n\n${text}\n\n<!-- /bench:${id} -->`,
    );
  }
  return out;
}

if (import.meta.main) {
  const readme = await Deno.readTextFile("README.md");
  const next = await rewriteReadme(readme);
  await writeFileAtomic("README.md", next);
  console.log(
    `README.md: ${readmeBlocks(next).map((b) => b.id).join(", ")} ${
      next === readme ? "unchanged" : "rewritten"
    }`,
  );
}
