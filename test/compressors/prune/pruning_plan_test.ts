/** `PruningPlan`: JSON round trips, derived GQA index sets, kept counts, and clear refusals of bad plans. */
import assert from "node:assert/strict";
import {
  createPruningPlan,
  keptCounts,
  kvRowKeep,
  loadPlan,
  planDimsOf,
  planFromJSON,
  planFromPrunedIndices,
  planToJSON,
  type PruningPlanInput,
  qRowKeep,
  queryHeadKeep,
  savePlan,
} from "../../../src/compressors/prune/pruning_plan.ts";
import { ConfigError } from "../../../src/errors.ts";
import { parseModelConfig } from "../../../src/models/config.ts";

const DIMS = { layers: 6, hidden: 16, intermediate: 10, heads: 6, kvHeads: 3, headDim: 2 };
const GOOD: PruningPlanInput = {
  method: "manual",
  ratio: 0.5,
  dims: DIMS,
  layers: [
    { index: 1, mlpKeep: [0, 3, 4, 8, 9], kvHeadKeep: [0, 2] },
    { index: 4, mlpKeep: [1, 2], kvHeadKeep: [1] },
  ],
};

Deno.test("PruningPlan round-trips through JSON and a file", async () => {
  const plan = createPruningPlan(GOOD);
  const json = JSON.parse(JSON.stringify(planToJSON(plan)));
  assert.equal(json.format, "ferry.pruning_plan");
  assert.equal(json.version, 1);
  assert.deepEqual(json.layers[0], { index: 1, mlpKeep: [0, 3, 4, 8, 9], kvHeadKeep: [0, 2] });
  assert.deepEqual(planFromJSON(json), plan);
  const dir = await Deno.makeTempDir();
  try {
    await savePlan(plan, `${dir}/plan.json`);
    assert.deepEqual(await loadPlan(`${dir}/plan.json`), plan);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  assert.ok(Object.isFrozen(plan) && Object.isFrozen(plan.layers[0].mlpKeep));
});

Deno.test("PruningPlan derives query heads, q/o and k/v index sets from the kept KV heads", () => {
  const plan = createPruningPlan(GOOD);
  const [l1, l4] = plan.layers;
  // g = 6 / 3 = 2 query heads per KV head, D = 2 rows per head.
  assert.deepEqual(queryHeadKeep(plan.dims, l1), [0, 1, 4, 5]);
  assert.deepEqual(qRowKeep(plan.dims, l1), [0, 1, 2, 3, 8, 9, 10, 11]);
  assert.deepEqual(kvRowKeep(plan.dims, l1), [0, 1, 4, 5]);
  assert.deepEqual(queryHeadKeep(plan.dims, l4), [2, 3]);
  assert.deepEqual(qRowKeep(plan.dims, l4), [4, 5, 6, 7]);
  assert.deepEqual(kvRowKeep(plan.dims, l4), [2, 3]);
});

Deno.test("keptCounts follows LoRAM: d_ff − ⌈p·d_ff⌉, Hkv − ⌊p·Hkv⌋ (GQA), ⌊H·(1−p)⌋ (MHA)", () => {
  // LLaMA-2-70B-like: d_ff 28672, 64 q / 8 kv heads at p = 0.85.
  const big = { layers: 80, hidden: 8192, intermediate: 28672, heads: 64, kvHeads: 8, headDim: 128 };
  assert.deepEqual(keptCounts(big, 0.85), { intermediate: 28672 - Math.ceil(0.85 * 28672), kvHeads: 8 - 6 });
  assert.deepEqual(keptCounts(big, 0.85).intermediate, 4300);
  // LLaMA-2-13B-like MHA: 40 heads at 0.65 -> ⌊40 · 0.35⌋ = 14.
  const mha = { layers: 40, hidden: 5120, intermediate: 13824, heads: 40, kvHeads: 40, headDim: 128 };
  assert.deepEqual(keptCounts(mha, 0.65), { intermediate: 13824 - 8986, kvHeads: 14 });
  assert.deepEqual(keptCounts({ ...DIMS, kvHeads: 3 }, 0.5), { intermediate: 5, kvHeads: 2 });
  assert.throws(() => keptCounts(DIMS, 1), /ratio must be in \[0, 1\): received 1/);
  assert.throws(
    () => keptCounts({ ...mha, heads: 4, kvHeads: 4 }, 0.9),
    /leaves .* 0 of 4 KV heads; use a smaller ratio/,
  );
});

Deno.test("bad plans are refused with the layer and field named", () => {
  const layer = (patch: Record<string, unknown>, index = 1) => ({
    ...GOOD,
    layers: [{ index, mlpKeep: [0, 3], kvHeadKeep: [0, 2], ...patch }],
  });
  const bad: [PruningPlanInput, RegExp][] = [
    [
      layer({ mlpKeep: [0, 10] }),
      /layers\[0\] \(layer 1\): mlpKeep\[1\] = 10 is outside the 10 intermediate channels \(0\.\.9\)/,
    ],
    [
      layer({ kvHeadKeep: [3] }),
      /layers\[0\] \(layer 1\): kvHeadKeep\[0\] = 3 is outside the 3 KV heads \(0\.\.2\)/,
    ],
    [layer({ mlpKeep: [4, 2, 7] }), /mlpKeep must be ascending: mlpKeep\[1\] = 2 follows 4; sort it/],
    [layer({ kvHeadKeep: [2, 0] }), /kvHeadKeep must be ascending: kvHeadKeep\[1\] = 0 follows 2/],
    [layer({ mlpKeep: [1, 5, 5] }), /mlpKeep\[2\] = 5 repeats mlpKeep\[1\]/],
    [layer({ mlpKeep: [] }), /mlpKeep is empty; a layer must keep at least one of its intermediate channels/],
    [layer({}, 6), /layers\[0\] \(layer 6\): index 6 is outside the model's layers 0\.\.5/],
    [
      { ...GOOD, layers: [GOOD.layers[1], GOOD.layers[0]] },
      /layers\[1\] \(layer 1\): layers must be listed in ascending index order \(after 4\)/,
    ],
    [
      { ...GOOD, layers: [GOOD.layers[0], GOOD.layers[0]] },
      /layers\[1\] \(layer 1\): layer 1 is listed twice/,
    ],
    [{ ...GOOD, dims: { ...DIMS, kvHeads: 4 } }, /dims\.kvHeads 4 must divide dims\.heads 6/],
  ];
  for (const [plan, message] of bad) {
    assert.throws(
      () => createPruningPlan(plan),
      (e: Error) => e instanceof RangeError && message.test(e.message),
    );
  }
  // Types and unknown keys: ConfigError from the strict schema.
  assert.throws(
    () => createPruningPlan(layer({ mlpKeep: [0.5] })),
    (e: Error) => e instanceof ConfigError && /mlpKeep\[0\]/.test(e.message),
  );
  assert.throws(() => createPruningPlan({ ...GOOD, ratio: 1 }), ConfigError);
  assert.throws(
    () => createPruningPlan({ ...GOOD, layerz: [] } as never),
    /unknown key.*did you mean "layers"/,
  );
  assert.throws(
    () => planFromJSON({ ...planToJSON(createPruningPlan(GOOD)), format: "llm-pruner" }),
    /expected format "ferry\.pruning_plan" version 1/,
  );
  assert.throws(() => planFromJSON([1, 2]), /expected a JSON object/);
});

Deno.test("planFromPrunedIndices turns removed-index records into a plan", () => {
  const plan = planFromPrunedIndices("llm-pruner", 0.5, DIMS, [
    { index: 2, mlpPruned: [9, 1, 5, 0, 7], kProjPruned: [3, 2] }, // KV head 1 = k_proj dims 2, 3
  ]);
  assert.deepEqual(plan.layers, [{ index: 2, mlpKeep: [2, 3, 4, 6, 8], kvHeadKeep: [0, 2] }]);
  assert.throws(
    () => planFromPrunedIndices("x", 0.5, DIMS, [{ index: 2, mlpPruned: [], kProjPruned: [2] }]),
    /kProjPruned removes 1 of the 2 dims of KV head 1; whole heads must be removed/,
  );
});

Deno.test("planDimsOf reads a dense config and refuses MoE", () => {
  const dense = parseModelConfig({
    model_type: "llama",
    vocab_size: 32,
    hidden_size: 16,
    intermediate_size: 24,
    num_hidden_layers: 3,
    num_attention_heads: 4,
    num_key_value_heads: 2,
  });
  assert.deepEqual(planDimsOf(dense), {
    layers: 3,
    hidden: 16,
    intermediate: 24,
    heads: 4,
    kvHeads: 2,
    headDim: 4,
  });
  const moe = parseModelConfig({
    model_type: "mixtral",
    vocab_size: 32,
    hidden_size: 16,
    intermediate_size: 24,
    num_hidden_layers: 1,
    num_attention_heads: 4,
    num_key_value_heads: 2,
  });
  assert.throws(() => planDimsOf(moe), /mixtral model: only dense Llama-family models/);
});

Deno.test("config.json ferry_pruning gives per-layer sizes and is checked", () => {
  const base = {
    model_type: "llama",
    vocab_size: 32,
    hidden_size: 16,
    intermediate_size: 24,
    num_hidden_layers: 3,
    num_attention_heads: 4,
    num_key_value_heads: 2,
  };
  const c = parseModelConfig({
    ...base,
    ferry_pruning: { intermediate_sizes: [24, 12, 24], num_key_value_heads: [2, 1, 2] },
  });
  assert.deepEqual(c.layerSizes, [
    { intermediate: 24, heads: 4, kvHeads: 2 },
    { intermediate: 12, heads: 2, kvHeads: 1 },
    { intermediate: 24, heads: 4, kvHeads: 2 },
  ]);
  assert.equal(parseModelConfig(base).layerSizes, undefined);
  assert.throws(
    () =>
      parseModelConfig({
        ...base,
        ferry_pruning: { intermediate_sizes: [24, 12], num_key_value_heads: [2, 3, 2] },
      }),
    /intermediate_sizes: needs one entry per layer \(3\) \(received 2\)[\s\S]*num_key_value_heads\[1\]: at most num_key_value_heads 2 \(received 3\)/,
  );
});
