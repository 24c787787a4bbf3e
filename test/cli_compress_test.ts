/**
 * The compressor commands (`ferry quantize`, `ferry prune`, `ferry sweep`) run as subprocesses on
 * the CPU backend: their output files hold what the library computes, and bad input is one line
 * on stderr with exit status 1 and no output file.
 * @module
 */
import assert from "node:assert/strict";
import { createDevice } from "../src/device/create_device.ts";
import { applyPlan } from "../src/compressors/prune/apply_plan.ts";
import { pruneWeight } from "../src/compressors/prune/masks.ts";
import { planDimsOf } from "../src/compressors/prune/pruning_plan.ts";
import { randomPlan } from "../src/compressors/prune/structured.ts";
import { loadModel } from "../src/models/load.ts";
import { saveModel } from "../src/models/save.ts";
import { quantize, quantizedToHost } from "../src/compressors/quant/quantize.ts";
import { SafetensorsFile, writeSafetensors } from "../src/io/safetensors.ts";
import { dequantizeRef } from "../src/ops/dequantize_ref.ts";
import { bitsPerParam } from "../src/tensor/quantized_tensor.ts";
import { Tensor } from "../src/tensor/tensor.ts";
import { randn } from "./_helpers.ts";
import { ferry } from "./_cli.ts";

const dir = await Deno.makeTempDir({ prefix: "ferry-cli-compress-" });
const [ROWS, COLS] = [24, 96];
const W = randn(ROWS * COLS, 5).map((v, i) => (i % 37 === 0 ? 8 * v : v)); // a few outliers
const X = randn(40 * COLS, 6).map((v, i) => v * (1 + (i % COLS) / 10)); // [40, in], uneven columns
await writeSafetensors(`${dir}/w.safetensors`, {
  "layer.weight": { dtype: "F32", shape: [ROWS, COLS], data: W },
  "vector": { dtype: "F32", shape: [COLS], data: W.subarray(0, COLS) },
});
await writeSafetensors(`${dir}/act.safetensors`, { x: { dtype: "F32", shape: [40, COLS], data: X } });

async function readOut(path: string, name: string) {
  using f = await SafetensorsFile.open(path);
  return { data: await f.readF32(name), shape: (await f.read(name)).shape, metadata: f.metadata ?? {} };
}

for (
  const [method, bits, group, axis, extra] of [
    ["hqq", 2, 32, 1, []],
    ["rtn", 3, 8, 0, []],
    ["nf4", 4, 32, 1, ["--double-quant"]],
  ] as const
) {
  Deno.test(`ferry quantize --method ${method} writes the library's dequantized weight and bits/param`, async () => {
    const out = `${dir}/q-${method}.safetensors`;
    const r = await ferry(
      "quantize",
      ...["--method", method, "--bits", String(bits), "--group-size", String(group), "--axis", String(axis)],
      ...extra,
      ...["--in", `${dir}/w.safetensors`, "--tensor", "layer.weight", "--out", out],
    );
    assert.equal(r.code, 0, r.stderr);
    const got = await readOut(out, "dequant");
    assert.deepEqual(got.shape, [ROWS, COLS]);
    const device = await createDevice({ backend: "cpu" });
    using t = Tensor.fromArray<"f32">(device, W, [ROWS, COLS]);
    const q = await quantize(t, {
      method,
      bits,
      groupSize: group,
      axis,
      ...(method === "nf4" ? { doubleQuant: true } : {}),
    });
    assert.deepEqual(got.data, dequantizeRef(await quantizedToHost(q)));
    assert.equal(Number(got.metadata.bits_per_param), bitsPerParam(q).total);
    assert.ok(Number(got.metadata.bits_per_param) > bits, "metadata counts above the code bits");
  });
}

Deno.test("ferry prune writes the library's pruned weight (magnitude, wanda with activations, 2:4)", async () => {
  const norms = new Float32Array(COLS);
  for (let i = 0; i < X.length; i++) norms[i % COLS] += X[i] * X[i];
  norms.forEach((v, i) => (norms[i] = Math.sqrt(v)));
  for (
    const [method, args, inputNorms] of [
      ["magnitude", ["--sparsity", "0.3"], undefined],
      ["wanda", ["--sparsity", "0.5", "--act", `${dir}/act.safetensors`], norms],
      ["2:4", [], undefined],
    ] as const
  ) {
    const out = `${dir}/p-${method.replace(":", "")}.safetensors`;
    const r = await ferry(
      "prune",
      ...[
        "--method",
        method,
        ...args,
        "--in",
        `${dir}/w.safetensors`,
        "--tensor",
        "layer.weight",
        "--out",
        out,
      ],
    );
    assert.equal(r.code, 0, r.stderr);
    const got = await readOut(out, "pruned");
    const sparsity = method === "magnitude" ? 0.3 : 0.5;
    const want = pruneWeight(W, [ROWS, COLS], { method, sparsity, inputNorms });
    const zeros = got.data.filter((v) => v === 0).length;
    assert.ok(Math.abs(zeros / W.length - want.sparsity) < 1e-9, `${method}: ${zeros} zeros`);
    assert.ok(Math.abs(Number(got.metadata.sparsity) - want.sparsity) < 1e-12);
    // The same weights survive up to the ~1e-7 relative error of the norms read back as float32.
    const differ = got.data.filter((v, i) => v !== want.pruned[i]).length;
    assert.ok(differ <= 2, `${method}: ${differ} entries differ from the library's`);
  }
});

