/**
 * `ferry floe calibrate|logits` as subprocesses on the CPU backend: the files hold what the library
 * computes (calibrate → save → load → logits round trip), top-k at s = 0 with exact up is
 * `ferry logits`, and bad input is one line on stderr, status 1, nothing written.
 * @module
 */
import assert from "node:assert/strict";
import { createDevice } from "../src/device/create_device.ts";
import { calibrateThresholds } from "../src/floe/calibrate.ts";
import { floeCompress } from "../src/floe/compress.ts";
import { FloeThresholds } from "../src/floe/thresholds.ts";
import { SafetensorsFile } from "../src/io/safetensors.ts";
import { loadModel } from "../src/models/load.ts";
import { assertClose } from "./_helpers.ts";
import { ferry } from "./_cli.ts";

const MODEL = "test/fixtures/models/mixtral-top2-f32";
const dir = await Deno.makeTempDir({ prefix: "ferry-cli-floe-" });
const IDS = Array.from({ length: 24 }, (_, i) => (i * 29 + 7) % 96);
const ids = IDS.join(",");

async function readF32(path: string, name: string) {
  using f = await SafetensorsFile.open(path);
  return { data: await f.readF32(name), shape: f.info(name).shape };
}

Deno.test("ferry floe calibrate -> logits --mode threshold equals the library (round trip)", async () => {
  const t = `${dir}/t.safetensors`;
  const c = await ferry(
    "floe",
    "calibrate",
    "--model",
    MODEL,
    "--ids",
    ids,
    "--sparsity",
    "0.7",
    "--group-size",
    "16",
    "--out",
    t,
  );
  assert.equal(c.code, 0, c.stderr);
  const cal = await readF32(t, "thresholds");
  assert.deepEqual(cal.shape, [2, 4]);
  const out = `${dir}/l.safetensors`;
  const r = await ferry(
    "floe",
    "logits",
    "--model",
    MODEL,
    "--ids",
    ids,
    "--sparsity",
    "0.7",
    "--mode",
    "threshold",
    "--thresholds",
    t,
    "--group-size",
    "16",
    "--dense-layers",
    "none",
    "--out",
    out,
  );
  assert.equal(r.code, 0, r.stderr);
  const got = await readF32(out, "logits");
  assert.deepEqual(got.shape, [IDS.length, 96]);

  const device = await createDevice({ backend: "cpu" });
  using model = await floeCompress(await loadModel(MODEL, { device }), {
    upBits: 2,
    groupSize: 16,
    sparsity: 0,
    mode: "topk",
    denseLayers: [],
  });
  const mine = await calibrateThresholds(model, [Int32Array.from(IDS)], { sparsity: 0.7 });
  assert.deepEqual(cal.data, mine.values, "same thresholds as the library");
  const loaded = await FloeThresholds.load(t, model);
  for (const l of model.moeLayers) {
    const ex = (model.layers[l].mlp as import("../src/nn/sparse_moe.ts").SparseMoE)
      .experts as import("../src/floe/floe_experts.ts").FloeExperts;
    ex.configure({ mode: "threshold", sparsity: 0.7, thresholds: loaded.at(l).slice() });
  }
  assertClose(got.data, await model.forward(Int32Array.from(IDS)).logits.toArray(), {
    rtol: 1e-5,
    atol: 1e-5,
  });
  using dense = await loadModel(MODEL, { device });
  const base = await dense.forward(Int32Array.from(IDS)).logits.toArray() as Float32Array;
  assert.ok(got.data.some((v, i) => Math.abs(v - base[i]) > 1e-3), "sparse logits differ from dense");
});

Deno.test("ferry floe logits --mode topk at s = 0 with --up-bits 16 equals ferry logits", async () => {
  const a = `${dir}/floe0.safetensors`;
  const b = `${dir}/dense.safetensors`;
  const r1 = await ferry(
    "floe",
    "logits",
    "--model",
    MODEL,
    "--ids",
    ids,
    "--sparsity",
    "0",
    "--mode",
    "topk",
    "--up-bits",
    "16",
    "--out",
    a,
  );
  const r2 = await ferry("logits", "--model", MODEL, "--ids", ids, "--out", b);
  assert.equal(r1.code + r2.code, 0, r1.stderr + r2.stderr);
  assertClose((await readF32(a, "logits")).data, (await readF32(b, "logits")).data, {
    rtol: 1e-4,
    atol: 1e-4,
  });
});

