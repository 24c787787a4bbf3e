/**
 * The command line, run as a subprocess the way `deno task ferry` runs it, on the CPU backend.
 *
 * `test/fixtures/cli/tokenizer.json` is a 128-token BPE (ids 0..2 are `<unk>`, `<s>`, `</s>`,
 * then space, newline and the 94 printable ASCII characters, then 29 merges learned on Brown
 * genre `ca`), so its ids fit the `llama-gqa-tied-f32` fixture (vocab 128, BOS 1, EOS 2). The
 * tests copy that checkpoint into a temporary folder with the tokenizer beside it.
 * @module
 */
import assert from "node:assert/strict";
import { loadBlas } from "../src/device/blas.ts";
import { loadBrown } from "../src/data/brown.ts";
import { tokenizeDocuments } from "../src/data/pack.ts";
import { createDevice } from "../src/device/create_device.ts";
import { SafetensorsFile } from "../src/io/safetensors.ts";
import { Tokenizer } from "../src/io/tokenizer.ts";
import { generate } from "../src/models/generate.ts";
import { loadModel } from "../src/models/load.ts";
import { perplexity } from "../src/models/perplexity.ts";
import { assertClose } from "./_helpers.ts";
import { checkpointWithTokenizer, ferry } from "./_cli.ts";

const MODELS = "test/fixtures/models";
const LLAMA = `${MODELS}/llama-gqa-tied-f32`;

/** Asserts a failed run: exit 1 and exactly one stderr line, `ferry: ...` matching `pattern`. */
function assertFails(r: { code: number; stdout: string; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 1, `expected exit 1, stdout: ${r.stdout}`);
  assert.match(r.stderr, /^ferry: [^\n]+\n$/, `one line on stderr: ${JSON.stringify(r.stderr)}`);
  assert.match(r.stderr, pattern);
}

async function golden(
  model: string,
  name: string,
): Promise<{ data: Float32Array | Int32Array; shape: number[] }> {
  using f = await SafetensorsFile.open(`${MODELS}/${model}/golden.safetensors`);
  const t = await f.read(name);
  const bytes = t.data.slice(); // aligned copy
  const data = t.dtype === "I32" ? new Int32Array(bytes.buffer) : new Float32Array(bytes.buffer);
  return { data, shape: [...t.shape] };
}

/** Tensor headers of every weight file in a checkpoint folder, read here without Ferry's reader. */
async function headers(dir: string): Promise<Map<string, { dtype: string; shape: number[]; bytes: number }>> {
  const out = new Map<string, { dtype: string; shape: number[]; bytes: number }>();
  for await (const e of Deno.readDir(dir)) {
    if (!e.name.startsWith("model") || !e.name.endsWith(".safetensors")) continue;
    const buf = await Deno.readFile(`${dir}/${e.name}`);
    const n = Number(new DataView(buf.buffer).getBigUint64(0, true));
    const json = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + n)));
    for (const [name, v] of Object.entries(json)) {
      if (name === "__metadata__") continue;
      const { dtype, shape, data_offsets: [a, b] } = v as {
        dtype: string;
        shape: number[];
        data_offsets: number[];
      };
      out.set(name, { dtype, shape, bytes: b - a });
    }
  }
  return out;
}

const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
const fmt = (n: number) => n.toLocaleString("en-US");

Deno.test("ferry --help lists every command and flag", async () => {
  const r = await ferry("--help");
  assert.equal(r.code, 0, r.stderr);
  for (
    const word of [
      "info",
      "inspect PATH",
      "generate",
      "ppl",
      "logits",
      "quantize",
      "prune",
      "activations",
      "sweep",
    ]
  ) {
    assert.ok(r.stdout.includes(word), word);
  }
  for (
    const flag of [
      "--limit",
      "--tensors",
      "--model DIR",
      "--prompt TEXT",
      "--ids 1,2,3",
      "--max-new-tokens N",
      "--temperature T",
      "--top-p P",
      "--seed S",
      "--backend B",
      "--data SOURCE",
      "--split S",
      "--block-size N",
      "--stride N",
      "--max-tokens N",
      "--out FILE",
    ]
  ) {
    assert.ok(r.stdout.includes(flag), flag);
  }
  const sub = await ferry("logits", "--help");
  assert.equal(sub.code, 0);
  assert.match(sub.stdout, /usage: deno task ferry logits --model DIR --ids 1,2,3 --out FILE/);
});

