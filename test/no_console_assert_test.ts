/**
 * `console.assert` only prints when its condition is false, so a doc example or a check written
 * with it can never fail. Examples in src/ use `node:assert/strict` (doc tests run them).
 */
import assert from "node:assert/strict";
import { sourceFiles } from "./_source_files.ts";

/** `path:line` of every `console.assert` in `text`, comments and doc examples included. */
function consoleAsserts(path: string, text: string): string[] {
  return text.split("\n").flatMap((line, i) =>
    /\bconsole\s*\.\s*assert\b/.test(line) ? [`${path}:${i + 1}`] : []
  );
}

Deno.test("the console.assert finder reports code and doc-comment uses with their lines", () => {
  const text =
    'const a = 1;\n * console.assert(x === 2);\nconsole .assert(ok, "msg");\nconsole.log("assert");';
  assert.deepEqual(consoleAsserts("f.ts", text), ["f.ts:2", "f.ts:3"]);
});

Deno.test("no console.assert in src/ (it cannot fail; use node:assert/strict)", () => {
  const files = sourceFiles("src");
  assert.ok(files.length > 100, `expected the src/ tree, found ${files.length} files`);
  const found = files.flatMap((f) => consoleAsserts(f.path, f.text));
  assert.deepEqual(found, [], `replace console.assert with node:assert/strict at ${found.join(", ")}`);
});