Deno.test("ferry floe refuses bad input with one line on stderr and writes nothing", async () => {
  const out = `${dir}/bad.safetensors`;
  const good = `${dir}/good.safetensors`;
  assert.equal(
    (await ferry(
      "floe",
      "calibrate",
      "--model",
      MODEL,
      "--ids",
      ids,
      "--sparsity",
      "0.5",
      "--up-bits",
      "16",
      "--out",
      good,
    )).code,
    0,
  );
  const wrongShape = `${dir}/wrong.safetensors`;
  await new FloeThresholds(new Float32Array(3 * 4), 3, 4, {
    sparsity: 0.5,
    rounds: 1,
    upBits: 16,
    groupSize: 0,
    tokens: 1,
  }, "x").save(wrongShape);
  const other = `${dir}/other.safetensors`;
  assert.equal(
    (await ferry(
      "floe",
      "calibrate",
      "--model",
      "test/fixtures/models/olmoe-f32",
      "--ids",
      "1,2,3",
      "--sparsity",
      "0.5",
      "--up-bits",
      "16",
      "--out",
      other,
    )).code,
    0,
  );
  const base = ["--model", MODEL, "--ids", ids, "--out", out, "--group-size", "16"];
  const cases: [string[], RegExp][] = [
    [
      ["floe", "logits", ...base, "--sparsity", "1", "--mode", "topk"],
      /--sparsity must be a number in \[0, 1\): received 1/,
    ],
    [["floe", "calibrate", ...base, "--sparsity=-0.1"], /--sparsity must be a number in \[0, 1\)/],
    [
      ["floe", "logits", ...base, "--sparsity", "0.5", "--mode", "random"],
      /--mode must be topk or threshold: received random/,
    ],
    [
      ["floe", "logits", ...base, "--sparsity", "0.5", "--mode", "threshold"],
      /--mode threshold needs --thresholds FILE/,
    ],
    [
      ["floe", "logits", ...base, "--sparsity", "0.5", "--mode", "threshold", "--thresholds", wrongShape],
      /thresholds are \[3, 4\] but the model has 2 layers of 4 experts/,
    ],
    [
      ["floe", "logits", ...base, "--sparsity", "0.5", "--mode", "threshold", "--thresholds", other],
      /calibrated on another model/,
    ],
    [[
      "floe",
      "logits",
      ...base,
      "--sparsity",
      "0.5",
      "--mode",
      "threshold",
      "--thresholds",
      `${dir}/none.safetensors`,
    ], /--thresholds .*: no such file/],
    [[
      "floe",
      "logits",
      "--model",
      "test/fixtures/models/llama-gqa-tied-f32",
      "--ids",
      "1,2",
      "--out",
      out,
      "--sparsity",
      "0.5",
      "--mode",
      "topk",
    ], /is a dense llama model; FloE needs a MoE model/],
    [
      ["floe", "calibrate", "--model", MODEL, "--ids", "1,2,96", "--out", out, "--sparsity", "0.5"],
      /token id 96 \(position 2\) is outside the model's vocabulary of 96/,
    ],
    [
      ["floe", "logits", ...base, "--sparsity", "0.5", "--mode", "topk", "--up-bits", "5"],
      /--up-bits must be 2, 3, 4 or 16: received 5/,
    ],
    [
      ["floe", "logits", ...base, "--group-size", "64", "--sparsity", "0.5", "--mode", "topk"],
      /--group-size 64 must divide the hidden size 32/,
    ],
    [["floe", "prune", ...base], /unknown subcommand "prune": expected calibrate, logits, tables or bench/],
    [
      ["floe", "tables", "--model", "test/fixtures/models/llama-gqa-tied-f32", "--out", `${dir}/tables`],
      /floe tables: --model .* is a dense llama model; FloE needs a MoE model/,
    ],
    [
      ["floe", "tables", "--model", MODEL, "--out", `${dir}/tables`, "--data", "brown:zz"],
      /unknown Brown genre "zz"/,
    ],
  ];
  for (const [args, pattern] of cases) {
    const r = await ferry(...args);
    assert.equal(r.code, 1, `${args.join(" ")}: ${r.stdout}`);
    assert.match(r.stderr, /^ferry: [^\n]+\n$/, `one line on stderr: ${JSON.stringify(r.stderr)}`);
    assert.match(r.stderr, pattern);
  }
  await assert.rejects(Deno.stat(out), Deno.errors.NotFound);
  await assert.rejects(Deno.stat(`${dir}/tables`), Deno.errors.NotFound);
});

globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