Deno.test("ferry inspect lists the tensors of a safetensors file", async () => {
  const r = await ferry("inspect", "test/fixtures/safetensors/tiny.safetensors", "--limit", "0");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /embed\.weight\s+F32\s+\[2, 3\]\s+24 B/);
  assert.match(r.stdout, /12 tensors in 1 file; 30 parameters/);
});

Deno.test("ferry inspect DIR prints the architecture and exact parameter counts of a dense checkpoint", async () => {
  const [r, h] = await Promise.all([ferry("inspect", LLAMA), headers(LLAMA)]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  for (
    const line of [
      /model_type\s+llama \(LlamaForCausalLM\)/,
      /family\s+dense/,
      /layers\s+2\n/,
      /hidden\s+32\n/,
      /heads\s+4 query, 2 kv \(GQA\), head dim 8/,
      /vocab\s+128\n/,
      /rope theta\s+10000\n/,
      /tied embeddings\s+yes/,
      /lm head\s+0 \(tied to the embedding\)/,
    ]
  ) {
    assert.match(r.stdout, line);
  }
  const total = [...h.values()].reduce((s, t) => s + numel(t.shape), 0);
  const bytes = [...h.values()].reduce((s, t) => s + t.bytes, 0);
  assert.ok(!h.has("lm_head.weight"));
  assert.match(r.stdout, new RegExp(`\\n  total\\s+${fmt(total)}\\n`));
  assert.match(r.stdout, new RegExp(`F32\\s+${fmt(total)} values`));
  assert.match(r.stdout, new RegExp(`total\\s+${fmt(bytes)} bytes .* in 1 file`));
  const emb = numel(h.get("model.embed_tokens.weight")!.shape);
  assert.match(r.stdout, new RegExp(`embedding\\s+${fmt(emb)}\\n`));
});

Deno.test("ferry inspect DIR counts MoE components (experts, router, shared expert) and sharded BF16 bytes", async () => {
  const moe = `${MODELS}/qwen2-moe-f32`;
  const bf16 = `${MODELS}/llama-bf16-sharded`;
  const [r, h, rs, hs] = await Promise.all([
    ferry("inspect", moe),
    headers(moe),
    ferry("inspect", bf16),
    headers(bf16),
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /family\s+MoE/);
  assert.match(r.stdout, /experts\s+4, top-2 \(not renormalised\)/);
  assert.match(r.stdout, /shared expert\s+yes, width 48/);
  assert.match(r.stdout, /moe layers\s+1 of 2 \(1\)/);
  assert.match(r.stdout, /attention\s+q\/k\/v bias/);
  const sum = (re: RegExp) => [...h].filter(([n]) => re.test(n)).reduce((s, [, t]) => s + numel(t.shape), 0);
  const experts = sum(/\.mlp\.experts\.\d+\./);
  const expected = {
    "experts \\(routed\\)": experts,
    "router": sum(/\.mlp\.gate\.weight$/),
    "shared expert": sum(/\.mlp\.shared_expert/),
    "mlp \\(dense\\)": sum(/\.mlp\.(gate|up|down)_proj/),
    "attention": sum(/\.self_attn\./),
    "lm head": sum(/^lm_head\./),
    "total": sum(/./),
    "active per token": sum(/./) - experts / 2, // top-2 of 4 experts
  };
  for (const [label, n] of Object.entries(expected)) {
    assert.match(r.stdout, new RegExp(`  ${label}\\s+${fmt(n)}\\n`), label);
  }

  assert.equal(rs.code, 0, rs.stderr);
  assert.match(rs.stdout, /heads\s+4 query, 1 kv \(MQA\), head dim 16/);
  const total = [...hs.values()].reduce((s, t) => s + numel(t.shape), 0);
  const bytes = [...hs.values()].reduce((s, t) => s + t.bytes, 0);
  assert.equal(bytes, 2 * total);
  assert.match(rs.stdout, new RegExp(`BF16\\s+${fmt(total)} values`));
  assert.match(rs.stdout, new RegExp(`total\\s+${fmt(bytes)} bytes .* in 2 file`));
});

Deno.test("ferry logits writes float32 [T, V] logits equal to the golden forward", async () => {
  const ids = await golden("llama-gqa-tied-f32", "input_ids");
  const expected = await golden("llama-gqa-tied-f32", "logits");
  const dir = await Deno.makeTempDir({ prefix: "ferry_cli_" });
  try {
    const out = `${dir}/logits.safetensors`;
    const r = await ferry("logits", "--model", LLAMA, "--ids", [...ids.data].join(","), "--out", out);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /logits F32 \[7, 128\]/);
    using f = await SafetensorsFile.open(out);
    assert.deepEqual(f.names, ["logits"]);
    assert.equal(f.info("logits").dtype, "F32");
    assert.deepEqual(f.info("logits").shape, [7, 128]);
    assert.deepEqual(expected.shape, [7, 128]);
    assert.equal(f.metadata.input_ids, [...ids.data].join(","));
    assertClose(await f.readF32("logits"), expected.data, { rtol: 1e-4, atol: 1e-5, what: "logits" });
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["logits.safetensors"]); // no temp file left
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ferry logits refuses bad input with one line on stderr and writes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry_cli_" });
  const out = `${dir}/x.safetensors`;
  try {
    const cases: [string[], RegExp][] = [
      [["--ids", "1,2.5,3"], /^ferry: logits: --ids must be comma-separated non-negative integers .*"2\.5"/],
      [["--ids", "1,abc"], /--ids must be comma-separated non-negative integers/],
      [["--ids", "1,,3"], /--ids must be comma-separated/],
      [["--ids", "5,128"], /token id 128 \(position 1\) is outside the model's vocabulary of 128/],
      [["--ids", "1", "--model", "no/such/dir"], /--model no\/such\/dir: no such folder/],
      [["--ids", "1", "--model", "test/fixtures/safetensors"], /config\.json is missing/],
      [["--ids", "1", "--frobnicate"], /^ferry: logits: unknown option --frobnicate/],
      [["--ids"], /--ids needs a value/],
      [["--ids", "1", "--backend", "tpu"], /--backend must be one of auto, webgpu, cpu: received tpu/],
      [["--ids", "1", "stray"], /unexpected argument "stray"/],
    ];
    const runs = await Promise.all(
      cases.map(([args]) => ferry("logits", "--model", LLAMA, "--out", out, ...args)),
    );
    runs.forEach((r, i) => assertFails(r, cases[i][1]));
    assertFails(await ferry("logits", "--model", LLAMA, "--ids", "1"), /--out FILE is required/);
    assertFails(
      await ferry("logits", "--model", LLAMA, "--ids", "", "--out", out),
      /--ids is empty; expected 1,2,3$/m,
    );
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ferry generate --ids reproduces the golden greedy continuation", async () => {
  for (const model of ["llama-gqa-tied-f32", "mixtral-top2-f32"]) {
    const ids = await golden(model, "input_ids");
    const greedy = await golden(model, "greedy");
    const r = await ferry(
      "generate",
      "--model",
      `${MODELS}/${model}`,
      "--ids",
      [...ids.data].join(","),
      "--max-new-tokens",
      "8",
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split(",").map(Number), [...greedy.data], model);
    assert.match(
      r.stderr,
      /prefill 7 tokens in [\d.]+ ms; decode 8 tokens at [\d.]+ tokens\/s .*submits\/token/,
    );
  }
});

Deno.test("ferry generate --prompt streams decoded text; without tokenizer.json it suggests --ids", async () => {
  const dir = await checkpointWithTokenizer();
  try {
    const args = ["generate", "--model", dir, "--prompt", "The jury said", "--max-new-tokens", "12"];
    const [r, again] = await Promise.all([ferry(...args), ferry(...args)]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.startsWith("The jury said"), r.stdout);
    assert.ok(r.stdout.length > "The jury said\n".length);
    assert.equal(again.stdout, r.stdout); // greedy is deterministic
    // The streamed text is the decoding of the prompt ids plus the new ids (stopping at EOS).
    const tok = await Tokenizer.fromDir(dir);
    const prompt = tok.encode("The jury said");
    assert.equal(prompt[0], 1); // BOS
    assert.match(r.stderr, new RegExp(`prefill ${prompt.length} tokens .* tokens/s`));
    const device = await createDevice({ backend: "cpu" });
    using model = await loadModel(dir, { device });
    const { tokens } = await generate(model, prompt, { maxNewTokens: 12, stop: [2] });
    const text = tok.decode([...prompt, ...tokens], {
      skipSpecialTokens: true,
      cleanUpTokenizationSpaces: false,
    });
    assert.equal(r.stdout, `${text}\n`);

    const sampled = await ferry(...args, "--temperature", "0.8", "--top-p", "0.9", "--seed", "7");
    assert.equal(sampled.code, 0, sampled.stderr);
    assert.ok(sampled.stdout.startsWith("The jury said"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const bad = await Promise.all([
    ferry("generate", "--model", LLAMA, "--prompt", "hello"),
    ferry("generate", "--model", LLAMA),
    ferry("generate", "--model", LLAMA, "--ids", "1", "--max-new-tokens", "x"),
    ferry("generate", "--model", LLAMA, "--ids", "1", "--top-p", "1.5"),
    ferry("generate", "--model", LLAMA, "--ids", "1", "--temperature=-1"),
    ferry("generate", "--model", LLAMA, "--ids", "999"),
  ]);
  assertFails(bad[0], /has no tokenizer\.json.*--ids 1,2,3/);
  assertFails(bad[1], /pass exactly one of --prompt TEXT and --ids/);
  assertFails(bad[2], /--max-new-tokens must be an integer >= 1: received x/);
  assertFails(bad[3], /--top-p must be a number in \(0, 1\]: received 1\.5/);
  assertFails(bad[4], /--temperature must be a number in \[0, ∞\): received -1/);
  assertFails(bad[5], /token id 999 .* outside the model's vocabulary of 128/);
});

Deno.test("ferry ppl on Brown humor prints a finite perplexity equal to the library's", async () => {
  const dir = await checkpointWithTokenizer();
  try {
    const r = await ferry(
      "ppl",
      "--model",
      dir,
      "--data",
      "brown:cr",
      "--split",
      "all",
      "--max-tokens",
      "300",
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /ppl: [\d,]+\/299 tokens scored/);
    assert.match(r.stdout, /block size\s+128, stride 128/); // max_position_embeddings is 128
    // Windows of 128 tokens at 0, 128, 256: each scores all but its first token.
    assert.match(r.stdout, /tokens\s+297\n/);
    const loss = Number(/loss\s+(\S+)/.exec(r.stdout)?.[1]);
    const ppl = Number(/perplexity\s+(\S+)/.exec(r.stdout)?.[1]);
    assert.ok(Number.isFinite(ppl) && ppl > 1, r.stdout);
    assert.ok(Math.abs(Math.log(ppl) - loss) < 1e-3);

    // The same numbers in process: documents in order, EOS after each, the first 300 ids.
    const tok = await Tokenizer.fromDir(dir);
    const ids = tokenizeDocuments(await loadBrown({ genres: ["cr"] }), tok, { addEos: true })
      .flatMap((d) => [...d]).slice(0, 300);
    const device = await createDevice({ backend: "cpu" });
    using model = await loadModel(dir, { device });
    const want = await perplexity(model, ids, { blockSize: 128 });
    assert.equal(want.tokens, 297);
    assert.equal(loss.toFixed(4), want.loss.toFixed(4));

    const bad = await Promise.all([
      ferry("ppl", "--model", dir, "--data", "brown:zz"),
      ferry("ppl", "--model", dir, "--data", "no/such.txt"),
      ferry("ppl", "--model", dir, "--data", "brown:cr", "--split", "dev"),
      ferry("ppl", "--model", dir, "--data", "brown:cr", "--stride", "500"),
      ferry("ppl", "--model", LLAMA, "--data", "brown:cr"),
      ferry("ppl", "--model", dir),
    ]);
    assertFails(bad[0], /unknown Brown genre "zz"/);
    assertFails(bad[1], /--data no\/such\.txt: no such file/);
    assertFails(bad[2], /--split must be one of train, validation, test, all: received dev/);
    assertFails(bad[3], /--stride 500 must be at most the block size \(128\)/);
    assertFails(bad[4], /has no tokenizer\.json/);
    assertFails(bad[5], /--data SOURCE is required/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ferry ppl reads a JSONL file", async () => {
  const dir = await checkpointWithTokenizer();
  try {
    const lines = ["The jury said it was done.", "Then they left the room, and the city was quiet again."];
    await Deno.writeTextFile(`${dir}/data.jsonl`, lines.map((text) => JSON.stringify({ text })).join("\n"));
    const r = await ferry(
      "ppl",
      "--model",
      dir,
      "--data",
      `${dir}/data.jsonl`,
      "--block-size",
      "32",
      "--stride",
      "16",
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /\(all: 2 documents\)/);
    assert.match(r.stdout, /block size\s+32, stride 16/);
    assert.ok(Number.isFinite(Number(/perplexity\s+(\S+)/.exec(r.stdout)?.[1])));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ferry reports bad input on stderr with a non-zero exit", async () => {
  const [missing, unknown, bad, flag] = await Promise.all([
    ferry("inspect", "no/such/file.safetensors"),
    ferry("frobnicate"),
    ferry("inspect", "x", "--limit=-3"),
    ferry("inspect", LLAMA, "--verbose"),
  ]);
  assertFails(missing, /^ferry: .*no\/such\/file\.safetensors/);
  assertFails(unknown, /Unknown command "frobnicate": expected one of info, inspect, generate, ppl, logits/);
  assertFails(bad, /--limit must be a non-negative integer: received -3/);
  assertFails(flag, /^ferry: inspect: unknown option --verbose/);
});

Deno.test("ferry info names the CPU backend and the BLAS it loaded", async () => {
  const blas = await loadBlas({ quiet: true });
  const r = await ferry("info");
  assert.equal(r.code, 0, r.stderr);
  if (blas) {
    assert.match(r.stdout, /cpu: cpu \(OpenBLAS [^)]*threads?[^)]*\)/);
    assert.ok(r.stdout.includes(`blas: ${blas.info.library}`), r.stdout);
  } else {
    assert.match(r.stdout, /cpu: cpu \(TypeScript reference\)\n {2}blas: none/);
  }
});

Deno.test("ferry ppl --per-document scores each State of the Union address alone, with a bootstrap interval", async () => {
  const dir = await checkpointWithTokenizer();
  try {
    const r = await ferry("ppl", "--model", dir, "--data", "sotu", "--max-tokens", "600", "--per-document");
    assert.equal(r.code, 0, r.stderr);
    const n = Number(/validation: \d+ documents, (\d+) scored/.exec(r.stdout)?.[1]);
    const ppl = Number(/perplexity\s+(\S+)/.exec(r.stdout)?.[1]);
    const [lo, hi] = (/95% CI\s+(\S+)–(\S+) \(bootstrap over (\d+) documents\)/.exec(r.stdout) ?? []).slice(
      1,
      3,
    )
      .map(Number);
    assert.ok(n >= 1 && lo <= ppl && ppl <= hi, r.stdout);

    // The library on the same documents: the validation split's addresses, each from its own start.
    const tok = await Tokenizer.fromDir(dir);
    const { loadSotu, splitDocuments, tokenStream } = await import("../src/mod.ts");
    const docs = splitDocuments(await loadSotu()).validation;
    const device = await createDevice({ backend: "cpu" });
    using model = await loadModel(dir, { device });
    let left = 600;
    let nll = 0, tokens = 0;
    for (const d of docs.slice(0, n)) {
      const ids = tokenStream([d], tok, { addEos: true, maxTokens: left });
      left -= ids.length;
      const p = await perplexity(model, ids, { blockSize: 128 });
      nll += p.loss * p.tokens;
      tokens += p.tokens;
    }
    assert.ok(Math.abs(Math.exp(nll / tokens) - ppl) < 1e-3 * ppl, `${Math.exp(nll / tokens)} vs ${ppl}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
