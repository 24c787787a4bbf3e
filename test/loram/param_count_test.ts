import assert from "node:assert/strict";
import { createDevice } from "../../src/device/create_device.ts";
import { quantize } from "../../src/compressors/quant/quantize.ts";
import { countParams, loramParamCounts, nf4Bytes } from "../../src/loram/param_count.ts";
import { parseModelConfig } from "../../src/models/config.ts";
import { quantizedBytes } from "../../src/tensor/quantized_tensor.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { randn } from "../_helpers.ts";
import { ferry } from "../_cli.ts";

const BROWN_DENSE = JSON.parse(await Deno.readTextFile("examples/models/brown-dense/config.json"));
const llama = (o: Record<string, unknown>) => parseModelConfig({ model_type: "llama", ...o });
const LLAMA2_70B = {
  vocab_size: 32000,
  hidden_size: 8192,
  intermediate_size: 28672,
  num_hidden_layers: 80,
  num_attention_heads: 64,
  num_key_value_heads: 8,
};
const LLAMA2_13B = {
  vocab_size: 32000,
  hidden_size: 5120,
  intermediate_size: 13824,
  num_hidden_layers: 40,
  num_attention_heads: 40,
  num_key_value_heads: 40,
};

Deno.test("loramParamCounts: brown-dense (tied, GQA) against a hand count", () => {
  // Layer: q 192² + k, v 64·192 each + o 192² = 98,304; MLP 3·192·512 = 294,912; norms 384.
  const layer = 98_304 + 294_912 + 384; // 393,600
  const N = 8 * layer + 4096 * 192 + 192; // tied head: the embedding once, plus the final norm
  // p = 0.5 on [4, 6): d_ff 512 → 256, KV heads 2 → 1, query heads 6 → 3 (D = 32).
  const small = (96 * 192 + 2 * 32 * 192 + 192 * 96) + 3 * 192 * 256 + 384; // 196,992
  const c = loramParamCounts(parseModelConfig(BROWN_DENSE), { method: "rand", ratio: 0.5 });
  assert.equal(c.params, N);
  assert.equal(c.params, 3_935_424);
  assert.deepEqual(c.layers, [4, 6]);
  assert.deepEqual(c.kept, { intermediate: 256, heads: 3, kv_heads: 1 });
  assert.equal(c.pruned_params, N - 2 * layer + 2 * small);
  assert.equal(c.loram_reduction, N / c.pruned_params);
  assert.equal(c.qloram_reduction, (4 * N) / c.pruned_params);
  assert.equal(c.loram_gib, (2 * c.pruned_params) / 2 ** 30);
});

Deno.test("loramParamCounts: biases and an untied head are counted (qwen2)", () => {
  const config = parseModelConfig({
    model_type: "qwen2",
    vocab_size: 10,
    hidden_size: 8,
    intermediate_size: 12,
    num_hidden_layers: 7,
    num_attention_heads: 4,
    num_key_value_heads: 2,
  });
  // Layer: q 8·8 + 8 bias, k and v 4·8 + 4 each, o 8·8 (no bias); MLP 3·8·12; norms 16 → 512.
  assert.equal(countParams(config), 7 * 512 + 80 + 80 + 8);
  // p = 0.5 on [4, 5): F 6, Hkv 1, H 2: q 4·8 + 4, k and v 2·8 + 2, o 8·4; MLP 3·8·6; norms 16 → 264.
  const c = loramParamCounts(config, { method: "stru", ratio: 0.5, layers: [4, 5] });
  assert.equal(c.pruned_params, 3752 - 512 + 264);
});

Deno.test("loramParamCounts: LLaMA-2-70B / 3.1-70B / 13B reproduce the paper's Tables 4–6", () => {
  const cases: [Record<string, unknown>, number, number, number, string, string, string][] = [
    [LLAMA2_70B, 0.65, 68_976_648_192, 28_099_436_544, "2.45", "52.34", "9.82"],
    [LLAMA2_70B, 0.75, 68_976_648_192, 21_488_738_304, "3.21", "40.03", "12.84"],
    [LLAMA2_70B, 0.85, 68_976_648_192, 16_272_924_672, "4.24", "30.31", "16.95"],
    [LLAMA2_70B, 0.95, 68_976_648_192, 9_662_226_432, "7.14", "18.00", "28.56"],
    [{ ...LLAMA2_70B, vocab_size: 128256 }, 0.85, 70_553_706_496, 17_849_982_976, "3.95", "33.25", "15.81"],
    [LLAMA2_13B, 0.65, 13_015_864_320, 6_005_662_720, "2.17", "11.19", "8.67"],
  ];
  for (const [cfg, p, N, NP, lx, lgib, qx] of cases) {
    const c = loramParamCounts(llama(cfg), { method: "stru", ratio: p });
    assert.equal(c.params, N);
    assert.equal(c.pruned_params, NP, `p ${p}`);
    assert.equal(c.loram_reduction.toFixed(2), lx);
    assert.equal(c.loram_gib.toFixed(2), lgib);
    assert.equal(c.qloram_reduction.toFixed(2), qx);
  }
  // QLoRAM GiB column of 70B (Table 5): 13.08, 10.01, 7.58, 4.50.
  const q = [0.65, 0.75, 0.85, 0.95].map((p) =>
    loramParamCounts(llama(LLAMA2_70B), { method: "rand", ratio: p }).qloram_gib.toFixed(2)
  );
  assert.deepEqual(q, ["13.08", "10.01", "7.58", "4.50"]);
  // 13B Semi (50% of every layer's linear weights): Table 1's 1.95×.
  const semi = loramParamCounts(llama(LLAMA2_13B), { method: "semi", ratio: 0.5, layers: [0, 40] });
  assert.equal(semi.loram_reduction.toFixed(2), "1.95");
  assert.equal(semi.saves_memory, false);
  // 13B Unst at 0.55 over all layers: 6,037,591,040 here; the paper lists 6,037,628,912 (2.16× both).
  const unst = loramParamCounts(llama(LLAMA2_13B), { method: "unst", ratio: 0.55, layers: [0, 40] });
  // 55% of 40 · (4·5120² + 3·5120·13824) = 12,687,769,600 linear weights is 6,978,273,280.
  assert.equal(unst.pruned_params, 13_015_864_320 - 6_978_273_280);
  assert.equal(unst.loram_reduction.toFixed(2), "2.16");
});

