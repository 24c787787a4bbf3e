import assert from "node:assert/strict";
import { loadSotu } from "../../src/data/sotu.ts";
import { splitDocuments } from "../../src/data/splits.ts";
import { FormatError } from "../../src/errors.ts";

Deno.test("loadSotu reads all 233 addresses, sorted, with year, president and party", async () => {
  const docs = await loadSotu();
  assert.equal(docs.length, 233);
  assert.deepEqual(docs.map((d) => d.id), docs.map((d) => d.id).toSorted());
  assert.equal(docs[0].id, "1790_george_washington_n");
  assert.equal(docs[0].year, 1790);
  assert.equal(docs.at(-1)!.president, "Joseph R Biden");
  assert.ok(docs[0].text.startsWith("Fellow-Citizens of the Senate and House of Representatives"));
  const words = docs.reduce((n, d) => n + d.wordCount, 0);
  assert.ok(words > 1.7e6 && words < 1.9e6, `${words} words`);
});

Deno.test("loadSotu keeps a range of years; the split of an address does not depend on the range", async () => {
  const some = await loadSotu({ from: 1861, to: 1865 });
  assert.ok(some.length >= 4 && some.every((d) => d.year >= 1861 && d.year <= 1865));
  const all = await loadSotu();
  const splitAll = splitDocuments(all);
  const splitSome = splitDocuments(some);
  for (const name of ["train", "validation", "test"] as const) {
    const ids = new Set(splitAll[name].map((d) => d.id));
    assert.ok(splitSome[name].every((d) => ids.has(d.id)), name);
  }
});

Deno.test("loadSotu refuses an empty range, an unknown option and a malformed record", async () => {
  await assert.rejects(() => loadSotu({ from: 2100 }), /no files named like .* for years 2100/);
  await assert.rejects(() => loadSotu({ year: 1 } as never), /year/);
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/1999_a_b_n.json`, JSON.stringify({ year: 1999, name: "A" }));
    await assert.rejects(
      () => loadSotu({ dir }),
      (e) => e instanceof FormatError && /1999_a_b_n\.json/.test(e.message),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
