/**
 * The README's performance figures, generated from the committed results in `bench/results/`: one
 * source of truth. Each figure block in `README.md` sits between `<!-- bench:ID -->` and
 * `<!-- /bench:ID -->` and is exactly what {@link renderBlock} makes of its results file;
 * `test/bench_readme_test.ts` fails when a block differs from its file or the file is missing.
 *
 * Run: `deno task bench:readme` (after a benchmark) rewrites the blocks from the results.
 * @module
 */
import { writeFileAtomic } from "../src/io/atomic.ts";
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

/** Every generated block of the README, by id. */
export const BLOCKS: Record<string, ReadmeBlock> = {
  peers: { file: "bench/results/peers.json", render: renderPeers },
  training: { file: "bench/results/training.json", render: renderTraining },
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
  const results = JSON.parse(await Deno.readTextFile(`${root}/${block.file}`)) as BenchResults;
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