Deno.test("nf4Bytes: NF4 codes + double-quant metadata per linear, bf16 for the rest (hand count)", async () => {
  const config = llama({
    vocab_size: 16,
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 1,
    num_attention_heads: 2,
    num_key_value_heads: 1,
    tie_word_embeddings: true,
  });
  // [rows, cols]: codes rows·cols/2 bytes, one 8-bit absmax per 64, one f32 per 256 blocks + an f32 offset.
  const lin = (rows: number, cols: number) =>
    rows * cols / 2 + rows * cols / 64 + 4 * Math.ceil(rows * cols / 64 / 256) + 4;
  const linears = 2 * lin(64, 64) + 2 * lin(32, 64) + 2 * lin(128, 64) + lin(64, 128);
  assert.equal(linears, 19_064);
  assert.equal(nf4Bytes(config), linears + 2 * (16 * 64 + 3 * 64));
  // The project's quantizer stores exactly that for one of these weights.
  const device = await createDevice({ backend: "cpu" });
  using w = Tensor.fromArray<"f32">(device, randn(32 * 64, 3), [32, 64]);
  const q = await quantize(w, { method: "nf4", groupSize: 64, doubleQuant: true });
  assert.equal(quantizedBytes(q).total, lin(32, 64));
});

Deno.test("loramParamCounts: bad input is refused with the reason", () => {
  const dense = parseModelConfig(BROWN_DENSE);
  assert.throws(() => loramParamCounts(dense, { method: "rand", ratio: 0 }), /ratio must be in \(0, 1\)/);
  assert.throws(() => loramParamCounts(dense, { method: "rand", ratio: 1 }), /ratio must be in \(0, 1\)/);
  assert.throws(() => loramParamCounts(dense, { method: "semi", ratio: 0.4 }), /must be 0\.5/);
  assert.throws(
    () => loramParamCounts(dense, { method: "rand", ratio: 0.5, layers: [4, 9] }),
    /outside the model's 8 layers/,
  );
  assert.throws(() => loramParamCounts(dense, { method: "rand", ratio: 0.5, layers: [5, 5] }), /empty/);
  const moe = parseModelConfig(JSON.parse(Deno.readTextFileSync("examples/models/brown-moe/config.json")));
  assert.throws(
    () => loramParamCounts(moe, { method: "stru", ratio: 0.5 }),
    /only dense Llama-family models/,
  );
});

Deno.test("ferry loram plan: --json prints the library's figures; bad input is one line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry-loram-plan-" });
  try {
    await Deno.writeTextFile(`${dir}/config.json`, JSON.stringify({ model_type: "llama", ...LLAMA2_70B }));
    const r = await ferry(
      "loram",
      "plan",
      "--config",
      `${dir}/config.json`,
      "--ratio",
      "0.85",
      "--method",
      "stru",
      "--json",
    );
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse(r.stdout);
    assert.deepEqual(got, loramParamCounts(llama(LLAMA2_70B), { method: "stru", ratio: 0.85 }));
    assert.equal(got.pruned_params, 16_272_924_672);
    const table = await ferry(
      "loram",
      "plan",
      "--config",
      dir,
      "--ratio",
      "0.85",
      "--method",
      "rand",
      "--layers",
      "4:78",
    );
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /pruned params\s+16,272,924,672/);
    assert.match(table.stdout, /QLoRAM\s+16\.95×\s+7\.58 GiB/);
    for (
      const [args, message] of [
        [["--ratio", "1.2", "--method", "rand"], /--ratio must be a number in \(0, 1\)/],
        [["--ratio", "0.5", "--method", "magic"], /--method must be one of rand, stru, semi, unst/],
        [["--ratio", "0.5", "--method", "rand", "--layers", "70:90"], /outside the model's 80 layers/],
        [["--ratio", "0.5", "--method", "rand", "--layers", "4-9"], /--layers must be START:END/],
      ] as const
    ) {
      const bad = await ferry("loram", "plan", "--config", dir, ...args);
      assert.equal(bad.code, 1);
      assert.equal(bad.stdout, "");
      assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
      assert.match(bad.stderr, message);
    }
    const moe = await ferry(
      "loram",
      "plan",
      "--config",
      "examples/models/brown-moe",
      "--ratio",
      "0.5",
      "--method",
      "stru",
    );
    assert.equal(moe.code, 1);
    assert.match(moe.stderr, /^ferry: .*only dense Llama-family models/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
