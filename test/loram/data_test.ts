/**
 * `brownLoramData`: the in-domain genre, the other genres and the State of the Union addresses,
 * each held out as documents from a validation split and disjoint from the training and alignment
 * text. A character tokenizer makes every id a character, so each document can be read back as text.
 */
import assert from "node:assert/strict";
import { loadBrown } from "../../src/data/brown.ts";
import { loadSotu } from "../../src/data/sotu.ts";
import { splitDocuments } from "../../src/data/splits.ts";
import { brownLoramData, heldOutDocuments } from "../../src/loram/data.ts";

const chars = { eosTokenId: 0, encode: (s: string) => [...s].map((c) => c.charCodeAt(0) & 0xffff) };
const text = (ids: Int32Array) => String.fromCharCode(...ids);

Deno.test("brownLoramData: held-out documents per domain from validation splits, evenly spaced, capped; none in training", async () => {
  const data = await brownLoramData(chars, "cj", { block: 64, evalTokens: 300, evalDocs: 6 });
  const docs = (h: typeof data.evalIn) => h as readonly Int32Array[];
  // SOTU: 6 of the 23 validation addresses (seed 0), evenly spaced through the years, 300 ids each.
  const sotu = splitDocuments(await loadSotu());
  assert.equal(sotu.validation.length, 23);
  const picked = [0, 1, 2, 3, 4, 5].map((i) => sotu.validation[Math.floor((i * 23) / 6)]);
  assert.deepEqual(docs(data.evalSotu!).map(text), picked.map((d) => d.text.slice(0, 300)));
  // In-domain: 6 of cj's 10 validation documents, evenly spaced.
  const brown = splitDocuments(await loadBrown());
  const valid = (g: string) => brown.validation.filter((d) => d.genre === g);
  assert.equal(valid("cj").length, 10);
  const cj = [0, 1, 2, 3, 4, 5].map((i) => valid("cj")[Math.floor((i * 10) / 6)]);
  assert.deepEqual(docs(data.evalIn).map(text), cj.map((d) => d.text.slice(0, 300)));
  // Out-of-domain: 6 of the other genres' 35 validation documents, from several genres.
  const others = brown.validation.filter((d) => d.genre !== "cj");
  assert.equal(others.length, 35);
  const out = docs(data.evalOut).map(text);
  assert.equal(out.length, 6);
  const genres = out.map((t) => others.find((d) => d.text.startsWith(t))!.genre);
  assert.ok(new Set(genres).size >= 5 && !genres.includes("cj"), genres.join(","));
  // No held-out document is trained on or aligned on.
  const seen = [...data.train, ...data.align].map(text).join("");
  for (const t of [...docs(data.evalIn), ...docs(data.evalOut), ...docs(data.evalSotu!)].map(text)) {
    assert.ok(!seen.includes(t.slice(0, 60)), t.slice(0, 60));
  }
  // The same call gives the same ids.
  const again = await brownLoramData(chars, "cj", { block: 64, evalTokens: 300, evalDocs: 6, alignDocs: 0 });
  assert.deepEqual(again.evalIn, data.evalIn);
  assert.deepEqual(again.evalSotu, data.evalSotu);
});

Deno.test("brownLoramData: sotu: false leaves SOTU out; alignDocs limits the alignment text; bad input is refused", async () => {
  const data = await brownLoramData(chars, "cn", { block: 64, evalTokens: 64, sotu: false, alignDocs: 3 });
  assert.equal((data.evalIn as Int32Array[]).length, 1); // cn has one validation document
  assert.equal(data.evalSotu, undefined);
  // Three training documents of other genres, evenly spaced: the first one's text opens the blocks.
  const others = splitDocuments(await loadBrown()).train.filter((d) => d.genre !== "cn");
  const picked = [0, 1, 2].map((i) => others[Math.floor((i * others.length) / 3)]);
  assert.deepEqual(new Set(picked.map((d) => d.genre)).size, 3);
  const joined = picked.map((d) => d.text).join("\0");
  assert.equal(data.align.length, Math.floor((joined.length + 1 - 65) / 64) + 1);
  assert.equal(String.fromCharCode(...data.align[0]), joined.slice(0, 65));
  assert.equal((await brownLoramData(chars, "cn", { evalTokens: 64, alignDocs: 0 })).align.length, 0);
  await assert.rejects(
    () => brownLoramData(chars, "cn", { alignDocs: -1 }),
    /alignDocs must be a non-negative integer: received -1/,
  );
  await assert.rejects(
    () => brownLoramData(chars, "cl", { alignDocs: 0 }),
    /Cannot evaluate on Brown genre cl: it has no validation document; .*cj 10/,
  );
  await assert.rejects(
    () => brownLoramData(chars, "cj", { evalDocs: 0 }),
    /evalDocs must be an integer ≥ 1: received 0/,
  );
  await assert.rejects(
    () => brownLoramData(chars, "cj", { evalTokens: 1.5 }),
    /evalTokens must be an integer ≥ 2/,
  );
  await assert.rejects(
    () => brownLoramData(chars, "zz" as "cn"),
    /Unknown Brown genre "zz": expected one of ca/,
  );
});

Deno.test("heldOutDocuments: the first ids of each, EOS when the text ends first; evenly spaced when capped", () => {
  const docs = ["abcdef", "xy", "q", "rstu", "lmn"];
  assert.deepEqual(heldOutDocuments(docs, chars, { tokens: 3, docs: 10 }).map((d) => [...d]), [
    [97, 98, 99],
    [120, 121, 0],
    [113, 0],
    [114, 115, 116],
    [108, 109, 110],
  ]);
  // Two of five: indices ⌊0·5/2⌋ = 0 and ⌊1·5/2⌋ = 2.
  assert.deepEqual(heldOutDocuments(docs, chars, { tokens: 2, docs: 2 }).map((d) => [...d]), [[97, 98], [
    113,
    0,
  ]]);
  assert.deepEqual(heldOutDocuments([], chars, { tokens: 4, docs: 3 }), []);
});
