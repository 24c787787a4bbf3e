/**
 * The shared tokenizer of the embedded demo models (`examples/models/tokenizer/`), written by
 * `examples/train_tokenizer.ts`, and the unigram baseline beside it.
 */
import assert from "node:assert/strict";
import { loadBrown } from "../../src/data/brown.ts";
import { splitParagraphs } from "../../src/data/text.ts";
import { splitDocuments } from "../../src/data/splits.ts";
import { Tokenizer } from "../../src/io/tokenizer.ts";

const DIR = new URL("../../examples/models/tokenizer/", import.meta.url).pathname;
const REGENERATE =
  "regenerate with the commands in examples/train_tokenizer.ts and examples/unigram_baseline.ts";
const tokenizer = Tokenizer.fromDir(DIR);

Deno.test("demo tokenizer loads: 4096 ids, bytes first, <|endoftext|> is EOS and BOS", async () => {
  const tok = await tokenizer;
  assert.equal(tok.vocabSize, 4096);
  assert.equal(tok.eosTokenId, 4094);
  assert.equal(tok.bosTokenId, 4094);
  assert.equal(tok.tokenToId("<|pad|>"), 4095);
  assert.ok(tok.isSpecial(4094) && tok.isSpecial(4095) && !tok.isSpecial(4093));
  assert.equal(tok.idToToken(65), "A"); // id = byte value for single bytes
  assert.equal(tok.idToToken(32), "Ġ");
  assert.deepEqual(tok.encode("the"), tok.encode("the", { addSpecialTokens: false })); // adds nothing
  assert.deepEqual(tok.tokenize(" the"), ["Ġthe"]);
});

Deno.test("demo tokenizer round-trips Brown paragraphs and arbitrary Unicode exactly", async () => {
  const tok = await tokenizer;
  const docs = await loadBrown({ genres: ["ca", "cm", "cr"] });
  const { validation, test } = splitDocuments(docs);
  const paragraphs = [...validation, ...test].flatMap((d) => splitParagraphs(d.text)).slice(0, 40);
  assert.ok(paragraphs.length >= 20);
  for (const p of [...paragraphs, docs[0].text, "naïve café — 東京 🚀\ttabs  \n\n\nend ", "\x00\x7f"]) {
    const ids = tok.encode(p);
    assert.ok(ids.every((id) => id < 4094), "no special ids from text");
    assert.equal(tok.decode(ids), p);
  }
  // Compression on Brown prose: well under two tokens per whitespace word.
  const text = paragraphs.join("\n\n");
  const perWord = tok.encode(text).length / text.split(/\s+/).length;
  assert.ok(perWord > 1.3 && perWord < 2, `tokens/word ${perWord}`);
  // EOS appended by packing decodes back to its text form.
  assert.equal(tok.decode([...tok.encode("The end."), tok.eosTokenId!]), "The end.<|endoftext|>");
  assert.equal(tok.decode([...tok.encode("The end."), 4094], { skipSpecialTokens: true }), "The end.");
});

Deno.test("unigram_baseline.json was computed with the committed tokenizer", async () => {
  const baseline = JSON.parse(await Deno.readTextFile(`${DIR}unigram_baseline.json`));
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", await Deno.readFile(`${DIR}tokenizer.json`)),
  );
  const sha = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  assert.equal(baseline.tokenizerSha256, sha, `tokenizer.json changed after the baseline: ${REGENERATE}`);
  assert.equal(baseline.vocabSize, 4096);
  const overall = baseline.validation.overall;
  assert.ok(overall.perplexity > 100 && overall.perplexity < 4096, `${overall.perplexity}`);
  assert.equal(Object.keys(baseline.validation.genres).length, 15);
});

Deno.test({
  name: "train_tokenizer.ts reproduces the committed tokenizer files byte for byte",
  // Trains with the native HF tokenizers addon (about 5 s) in a subprocess that may load it.
  fn: async () => {
    const out = await Deno.makeTempDir({ prefix: "ferry-tokenizer-test-" });
    try {
      const root = new URL("../../", import.meta.url).pathname;
      const { code, stderr } = await new Deno.Command(Deno.execPath(), {
        cwd: root, // for deno.json
        args: [
          "run",
          "--allow-read",
          "--allow-write",
          "--allow-env",
          "--allow-ffi",
          "--allow-sys",
          "examples/train_tokenizer.ts",
          "--out",
          out,
        ],
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.equal(code, 0, new TextDecoder().decode(stderr));
      for (const name of ["tokenizer.json", "tokenizer_config.json"]) {
        const fresh = await Deno.readTextFile(`${out}/${name}`);
        const committed = await Deno.readTextFile(`${DIR}${name}`);
        assert.ok(fresh === committed, `${name} differs from a fresh training run: ${REGENERATE}`);
      }
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});
