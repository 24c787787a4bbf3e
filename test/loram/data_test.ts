/**
 * `brownLoramData`: the in-domain genre, the other genres and the State of the Union addresses,
 * each held-out stream from a validation split and disjoint from the training and alignment text.
 * A character tokenizer makes every id a character, so each stream can be read back as text.
 */
import assert from "node:assert/strict";
import { BROWN_GENRES, loadBrown } from "../../src/data/brown.ts";
import { loadSotu } from "../../src/data/sotu.ts";
import { splitDocuments } from "../../src/data/splits.ts";
import { brownLoramData, evenStream } from "../../src/loram/data.ts";

const chars = { eosTokenId: 0, encode: (s: string) => [...s].map((c) => c.charCodeAt(0) & 0xffff) };
const text = (ids: Int32Array) => String.fromCharCode(...ids);

Deno.test("brownLoramData: SOTU's validation addresses in equal shares; no held-out text in training", async () => {
  const data = await brownLoramData(chars, "cn", { block: 64, evalTokens: 1000 });
  const sotu = splitDocuments(await loadSotu());
  const share = Math.floor(1000 / sotu.validation.length); // 23 addresses at seed 0
  assert.equal(sotu.validation.length, 23);
  assert.equal(data.evalSotu!.length, share * sotu.validation.length);
  // The stream is the opening of every validation address, in id (= year) order.
  const pieces = sotu.validation.map((_, i) => text(data.evalSotu!.subarray(i * share, (i + 1) * share)));
  assert.deepEqual(pieces, sotu.validation.map((d) => d.text.slice(0, share)));
  // No address of the stream is in the train split, and no SOTU text is trained on or aligned on.
  const trainIds = new Set(sotu.train.map((d) => d.id));
  assert.ok(sotu.validation.every((d) => !trainIds.has(d.id)));
  const seen = [...data.train, ...data.align].map(text).join("");
  for (const p of pieces) assert.ok(!seen.includes(p.slice(0, 40)), p.slice(0, 40));
  // The Brown streams: in-domain from cn's validation split, out-of-domain from the other genres'.
  const brown = splitDocuments(await loadBrown());
  const valid = (g: string) => brown.validation.filter((d) => d.genre === g).map((d) => d.text).join("\n");
  assert.ok(valid("cn").startsWith(text(data.evalIn).split("\0")[0]));
  assert.ok(!seen.includes(text(data.evalIn).slice(0, 60)));
  const outShare = Math.floor(1000 / (BROWN_GENRES.length - 1));
  const firstOther = BROWN_GENRES.find((g) => g !== "cn" && valid(g).length > 0)!;
  assert.ok(valid(firstOther).startsWith(text(data.evalOut.subarray(0, outShare)).split("\0")[0]));
});

Deno.test("brownLoramData: sotu: false leaves the SOTU stream out; alignDocs limits the alignment text; bad input is refused", async () => {
  const data = await brownLoramData(chars, "cn", { block: 64, evalTokens: 64, sotu: false, alignDocs: 3 });
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
    () => brownLoramData(chars, "zz" as "cn"),
    /Unknown Brown genre "zz": expected one of ca/,
  );
});

Deno.test("evenStream: equal shares per group, at least 2 ids each, a short group gives what it has", () => {
  // Each document ends with EOS: "xy" gives x, y, EOS, and the share (3) is reached before "z".
  assert.deepEqual([...evenStream([["abcdef"], ["xy", "z"]], chars, 6)], [97, 98, 99, 120, 121, 0]);
  // "q" plus its EOS is all the first group has; the share is 3.
  assert.deepEqual([...evenStream([["q"], ["rstu"]], chars, 6)], [113, 0, 114, 115, 116]);
  assert.deepEqual([...evenStream([["abc"], ["def"], ["ghi"]], chars, 1)], [97, 98, 100, 101, 103, 104]);
  assert.equal(evenStream([], chars, 10).length, 0);
});
