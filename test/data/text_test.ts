import assert from "node:assert/strict";
import { loadJsonl, loadTextFile, loadTextFiles, parseJsonl, splitParagraphs } from "../../src/data/text.ts";
import { ConfigError, FormatError } from "../../src/errors.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ferry_text_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("splitParagraphs() splits on blank lines of any kind", () => {
  assert.deepEqual(splitParagraphs("one\ntwo\n\n\n  three  \r\n \t\r\nfour"), ["one\ntwo", "three", "four"]);
  assert.deepEqual(splitParagraphs("\n\n \n"), []);
});

Deno.test("loadTextFile() gives one document per paragraph or per file", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/story.txt`;
    await Deno.writeTextFile(path, "\uFEFFFirst line\nstill first.\r\n\r\nSecond.\n\n\n");
    assert.deepEqual(await loadTextFile(path), [
      { id: "story.txt#0", text: "First line\nstill first." },
      { id: "story.txt#1", text: "Second." },
    ]);
    assert.deepEqual(await loadTextFile(path, { split: "file" }), [
      { id: "story.txt", text: "First line\nstill first.\r\n\r\nSecond.\n\n\n" },
    ]);
    await Deno.writeTextFile(`${dir}/b.txt`, "B");
    const both = await loadTextFiles([`${dir}/b.txt`, path]);
    assert.deepEqual(both.map((d) => d.id), ["b.txt#0", "story.txt#0", "story.txt#1"]);
    // @ts-expect-error: not an option
    await assert.rejects(loadTextFile(path, { split: "lines" }), ConfigError);
  });
});

Deno.test("loadJsonl() reads a field per line, skipping blank lines", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/corpus.jsonl`;
    const lines = ['{"text": "alpha", "n": 1}', "", '{"text": "beta ✓\\nline", "n": 2}', "  "];
    await Deno.writeTextFile(path, lines.join("\r\n") + "\n");
    assert.deepEqual(await loadJsonl(path), [
      { id: "corpus.jsonl:1", text: "alpha" },
      { id: "corpus.jsonl:3", text: "beta ✓\nline" },
    ]);
  });
  const content = '{"body": "x", "key": "k1"}\n{"body": "y", "key": 7}\n';
  assert.deepEqual(parseJsonl(content, { field: "body", idField: "key" }), [
    { id: "k1", text: "x" },
    { id: "7", text: "y" },
  ]);
  assert.deepEqual(parseJsonl(""), []);
});

Deno.test("loadJsonl() throws FormatError with the file and line number", async () => {
  const cases: [string, string][] = [
    ['{"text": "ok"}\n\n{"text": broken}\n', "line 3: invalid JSON"],
    ['{"text": "ok"}\n[1, 2]\n', "line 2: expected a JSON object, received an array"],
    ['"just a string"', 'line 1: expected a JSON object, received "just a string"'],
    ['{"content": "x"}', 'line 1: field "text" must be a string: received no such field'],
    ['{"text": 42}', 'line 1: field "text" must be a string: received number'],
  ];
  await withTempDir(async (dir) => {
    const path = `${dir}/bad.jsonl`;
    for (const [content, message] of cases) {
      await Deno.writeTextFile(path, content);
      await assert.rejects(loadJsonl(path), (err) => {
        assert.ok(err instanceof FormatError);
        assert.equal(err.path, path);
        assert.ok(err.message.startsWith(`Cannot read JSONL ${path}: ${message}`), err.message);
        return true;
      });
    }
  });
  assert.throws(
    () => parseJsonl('{"text": "a", "id": "x"}\n{"text": "b"}', { idField: "id" }, "data/c.jsonl"),
    /Cannot read JSONL data\/c\.jsonl: line 2: field "id" must be a string or number: received no such field/,
  );
  // @ts-expect-error: unknown option
  assert.throws(() => parseJsonl("", { feild: "x" }), /did you mean "field"/);
});
