/**
 * Structured pruning of the embedded checkpoint `examples/models/brown-dense` (Llama, 8 layers,
 * 6 query / 2 KV heads, d_ff 512, tied embeddings) at LoRAM's ratio 0.5: the pruned model has the
 * analytic parameter count (ALGORITHMS B.7) and runs perplexity on Brown validation ids.
 *
 * Measured on 4064 scored validation tokens (block 128, CPU): base 255.50. Pruning LoRAM's range
 * [4, 6) costs under 2.1 for every plan: random 256.29–257.58 over 5 seeds, L2 255.98, activation
 * 255.97. L2 beats every seed there, but by under 0.5, and on 512 ids one seed beats it, so that
 * comparison is not asserted. On the wider range [1, 7) the gap is clear (random 266.78–273.47,
 * L2 259.58, activation 259.25) and is asserted below.
 */
import assert from "node:assert/strict";
import { applyPlan } from "../../../src/compressors/prune/apply_plan.ts";
import { collectInputNorms } from "../../../src/compressors/prune/calibration.ts";
import { keptCounts, planDimsOf } from "../../../src/compressors/prune/pruning_plan.ts";
import {
  activationPlan,
  l2Plan,
  loramLayerRange,
  randomPlan,
} from "../../../src/compressors/prune/structured.ts";
import { loadBrown } from "../../../src/data/brown.ts";
import { tokenizeAndPack } from "../../../src/data/pack.ts";
import { splitDocuments } from "../../../src/data/splits.ts";
import { Tokenizer } from "../../../src/io/tokenizer.ts";
import type { CausalLM } from "../../../src/models/causal_lm.ts";
import { loadModel } from "../../../src/models/load.ts";
import { perplexity } from "../../../src/models/perplexity.ts";
import type { PruningPlan } from "../../../src/compressors/prune/pruning_plan.ts";
import { testOnDevices } from "../../_helpers.ts";

const MODELS = new URL("../../../examples/models/", import.meta.url).pathname;
const splits = splitDocuments(await loadBrown());
const tokenizer = await Tokenizer.fromDir(`${MODELS}tokenizer`);
/** 512 validation ids: 4 windows of 128. */
const EVAL = tokenizeAndPack(splits.validation, tokenizer, { blockSize: 1, addEos: true }).data.subarray(
  0,
  512,
);
/** Calibration: two 128-token blocks of the train split (disjoint from EVAL). */
const CALIBRATION = tokenizeAndPack(splits.train.slice(0, 8), tokenizer, { blockSize: 128, addEos: true })
  .blocks
  .slice(0, 2);

async function pplOf(model: CausalLM, plan: PruningPlan): Promise<number> {
  using small = await applyPlan(model, plan);
  const { perplexity: ppl } = await perplexity(small, EVAL, { blockSize: 128 });
  assert.ok(Number.isFinite(ppl), `${plan.method} plan: perplexity ${ppl} is not finite`);
  return ppl;
}

testOnDevices(
  "brown-dense pruned at 0.5 on [4, L−2) has the analytic size and a finite perplexity",
  async (device) => {
    using model = await loadModel(`${MODELS}brown-dense`, { device });
    const dims = planDimsOf(model.config);
    const { layers: L, hidden: d, headDim: hd, heads, kvHeads, intermediate } = dims;
    const V = model.config.vocabSize;
    const range = loramLayerRange(L);
    assert.deepEqual(range, [4, 6]);
    const plan = randomPlan(dims, { ratio: 0.5, layers: range, seed: 0 });
    using small = await applyPlan(model, plan);

    // ALGORITHMS B.7 with tied embeddings (V·d once): N_layer(d_ff, n_q, n_kv) = 2d·n_q·hd + 2d·n_kv·hd + 3d·d_ff + 2d.
    const nLayer = (dff: number, nq: number, nkv: number) =>
      2 * d * nq * hd + 2 * d * nkv * hd + 3 * d * dff + 2 * d;
    const kept = keptCounts(dims, 0.5);
    assert.deepEqual(kept, { intermediate: 256, kvHeads: 1 });
    const nPruned = range[1] - range[0];
    const analytic = (L - nPruned) * nLayer(intermediate, heads, kvHeads) +
      nPruned * nLayer(kept.intermediate, kept.kvHeads * (heads / kvHeads), kept.kvHeads) + V * d + d;
    assert.equal(model.numParameters().total, L * nLayer(intermediate, heads, kvHeads) + V * d + d);
    assert.equal(small.numParameters().total, analytic);
    assert.equal(analytic, 3_542_208);

    const base = (await perplexity(model, EVAL, { blockSize: 128 })).perplexity;
    const pruned = (await perplexity(small, EVAL, { blockSize: 128 })).perplexity;
    assert.ok(Number.isFinite(base) && Number.isFinite(pruned), `base ${base}, pruned ${pruned}`);
    // Two of eight layers at half width: the model still predicts far better than uniform (4096).
    assert.ok(pruned < 2 * base, `pruned perplexity ${pruned} vs base ${base}`);
  },
);

testOnDevices(
  "on brown-dense layers [1, 7), L2 and activation-aware plans beat random plans",
  async (device) => {
    using model = await loadModel(`${MODELS}brown-dense`, { device });
    const options = { ratio: 0.5, layers: [1, 7] as [number, number] };
    const dims = planDimsOf(model.config);
    const random: number[] = [];
    for (const seed of [0, 1, 2]) random.push(await pplOf(model, randomPlan(dims, { ...options, seed })));
    const l2 = await pplOf(model, await l2Plan(model, options));
    const { norms } = await collectInputNorms(model, CALIBRATION);
    const act = await pplOf(model, await activationPlan(model, norms, options));
    // Measured on these 512 ids (CPU): random 173.8–177.6 over 5 seeds, L2 168.8, activation 168.6.
    assert.ok(l2 < Math.min(...random), `L2 ${l2} does not beat random ${random}`);
    assert.ok(act < Math.min(...random), `activation ${act} does not beat random ${random}`);
  },
);
