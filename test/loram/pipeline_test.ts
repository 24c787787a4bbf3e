/**
 * `loramRun` on the tiny golden Llama: every artefact is written, the ledger's weight bytes while
 * training equal the formula, the merged folder is the original plus the recovered adapter, a run
 * killed mid-training resumes to the same adapter bit for bit, and bad input writes nothing.
 */
import assert from "node:assert/strict";
import { createPruningPlan, planFromJSON, savePlan } from "../../src/compressors/prune/pruning_plan.ts";
import { createDevice } from "../../src/device/create_device.ts";
import { loadAdapter } from "../../src/lora/peft_io.ts";
import * as arrow from "apache-arrow";
import { pairedRatio } from "../../src/loram/eval.ts";
import { type LoramData, type LoramEval, loramRun } from "../../src/loram/pipeline.ts";
import { ablationRows, centralClaim, markdownTable, qualityRows } from "../../src/loram/tables.ts";
import type { LoramRunOptions } from "../../src/loram/run_config.ts";
import { loadModel } from "../../src/models/load.ts";
import { documentPerplexity, perplexity } from "../../src/models/perplexity.ts";
import { rng } from "../_helpers.ts";

const FIXTURE = "test/fixtures/models/llama-gqa-tied-f32"; // L 2, C 32, F 64, H 4, Hkv 2, D 8, V 128
const device = await createDevice({ backend: "cpu" });

function blocks(n: number, len: number, seed: number): Int32Array[] {
  const u = rng(seed);
  // A learnable pattern: id t+1 follows id t (mod 64) most of the time.
  return Array.from({ length: n }, () => {
    const b = new Int32Array(len);
    b[0] = Math.floor(u() * 64);
    for (let i = 1; i < len; i++) b[i] = u() < 0.8 ? (b[i - 1] + 1) % 64 : Math.floor(u() * 128);
    return b;
  });
}
/** Held-out documents in-domain and SOTU-like (8 of 17 ids each); a stream out-of-domain (no interval). */
const DATA: LoramData = {
  align: blocks(8, 17, 1),
  train: blocks(16, 17, 2),
  evalIn: blocks(8, 17, 3),
  evalOut: Int32Array.from(blocks(8, 17, 4).flatMap((b) => [...b.map((v) => (v * 7) % 128)])),
  evalSotu: blocks(8, 17, 5).map((b) => b.map((v) => (v * 5 + 3) % 128)),
};
/** The same data without the second out-of-domain stream. */
const { evalSotu: _, ...NO_SOTU } = DATA;
const options = (out: string, extra: Partial<LoramRunOptions> = {}): LoramRunOptions => ({
  model: FIXTURE,
  out,
  method: "rand",
  ratio: 0.5,
  layers: [1, 2],
  train: { steps: 4, batch: 2, checkpointEvery: 2, lr: 5e-3 },
  evalBlock: 16,
  ...extra,
});

