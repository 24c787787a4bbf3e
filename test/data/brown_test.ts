import assert from "node:assert/strict";
import { BROWN_GENRE_NAMES, BROWN_GENRES, detokenizeBrown, loadBrown } from "../../src/data/brown.ts";
import { ConfigError } from "../../src/errors.ts";

/** Loaded once for the whole file (about 0.3 s). */
const all = loadBrown();

/** Texts per genre, as listed in the corpus manual (and NLTK's cats.txt). */
const GENRE_SIZES = {
  ca: 44,
  cb: 27,
  cc: 17,
  cd: 17,
  ce: 36,
  cf: 48,
  cg: 75,
  ch: 30,
  cj: 80,
  ck: 29,
  cl: 24,
  cm: 6,
  cn: 29,
  cp: 29,
  cr: 9,
};

Deno.test("loadBrown() reads 500 texts in 15 genres and 1,161,192 tokens", async () => {
  const docs = await all;
  assert.equal(docs.length, 500);
  assert.deepEqual([...BROWN_GENRES], Object.keys(GENRE_SIZES));
  const perGenre: Record<string, number> = {};
  for (const d of docs) perGenre[d.genre] = (perGenre[d.genre] ?? 0) + 1;
  assert.deepEqual(perGenre, GENRE_SIZES);
  // NLTK's len(brown.words()): every word/tag token, punctuation included.
  assert.equal(docs.reduce((n, d) => n + d.wordCount, 0), 1_161_192);
  for (const d of docs) {
    assert.ok(d.wordCount > 2000 && d.wordCount < 2700, `${d.id}: ${d.wordCount} tokens`);
    assert.ok(d.text.length > 9000, `${d.id}: ${d.text.length} characters`);
    assert.match(d.id, /^c[a-r]\d\d$/);
    assert.equal(d.genre, d.id.slice(0, 2));
    assert.equal(d.genreName, BROWN_GENRE_NAMES[d.genre]);
  }
  assert.deepEqual(docs.map((d) => d.id), docs.map((d) => d.id).sort());
});

Deno.test("loadBrown() names genres like the corpus manual and NLTK", async () => {
  const docs = await all;
  const first = (g: string) => docs.find((d) => d.genre === g)!;
  assert.deepEqual(
    [first("ca").genreName, first("ca").category, first("ch").genreName, first("cm").category],
    ["press: reportage", "news", "miscellaneous: government & house organs", "science_fiction"],
  );
  assert.equal(BROWN_GENRE_NAMES.cr, "humor");
});

Deno.test("loadBrown() detokenizes ca01 into readable text", async () => {
  const ca01 = (await all)[0];
  assert.equal(ca01.id, "ca01");
  const paragraphs = ca01.text.split("\n\n");
  assert.equal(
    paragraphs[0],
    "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary election " +
      'produced "no evidence" that any irregularities took place.',
  );
  assert.equal(
    paragraphs[1],
    "The jury further said in term-end presentments that the City Executive Committee, which had over-all " +
      'charge of the election, "deserves the praise and thanks of the City of Atlanta" for the manner in ' +
      "which the election was conducted.",
  );
  // "Jr. ./." keeps one period; headlines stay on their own line.
  assert.ok(ca01.text.includes("won by Mayor-nominate Ivan Allen Jr.\n\n"));
  assert.ok(ca01.text.includes("\nMerger proposed\nHowever, the jury said it believes"));
  assert.ok(ca01.text.endsWith(`"There wasn't a bit of trouble".`));
});

Deno.test("loadBrown() leaves no tags, Brown quotes or detached punctuation", async () => {
  const text = (await all).map((d) => d.text).join("\n\n");
  assert.doesNotMatch(text, /\/(at|nn|vbd|np)\b/); // tags
  assert.doesNotMatch(text, /``/);
  assert.doesNotMatch(text, /(^|\s)''(\s|$)/m); // '' survives only as inches: 1/2''
  assert.doesNotMatch(text, / [,.;:?!)\]](\s|$)/m); // not " ,"; but "in :35.3" is a word
  assert.doesNotMatch(text, /[(\[] /);
  assert.doesNotMatch(text, /;;|\w\.\.(\s|$)/);
  assert.doesNotMatch(text, /\n{3}|^\s|\s$/);
  assert.ok(text.includes("(Ill.) and House Republican"));
  assert.ok(text.includes("getting more 'pro' letters than 'con' on horse race betting"));
  assert.ok(
    text.includes("technical argot for those who engage in your particular branch of the boost;\ni.e.,"),
  );
});

Deno.test("loadBrown() filters genres and validates them", async () => {
  const docs = await loadBrown({ genres: ["cr", "cm"] });
  assert.deepEqual(docs.map((d) => d.id), [
    ...["cm01", "cm02", "cm03", "cm04", "cm05", "cm06"],
    ...["cr01", "cr02", "cr03", "cr04", "cr05", "cr06", "cr07", "cr08", "cr09"],
  ]);
  assert.deepEqual(docs[0], (await all).find((d) => d.id === "cm01"));
  await assert.rejects(
    // @ts-expect-error: "ci" is not a genre
    loadBrown({ genres: ["ci"] }),
    (err) => err instanceof ConfigError && err.message.includes("genres[0]") && err.message.includes('"cr"'),
  );
  await assert.rejects(loadBrown({ genres: [] }), ConfigError);
});

Deno.test("loadBrown() reads another folder in the same format", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry_brown_" });
  try {
    await assert.rejects(loadBrown({ dir }), /Cannot load Brown corpus: no files named like "ca01"/);
    await Deno.writeTextFile(`${dir}/cb07`, "\n\n\tIt/pps works/vbz ./.\n");
    await Deno.writeTextFile(`${dir}/notes.txt`, "ignored");
    const docs = await loadBrown({ dir });
    assert.deepEqual(docs, [{
      id: "cb07",
      genre: "cb",
      genreName: "press: editorial",
      category: "editorial",
      text: "It works.",
      wordCount: 3,
    }]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("detokenizeBrown() attaches punctuation and pairs single quotes per paragraph", () => {
  const tag = (s: string) => s.split(" ").map((w) => `${w}/x`).join(" ");
  const file = [
    "",
    `\t${tag("He said ( quietly ) : ' yes ' and ' no ' ; ;")}`,
    tag("Then [ he ] left , , Jr. ."),
    "",
    "",
    `\t${tag("' Open")}`,
    "",
    `\t${tag("Closed ? ' '' !")}`,
  ].join("\n");
  const { text, wordCount } = detokenizeBrown(file);
  assert.equal(
    text,
    "He said (quietly): 'yes' and 'no';\nThen [he] left, Jr.\n\n'Open\n\nClosed? '\"!",
  );
  assert.equal(wordCount, 31);
  assert.deepEqual(detokenizeBrown(""), { text: "", wordCount: 0 });
});
