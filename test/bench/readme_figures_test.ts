/**
 * Every performance figure block in README.md is what `deno task bench:readme` makes of a committed
 * results file: a figure cannot drift from the measurement behind it, or cite one that is not there.
 */
import assert from "node:assert/strict";
import { BLOCKS, readmeBlocks, renderBlock } from "../../bench/readme.ts";

const readme = await Deno.readTextFile("README.md");
/** Results files committed to git (outside a git checkout: the files present). */
async function committed(file: string): Promise<boolean> {
  const git = await new Deno.Command("git", {
    args: ["ls-files", "--error-unmatch", file],
    stdout: "null",
    stderr: "null",
  })
    .output().catch(() => null);
  if (git) return git.success;
  return await Deno.stat(file).then(() => true, () => false);
}

Deno.test("README.md holds every generated figure block once", () => {
  const ids = readmeBlocks(readme).map((b) => b.id);
  assert.deepEqual([...ids].sort(), Object.keys(BLOCKS).sort(), "blocks in README.md vs bench/readme.ts");
});

for (const { id, text } of readmeBlocks(readme)) {
  Deno.test(`README block "${id}" equals its committed results (${BLOCKS[id]?.file})`, async () => {
    assert.ok(BLOCKS[id], `unknown block ${id}: register it in bench/readme.ts`);
    assert.ok(
      await committed(BLOCKS[id].file),
      `${BLOCKS[id].file} is not committed: commit the results it cites`,
    );
    assert.equal(
      text,
      await renderBlock(id),
      "the block differs from its results: run deno task bench:readme",
    );
  });
}

Deno.test("readmeBlocks finds marked blocks and nothing else", () => {
  const md = "a\n<!-- bench:x -->\nfig 1\n<!-- /bench:x -->\nb\n<!-- bench:y -->\nunclosed";
  assert.deepEqual(readmeBlocks(md), [{ id: "x", text: "fig 1" }]);
});

Deno.test("README prose outside the generated blocks cites no timing or bandwidth figure", () => {
  const prose = readme.replace(/<!-- bench:([\w-]+) -->[\s\S]*?<!-- \/bench:\1 -->/g, "");
  const figures = [...prose.matchAll(/[^\n]{0,40}\b\d[\d.,]*\s?(?:ms|GB\/s|GFLOP\/s)(?![\w/])[^\n]{0,20}/g)]
    .map((m) => m[0]);
  assert.deepEqual(
    figures,
    [],
    "README.md quotes measured figures outside a <!-- bench:ID --> block: generate them from a " +
      "bench/results file (bench/readme.ts) or drop them",
  );
});
