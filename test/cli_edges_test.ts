/**
 * The command line's edges, run as subprocesses on the CPU backend: one `--out` rule for every
 * command (missing folders created; an input, an existing folder or a file inside the checkpoint
 * refused in Ferry's words), `ferry activations` feeding `ferry prune --method wanda`, `inspect`
 * showing a file's `__metadata__`, and messages that state the accepted range once.
 * @module
 */
import assert from "node:assert/strict";
import { modelSweepWeights } from "../src/compressors/analysis/model_weights.ts";
import { pruneWeight } from "../src/compressors/prune/masks.ts";
import { loadBrown } from "../src/data/brown.ts";
import { tokenStream } from "../src/data/pack.ts";
import { splitDocuments } from "../src/data/splits.ts";
import { createDevice } from "../src/device/create_device.ts";
import { SafetensorsFile, writeSafetensors } from "../src/io/safetensors.ts";
import { Tokenizer } from "../src/io/tokenizer.ts";
import { loadModel } from "../src/models/load.ts";
import { randn } from "./_helpers.ts";
import { checkpointWithTokenizer, ferry } from "./_cli.ts";

const LLAMA = "test/fixtures/models/llama-gqa-tied-f32";
const dir = await Deno.makeTempDir({ prefix: "ferry-cli-edges-" });
const [ROWS, COLS] = [8, 32];
const W = randn(ROWS * COLS, 11);
const input = `${dir}/w.safetensors`;
await writeSafetensors(input, { w: { dtype: "F32", shape: [ROWS, COLS], data: W } });
const inputBytes = await Deno.readFile(input);

/** Asserts exit 1 and exactly one stderr line `ferry: ...` matching `pattern`. */
function assertFails(r: { code: number; stdout: string; stderr: string }, pattern: RegExp): void {
  assert.equal(r.code, 1, `expected exit 1, stdout: ${r.stdout}`);
  assert.match(r.stderr, /^ferry: [^\n]+\n$/, `one line on stderr: ${JSON.stringify(r.stderr)}`);
  assert.match(r.stderr, pattern);
}

const quantize = (out: string) =>
  ferry(
    "quantize",
    "--method",
    "rtn",
    "--bits",
    "4",
    "--group-size",
    "8",
    "--in",
    input,
    "--tensor",
    "w",
    "--out",
    out,
  );
const prune = (out: string) =>
  ferry("prune", "--method", "magnitude", "--sparsity", "0.5", "--in", input, "--tensor", "w", "--out", out);

Deno.test("--out equal to --in is refused and the input is left as it was", async () => {
  assertFails(await quantize(input), /quantize: --out \S+ is the --in file; write to another file/);
  assertFails(await prune(input), /prune: --out \S+ is the --in file; write to another file/);
  // another spelling of the same file
  assertFails(await prune(`${dir}/./sub/../w.safetensors`), /is the --in file/);
  assert.deepEqual(await Deno.readFile(input), inputBytes);
});

Deno.test("--out naming an existing folder is refused in Ferry's words, for every command writing a file", async () => {
  const folder = `${dir}/a-folder`;
  await Deno.mkdir(folder, { recursive: true });
  const model = await checkpointWithTokenizer();
  try {
    const runs = await Promise.all([
      quantize(folder),
      prune(folder),
      ferry("logits", "--model", LLAMA, "--ids", "1,2", "--out", folder),
      ferry("activations", "--model", model, "--data", "brown:cr", "--tokens", "16", "--out", folder),
    ]);
    for (const r of runs) {
      assertFails(r, /--out \S+a-folder is a folder; pass a file path such as \S+\/out\.safetensors/);
    }
    assert.deepEqual([...Deno.readDirSync(folder)], []);
  } finally {
    await Deno.remove(model, { recursive: true });
  }
});

Deno.test("one rule for missing --out folders: every command creates them", async () => {
  const model = await checkpointWithTokenizer();
  try {
    const outs = ["q", "p", "l", "a"].map((k) => `${dir}/missing-${k}/deeper/out.safetensors`);
    const runs = await Promise.all([
      quantize(outs[0]),
      prune(outs[1]),
      ferry("logits", "--model", LLAMA, "--ids", "1,2", "--out", outs[2]),
      ferry("activations", "--model", model, "--data", "brown:cr", "--tokens", "16", "--out", outs[3]),
    ]);
    runs.forEach((r, i) => {
      assert.equal(r.code, 0, r.stderr);
      assert.ok(Deno.statSync(outs[i]).isFile, outs[i]);
    });
    // (sweep: test/cli_compress_test.ts writes its run folder under a missing folder)
    // ...but a file on the way is refused before any work
    assertFails(
      await prune(`${input}/x.safetensors`),
      /--out \S+: \S+w\.safetensors is a file, not a folder/,
    );
    assertFails(
      await ferry("sweep", "--model", LLAMA, "--out", input),
      /sweep: --out \S+ is a file; pass a folder \(created if missing\)/,
    );
    // ...and so is writing into the checkpoint that is read
    assertFails(
      await ferry("logits", "--model", model, "--ids", "1", "--out", `${model}/logits.safetensors`),
      /--out \S+ is inside the --model folder \S+; write outside the checkpoint/,
    );
  } finally {
    await Deno.remove(model, { recursive: true });
  }
});