Deno.test("loramRun: writes every artefact; ledger weight bytes equal the formula; merged = original + recovered adapter", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry-loram-run-" });
  try {
    const out = `${dir}/run`;
    const r = await loramRun(device, options(out, { align: { steps: 2, batch: 2 } }), DATA, {
      progress: false,
    });
    for (
      const f of [
        "plan.json",
        "pruned/config.json",
        "pruned-adapter/adapter_model.safetensors",
        "adapter/adapter_config.json",
        "merged/model.safetensors",
        "eval.json",
        "training_log.arrow",
      ]
    ) {
      assert.ok((await Deno.stat(`${out}/${f}`)).isFile, f);
    }
    const plan = planFromJSON(JSON.parse(await Deno.readTextFile(`${out}/plan.json`)));
    assert.deepEqual(plan.layers.map((l) => [l.index, l.mlpKeep.length, l.kvHeadKeep.length]), [[1, 32, 1]]);
    assert.equal(r.params.pruned_params, r.params.params - (2 * 16 * 32 + 2 * 8 * 32 + 3 * 32 * 32)); // q, o: 16 of 32; k, v: 8 of 16; MLP: 32 of 64
    assert.equal(r.params.measured_weight_bytes, r.params.formula_weight_bytes);
    assert.equal(r.params.formula_weight_bytes, 4 * r.params.pruned_params);
    assert.ok(r.ppl.pruned_aligned !== null);
    assert.ok(r.train.tokens === 4 * 2 * 16 && r.train.trainable_params > 0);
    // The adapters: pruned shapes in pruned-adapter/, original shapes in adapter/.
    const small = await loadAdapter(`${out}/pruned-adapter`);
    const full = await loadAdapter(`${out}/adapter`);
    assert.equal(small.tensors.get("model.layers.1.mlp.down_proj")!.inFeatures, 32);
    assert.equal(full.tensors.get("model.layers.1.mlp.down_proj")!.inFeatures, 64);
    assert.equal(full.config.baseModelNameOrPath, FIXTURE);
    // merged/ is what eval.json measured: documents one by one in-domain and SOTU, the stream out-of-domain.
    using merged = await loadModel(`${out}/merged`, { device });
    const byDoc = await documentPerplexity(merged, DATA.evalIn as Int32Array[], { blockSize: 16 });
    assert.equal(byDoc.interval.perplexity, r.ppl.loram.in_domain);
    assert.deepEqual(r.ppl.loram.documents!.in_domain!.scores, byDoc.documents);
    assert.deepEqual([r.ppl.loram.documents!.in_domain!.lo, r.ppl.loram.documents!.in_domain!.hi], [
      byDoc.interval.lo,
      byDoc.interval.hi,
    ]);
    const sotu = await documentPerplexity(merged, DATA.evalSotu as Int32Array[], { blockSize: 16 });
    assert.equal(sotu.interval.perplexity, r.ppl.loram.out_of_domain_sotu);
    const stream = await perplexity(merged, (DATA.evalOut as Int32Array).subarray(0, 4096), {
      blockSize: 16,
    });
    assert.equal(stream.perplexity, r.ppl.loram.out_of_domain);
    assert.equal(r.ppl.loram.documents!.out_of_domain, undefined);
    for (const row of [r.ppl.original, r.ppl.pruned, r.ppl.pruned_aligned!, r.ppl.pruned_lora]) {
      assert.ok(row.out_of_domain_sotu !== null && row.out_of_domain_sotu > 1);
      assert.equal(row.documents!.in_domain!.scores.length, 8);
    }
    // A finished run returns its eval.json, but not for other held-out documents (the pairs would mix).
    assert.deepEqual(
      await loramRun(device, options(out, { align: { steps: 2, batch: 2 } }), DATA, { progress: false }),
      JSON.parse(await Deno.readTextFile(`${out}/eval.json`)),
    );
    const fewer = { ...DATA, evalIn: (DATA.evalIn as Int32Array[]).slice(0, 6) };
    await assert.rejects(
      () => loramRun(device, options(out, { align: { steps: 2, batch: 2 } }), fewer, { progress: false }),
      /perplexities were scored on other held-out documents \(.*held_out\.json differs\)/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loramRun: a run killed during LoRA training resumes to the same adapter", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry-loram-resume-" });
  try {
    const whole = await loramRun(
      device,
      options(`${dir}/whole`, { method: "unst", criterion: "magnitude" }),
      NO_SOTU,
      { progress: false },
    );
    assert.equal(whole.ppl.loram.out_of_domain_sotu, null); // no SOTU stream: not measured
    const killed = options(`${dir}/killed`, { method: "unst", criterion: "magnitude" });
    await assert.rejects(
      () =>
        loramRun(device, killed, NO_SOTU, {
          progress: false,
          onStep: (s) => {
            if (s === 2) throw new Error("killed");
          },
        }),
      /killed/,
    );
    assert.ok(!(await exists(`${dir}/killed/pruned-adapter`)));
    const r = await loramRun(device, killed, NO_SOTU, { progress: false });
    assert.equal(r.train.steps, 4);
    const a = await loadAdapter(`${dir}/whole/adapter`);
    const b = await loadAdapter(`${dir}/killed/adapter`);
    for (const [m, f] of a.tensors) {
      assert.deepEqual(b.tensors.get(m)!.A, f.A, m);
      assert.deepEqual(b.tensors.get(m)!.B, f.B, m);
    }
    assert.equal(r.sparsity, 0.5);
    assert.equal(r.params.saves_memory, false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loramRun: QLoRAM trains on NF4 projections; the ledger holds the NF4 bytes the formula gives", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry-qloram-run-" });
  try {
    const r = await loramRun(
      device,
      options(`${dir}/q`, { nf4: true, train: { steps: 2, batch: 2 } }),
      DATA,
      { progress: false },
    );
    const f = await loramRun(device, options(`${dir}/f`, { train: { steps: 2, batch: 2 } }), DATA, {
      progress: false,
    });
    assert.equal(r.params.measured_weight_bytes + r.params.host_offset_bytes, r.params.formula_weight_bytes);
    assert.equal(r.params.host_offset_bytes, 4 * 14);
    assert.ok(r.params.measured_weight_bytes < f.params.measured_weight_bytes);
    // Same plan and adapter init; the NF4 base changes the training a little, not the shapes.
    const a = await loadAdapter(`${dir}/q/adapter`);
    assert.equal(a.tensors.get("model.layers.1.mlp.down_proj")!.inFeatures, 64);
    assert.ok(Number.isFinite(r.ppl.loram.in_domain) && Number.isFinite(r.ppl.pruned_lora.in_domain));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loramRun → tables: two 2-step runs give rows with paired intervals, a claim that follows them, an Arrow table", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry-loram-tables-" });
  try {
    const runs: LoramEval[] = [];
    for (const nf4 of [false, true]) {
      const o = options(`${dir}/${nf4 ? "q" : "f"}`, { nf4, train: { steps: 2, batch: 2 } });
      runs.push(await loramRun(device, o, DATA, { progress: false }));
    }
    // The original is the same model on the same documents in both runs: ratio 1, a degenerate interval.
    const same = pairedRatio(runs[1].ppl.original, runs[0].ppl.original, "in_domain")!;
    assert.deepEqual([same.value, same.lo, same.hi, same.documents], [1, 1, 1, 8]);
    const quality = qualityRows(runs);
    const loram = quality.filter((r) => String(r.model).endsWith("(infer large)"));
    assert.deepEqual(loram.map((r) => r.model), ["LoRAM-Rand (infer large)", "QLoRAM-Rand (infer large)"]);
    for (const [i, row] of loram.entries()) {
      const vs = pairedRatio(runs[i].ppl.loram, runs[i].ppl.pruned_lora, "in_domain")!;
      assert.equal(row.ratio_vs_small_lora_in, Math.round(vs.value * 1e4) / 1e4);
      const { ratio_vs_large_in: v, ratio_vs_large_in_lo: lo, ratio_vs_large_in_hi: hi } = row;
      assert.ok(typeof v === "number" && (lo as number) <= v && v <= (hi as number), `${lo} ${v} ${hi}`);
      assert.ok((row.in_domain_ppl_lo as number) <= (row.in_domain_ppl as number));
      const claim = centralClaim(runs[i]);
      assert.equal(claim.holds, claim.vs_large!.hi < 1 && claim.vs_small_lora!.hi < 1);
      assert.match(claim.text, /ratio \d\.\d{3}, 95% CI \d\.\d{3}–\d\.\d{3}/);
    }
    // The out-of-domain stream has no interval; the ablation carries the same pairs as the quality table.
    const ablation = ablationRows(runs);
    assert.deepEqual(
      ablation.map((r) => r.ratio_vs_small_lora_in),
      loram.map((r) => r.ratio_vs_small_lora_in),
    );
    const table = arrow.tableFromJSON(quality as Record<string, unknown>[]);
    assert.equal(table.numRows, 7);
    assert.ok(table.schema.fields.some((f) => f.name === "ratio_vs_small_lora_in_hi"));
    assert.match(markdownTable(ablation), /ratio_vs_large_in_hi \|\n/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loramRun: bad input is refused before anything is written", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry-loram-bad-" });
  try {
    const out = `${dir}/run`;
    await assert.rejects(() => loramRun(device, options(out, { ratio: 1 }), DATA), /ratio/);
    await assert.rejects(
      () => loramRun(device, options(out, { layers: [1, 3] }), DATA),
      /outside the model's 2 layers/,
    );
    await assert.rejects(
      () =>
        loramRun(
          device,
          options(out, { model: "test/fixtures/models/mixtral-top2-f32", layers: [0, 1] }),
          DATA,
        ),
      /only dense Llama-family models/,
    );
    const other = createPruningPlan({
      method: "random",
      ratio: 0.5,
      dims: { layers: 2, hidden: 32, intermediate: 48, heads: 4, kvHeads: 2, headDim: 8 },
      layers: [],
    });
    await savePlan(other, `${dir}/other.json`);
    await assert.rejects(
      () => loramRun(device, options(out), DATA, { planFile: `${dir}/other.json` }),
      /the plan is for another model: intermediate 48 \(model: 64\)/,
    );
    assert.ok(!(await exists(out)), "nothing written");
    await Deno.mkdir(out);
    await Deno.writeTextFile(`${out}/loram_config.json`, "{}");
    await assert.rejects(() => loramRun(device, options(out), DATA), /holds a run with other settings/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function exists(p: string): Promise<boolean> {
  try {
    await Deno.stat(p);
    return true;
  } catch {
    return false;
  }
}
