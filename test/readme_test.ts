/**
 * Every ```ts block of README.md, as a reader would paste it: each is written to a script in a
 * fresh temporary folder outside the repository, all are type-checked together, and each runs
 * there on the CPU backend with its own time limit (`deno run -A --config <repo>/deno.json`, the
 * command the README gives), so a README example cannot rot.
 * @module
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
const CONFIG = `${ROOT}/deno.json`;
/** A guard against a hanging block, not a performance bound. */
const LIMIT_MS = 240_000;

/** The ```ts blocks of `markdown`, with the line each starts on (1-based). */
export function tsBlocks(markdown: string): { line: number; code: string }[] {
  const blocks: { line: number; code: string }[] = [];
  const lines = markdown.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (lines[i].trim() !== "```ts") continue;
    const start = i + 1;
    let end = start;
    while (end < lines.length && lines[end].trim() !== "```") end++;
    assert.ok(end < lines.length, `README.md: the ts block at line ${start} is not closed`);
    blocks.push({ line: start + 1, code: lines.slice(start, end).join("\n") + "\n" });
    i = end;
  }
  return blocks;
}

async function deno(
  args: string[],
  cwd: string,
  signal?: AbortSignal,
): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    env: { NO_COLOR: "1", FERRY_BACKEND: "cpu" },
    stdout: "piped",
    stderr: "piped",
    signal,
  }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

const blocks = tsBlocks(await Deno.readTextFile(`${ROOT}/README.md`));

Deno.test("tsBlocks finds fenced ts blocks and their lines, and skips other languages", () => {
  const md =
    "# x\n```sh\nls\n```\n\n```ts\nconst a = 1;\n```\ntext\n```ts\nconst b = 2;\nconsole.log(b);\n```\n";
  assert.deepEqual(tsBlocks(md), [
    { line: 7, code: "const a = 1;\n" },
    { line: 11, code: "const b = 2;\nconsole.log(b);\n" },
  ]);
  assert.throws(() => tsBlocks("```ts\nopen"), /not closed/);
});

Deno.test("README.md has ts blocks, each importing Ferry by its package name", () => {
  assert.ok(blocks.length >= 4, `found ${blocks.length} ts blocks`);
  for (const b of blocks) {
    assert.match(b.code, /from "@ferry\/ferry"/, `README.md:${b.line} imports @ferry/ferry`);
    assert.doesNotMatch(b.code, /from "\.{1,2}\//, `README.md:${b.line} has a relative import`);
  }
});

Deno.test("README.md's ts blocks type-check from a folder outside the repository", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry_readme_" });
  try {
    const files = [];
    for (const b of blocks) {
      const file = `readme_${b.line}.ts`;
      await Deno.writeTextFile(`${dir}/${file}`, b.code);
      files.push(file);
    }
    const r = await deno(["check", "--config", CONFIG, ...files], dir);
    assert.equal(r.code, 0, `deno check failed (files named by their README line):\n${r.out.slice(-4000)}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

for (const b of blocks) {
  Deno.test(`README.md block at line ${b.line} runs as pasted in a scratch folder`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "ferry_readme_" });
    try {
      await Deno.writeTextFile(`${dir}/try.ts`, b.code);
      const r = await deno(["run", "-A", "--config", CONFIG, "try.ts"], dir, AbortSignal.timeout(LIMIT_MS));
      assert.equal(r.code, 0, `README.md:${b.line} failed:\n${r.out.slice(-4000)}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}