Deno.test("ferry activations writes each linear's inputs, and prune --method wanda takes them as they are", async () => {
  const model = await checkpointWithTokenizer();
  try {
    const acts = `${dir}/acts.safetensors`;
    const r = await ferry(
      "activations",
      "--model",
      model,
      "--data",
      "brown:cr",
      "--tokens",
      "40",
      "--layers",
      "1",
      "--out",
      acts,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /wrote \S+acts\.safetensors: 7 tensors/);

    // The same activations through the library: the model on the same calibration ids (training split).
    const device = await createDevice({ backend: "cpu" });
    using m = await loadModel(model, { device });
    const tokenizer = await Tokenizer.fromDir(model);
    const ids = tokenStream(splitDocuments(await loadBrown({ genres: ["cr"] })).train, tokenizer, {
      addEos: true,
      maxTokens: 40,
    });
    const block = Math.min(128, m.config.maxPositionEmbeddings);
    const seqs = Array.from(
      { length: Math.ceil(ids.length / block) },
      (_, i) => ids.subarray(i * block, (i + 1) * block),
    );
    const want = await modelSweepWeights(m, seqs, { layers: [1], maxTokens: 40 });
    using file = await SafetensorsFile.open(acts);
    assert.deepEqual(file.names.toSorted(), want.map((w) => `${w.name}.weight`).toSorted());
    assert.equal(file.metadata.tokens, String(ids.length));
    const down = want.find((w) => w.name === "model.layers.1.mlp.down_proj")!;
    const x = await file.readF32("model.layers.1.mlp.down_proj.weight");
    assert.deepEqual((await file.read("model.layers.1.mlp.down_proj.weight")).shape, [40, down.shape[1]]);
    assert.deepEqual(x, down.activations);

    // Wanda on the checkpoint's own weight, calibrated by the file (the tensor named like --tensor).
    const out = `${dir}/wanda.safetensors`;
    const p = await ferry(
      "prune",
      ...["--method", "wanda", "--sparsity", "0.5", "--act", acts, "--in", `${model}/model.safetensors`],
      ...["--tensor", "model.layers.1.mlp.down_proj.weight", "--out", out],
    );
    assert.equal(p.code, 0, p.stderr);
    const cols = down.shape[1];
    const norms = new Float32Array(cols).map((_, j) => {
      let s = 0;
      for (let t = 0; t < x.length / cols; t++) s += x[t * cols + j] ** 2;
      return Math.sqrt(s);
    });
    const expected = pruneWeight(down.data, down.shape, {
      method: "wanda",
      sparsity: 0.5,
      inputNorms: norms,
    });
    using pruned = await SafetensorsFile.open(out);
    assert.deepEqual(await pruned.readF32("pruned"), expected.pruned);
  } finally {
    await Deno.remove(model, { recursive: true });
  }
});

Deno.test("ferry inspect FILE shows the safetensors __metadata__", async () => {
  const out = `${dir}/meta.safetensors`;
  assert.equal((await prune(out)).code, 0);
  const r = await ferry("inspect", out);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^1 tensor in 1 file; 256 parameters/m);
  assert.match(r.stdout, /\n__metadata__\n/);
  assert.match(r.stdout, /^ {2}sparsity +0\.5$/m);
  assert.match(r.stdout, /^ {2}method +magnitude$/m);
  assert.match(r.stdout, /^ {2}requested_sparsity +0\.5$/m);
});

Deno.test("messages state the accepted values once, and say what is wrong", async () => {
  const out = `${dir}/never.safetensors`;
  const q = (...a: string[]) => ferry("quantize", "--in", input, "--tensor", "w", "--out", out, ...a);
  const p = (...a: string[]) => ferry("prune", "--in", input, "--tensor", "w", "--out", out, ...a);
  const [bits0, bits16, sparsity1, sparsityNeg, emptyIds, axis2] = await Promise.all([
    q("--method", "rtn", "--bits", "0"),
    q("--method", "hqq", "--bits", "16"),
    p("--method", "magnitude", "--sparsity", "1"),
    p("--method", "magnitude", "--sparsity=-0.1"),
    ferry("logits", "--model", LLAMA, "--ids", " ", "--out", out),
    q("--method", "rtn", "--bits", "2", "--axis", "2"),
  ]);
  assertFails(bits0, /--bits must be one of 2, 3, 4, 8: received 0$/m);
  assertFails(bits16, /--bits must be one of 2, 3, 4, 8: received 16$/m);
  assertFails(sparsity1, /--sparsity must be a number in \[0, 1\): received 1$/m);
  assertFails(sparsityNeg, /--sparsity must be a number in \[0, 1\): received -0\.1$/m);
  assertFails(emptyIds, /logits: --ids is empty; expected 1,2,3$/m);
  assertFails(axis2, /--axis must be one of 0, 1: received 2$/m);
  await assert.rejects(Deno.stat(out), Deno.errors.NotFound);

  // A config.json without model_type, and a file cut short.
  const noType = `${dir}/no-type`;
  await Deno.mkdir(noType, { recursive: true });
  await Deno.writeTextFile(`${noType}/config.json`, JSON.stringify({ hidden_size: 4 }));
  assertFails(
    await ferry("ppl", "--model", noType, "--data", "brown:cr"),
    /config\.json has no model_type: expected one of llama, /,
  );
  const cut = `${dir}/cut.safetensors`;
  await Deno.writeFile(cut, inputBytes.subarray(0, inputBytes.length - 100));
  assertFails(
    await ferry("inspect", cut),
    new RegExp(
      `its data section holds ${ROWS * COLS * 4 - 100} bytes \\(file ${inputBytes.length - 100} bytes, ` +
        `header \\d+\\); the file is truncated`,
    ),
  );
});

globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