Deno.test("ferry quantize and prune refuse bad input with one line on stderr and write nothing", async () => {
  const out = `${dir}/bad.safetensors`;
  const input = ["--in", `${dir}/w.safetensors`, "--out", out];
  const cases: [string[], RegExp][] = [
    [[
      "quantize",
      "--method",
      "rtn",
      "--bits",
      "2",
      "--group-size",
      "7",
      "--tensor",
      "layer.weight",
      ...input,
    ], /group size 7 must be a positive integer dividing/],
    [
      ["quantize", "--method", "rtn", "--bits", "5", "--tensor", "layer.weight", ...input],
      /--bits must be one of 2, 3, 4, 8: received 5/,
    ],
    [
      ["quantize", "--method", "gptq", "--bits", "4", "--tensor", "layer.weight", ...input],
      /--method must be one of rtn, hqq, nf4/,
    ],
    [
      ["quantize", "--method", "rtn", "--bits", "4", "--tensor", "nope", ...input],
      /has no tensor "nope"; it holds: layer\.weight, vector/,
    ],
    [
      ["quantize", "--method", "rtn", "--bits", "4", "--tensor", "vector", ...input],
      /shape \[96\]; expected a 2-D weight/,
    ],
    [
      ["prune", "--method", "wanda", "--sparsity", "0.5", "--tensor", "layer.weight", ...input],
      /wanda needs calibration inputs: --act FILE/,
    ],
    [
      ["prune", "--method", "magnitude", "--sparsity", "1.5", "--tensor", "layer.weight", ...input],
      /--sparsity/,
    ],
    [[
      "prune",
      "--method",
      "magnitude",
      "--sparsity",
      "0.5",
      "--tensor",
      "layer.weight",
      "--in",
      `${dir}/none.safetensors`,
      "--out",
      out,
    ], /no such file/],
  ];
  for (const [args, pattern] of cases) {
    const r = await ferry(...args);
    assert.equal(r.code, 1, `${args.join(" ")}: ${r.stdout}`);
    assert.match(r.stderr, /^ferry: [^\n]+\n$/, `one line on stderr: ${JSON.stringify(r.stderr)}`);
    assert.match(r.stderr, pattern);
  }
  await assert.rejects(Deno.stat(out), Deno.errors.NotFound);
});

Deno.test("ferry sweep on an MoE checkpoint prints the summary and writes Arrow tables", async () => {
  const model = `${dir}/moe`;
  await Deno.mkdir(model);
  for (const f of ["config.json", "model.safetensors"]) {
    await Deno.copyFile(`test/fixtures/models/qwen2-moe-f32/${f}`, `${model}/${f}`);
  }
  await Deno.copyFile("test/fixtures/cli/tokenizer.json", `${model}/tokenizer.json`);
  const r = await ferry(
    "sweep",
    ...["--model", model, "--data", "brown:cr", "--tokens", "64", "--methods", "rtn,hqq", "--bits", "2,4"],
    ...[
      "--group-sizes",
      "8",
      "--prune",
      "magnitude,2:4",
      "--ranks",
      "2",
      "--sensitivity",
      "--out",
      `${dir}/new/runs`, // missing folders are created, as for every --out
    ],
  );
  assert.equal(r.code, 0, r.stderr);
  for (
    const word of [
      "w1 (gate)",
      "w3 (up)",
      "w2 (down)",
      "hqq",
      "magnitude",
      "svd",
      "increase_pct",
      "increase_hi_pct",
    ]
  ) {
    assert.ok(r.stdout.includes(word), word);
  }
  assert.match(r.stderr, /sensitivity: w3 \(up\) rtn 2-bit: ppl [\d.]+ \(95% CI [\d.]+–[\d.]+\)/);
  const [run] = [...Deno.readDirSync(`${dir}/new/runs`)];
  const files = [...Deno.readDirSync(`${dir}/new/runs/${run.name}`)].map((e) => e.name).sort();
  assert.deepEqual(files, ["metrics.arrow", "sensitivity.arrow", "summary.arrow"]);
});

Deno.test("ferry inspect shows the per-layer sizes of a structurally pruned checkpoint", async () => {
  const device = await createDevice({ backend: "cpu" });
  using model = await loadModel("test/fixtures/models/llama-gqa-tied-f32", { device });
  const plan = randomPlan(planDimsOf(model.config), { ratio: 0.5, layers: [1, 2], seed: 3 });
  using small = await applyPlan(model, plan);
  const out = `${dir}/pruned-llama`;
  await saveModel(small, out);
  const r = await ferry("inspect", out);
  assert.equal(r.code, 0, r.stderr);
  const { intermediate, kvHeads, heads } = small.config.layerSizes![1];
  assert.match(
    r.stdout,
    new RegExp(`pruned layers +1: mlp ${intermediate}, heads ${heads}/${kvHeads} kv\\n`),
  );
  assert.ok(intermediate < model.config.intermediate && kvHeads < model.config.kvHeads);
});
