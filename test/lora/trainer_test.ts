import assert from "node:assert/strict";
import { join } from "node:path";
import type { Device } from "../../src/device/device.ts";
import { ConfigError, TrainingDivergedError } from "../../src/errors.ts";
import { SafetensorsFile } from "../../src/io/safetensors.ts";
import { accumulateGradients } from "../../src/lora/accumulate_gradients.ts";
import { listCheckpoints } from "../../src/lora/checkpoint.ts";
import { Trainer } from "../../src/lora/trainer.ts";
import type { TrainerOptions } from "../../src/lora/trainer_config.ts";
import { loadRun } from "../../src/metrics/run_dir.ts";
import { GradAccumulator } from "../../src/optim/grad_accumulator.ts";
import { assertClose, testOnDevices } from "../_helpers.ts";
import { tinyBlocks, tinyLm } from "./_tiny_lm.ts";

const DATA = tinyBlocks(32, 9, 3);
const EVAL = tinyBlocks(6, 9, 4);

function options(runDir: string, extra: Partial<TrainerOptions> = {}): TrainerOptions {
  return {
    optimizer: { lr: 0.05, weightDecay: 0 },
    schedule: { totalSteps: 12, warmupSteps: 2 },
    batch: 2,
    accumulation: 2,
    runDir,
    progress: false,
    ...extra,
  };
}

/** Runs `fn` with a fresh tiny LM and temp run folder, cleaning both up. */
async function withRun<T>(
  device: Device,
  fn: (lm: ReturnType<typeof tinyLm>, runDir: string) => Promise<T>,
  lmOptions: Parameters<typeof tinyLm>[1] = {},
): Promise<T> {
  const lm = tinyLm(device, lmOptions);
  const runDir = join(await Deno.makeTempDir(), "run");
  try {
    return await fn(lm, runDir);
  } finally {
    lm.dispose();
    await Deno.remove(join(runDir, ".."), { recursive: true });
  }
}

function trainLosses(rows: Record<string, unknown>[]): number[] {
  return rows.filter((r) => r.split === "train").map((r) => r.loss as number);
}

testOnDevices(
  "Trainer.fit lowers the loss and writes metrics.arrow, config.json and eval rows",
  async (dev) => {
    await withRun(dev, async (lm, runDir) => {
      using trainer = new Trainer(lm.task, options(runDir, { schedule: { totalSteps: 30 }, evalEvery: 10 }));
      const seen: number[] = [];
      const result = await trainer.fit(DATA, { evalData: EVAL, onStep: (r) => void seen.push(r.step) });
      assert.deepEqual(seen, Array.from({ length: 30 }, (_, i) => i));
      const losses = trainLosses(result.log.toJSON());
      assert.equal(losses.length, 30);
      assert.ok(losses[29] < 0.8 * losses[0], `loss ${losses[0]} -> ${losses[29]}`);
      const run = await loadRun(runDir);
      assert.equal(run.table.numRows, 30 + 4); // train rows + eval at 0, 10, 20, 30
      assert.equal((run.config as { runDir: string }).runDir, runDir);
      const names = run.table.schema.names;
      for (
        const c of [
          "step",
          "loss",
          "lr",
          "grad_norm",
          "tokens",
          "tokens_per_s",
          "elapsed_s",
          "mem_lora_peak_bytes",
        ]
      ) {
        assert.ok(names.includes(c), `column ${c} in ${names}`);
      }
      const evals = result.log.toJSON().filter((r) => r.split === "eval");
      assert.deepEqual(evals.map((r) => r.step), [0, 10, 20, 30]);
      for (const r of evals) {
        assertClose([r.eval_ppl as number], [Math.exp(r.eval_loss as number)], { rtol: 1e-12 });
      }
      assert.ok((evals[3].eval_loss as number) < (evals[0].eval_loss as number));
      assert.equal(result.evalLoss, evals[3].eval_loss);
      assert.ok(result.checkpoint?.endsWith("step-000030"));
    });
  },
);

testOnDevices(
  "accumulateGradients: 2 micro-batches of b give the gradient of 1 micro-batch of 2b",
  async (dev) => {
    const lm = tinyLm(dev);
    try {
      const grads = async (micro: Int32Array[][]) => {
        using acc = new GradAccumulator();
        const r = await accumulateGradients(lm.task, micro, { accumulator: acc });
        const out: Record<string, Float32Array> = {};
        for (const { name, grad } of acc.grads()) {
          out[name] = (await grad.toArray() as Float32Array).map((g) => g * r.gradScale);
        }
        return { ...r, out };
      };
      const split = await grads([DATA.slice(0, 2), DATA.slice(2, 4)]);
      const whole = await grads([DATA.slice(0, 4)]);
      assert.equal(split.tokens, whole.tokens);
      assertClose([split.loss], [whole.loss], { rtol: 1e-6, what: "loss" });
      for (const name of Object.keys(whole.out)) {
        assertClose(split.out[name], whole.out[name], { rtol: 1e-5, atol: 1e-7, what: name });
      }
    } finally {
      lm.dispose();
    }
  },
);

testOnDevices("Trainer: batch 2 × accumulation 2 trains like batch 4 × accumulation 1", async (dev) => {
  const run = (batch: number, accumulation: number) =>
    withRun(dev, async (lm, runDir) => {
      using trainer = new Trainer(lm.task, options(runDir, { batch, accumulation }));
      const rows = (await trainer.fit(DATA)).log.toJSON();
      return { rows, emb: await lm.emb.toArray() as Float32Array };
    });
  const a = await run(2, 2);
  const b = await run(4, 1);
  assertClose(trainLosses(a.rows), trainLosses(b.rows), { rtol: 1e-5, what: "losses" });
  const norms = (rows: Record<string, unknown>[]) => rows.map((r) => r.grad_norm as number);
  assertClose(norms(a.rows), norms(b.rows), { rtol: 1e-4, what: "grad norms" });
  assertClose(a.emb, b.emb, { rtol: 1e-3, atol: 1e-5, what: "embedding after training" });
});

testOnDevices(
  "Trainer reports clipping: clip_scale = maxGradNorm / grad_norm when clipped, 1 when off",
  async (dev) => {
    for (const maxGradNorm of [1e-3, null]) {
      await withRun(dev, async (lm, runDir) => {
        using trainer = new Trainer(lm.task, options(runDir, { maxGradNorm, schedule: { totalSteps: 3 } }));
        const rows = (await trainer.fit(DATA)).log.toJSON();
        for (const r of rows) {
          const want = maxGradNorm === null ? 1 : maxGradNorm / ((r.grad_norm as number) + 1e-6);
          assertClose([r.clip_scale as number], [want], { rtol: 1e-9, what: `clip_scale at ${maxGradNorm}` });
        }
      });
    }
  },
);

testOnDevices(
  "Trainer checkpoints are valid safetensors, keep the newest N and resume exactly",
  async (dev) => {
    const full = await withRun(dev, async (lm, runDir) => {
      using trainer = new Trainer(lm.task, options(runDir, { checkpointEvery: 3, keepCheckpoints: 2 }));
      const rows = (await trainer.fit(DATA, { evalData: EVAL })).log.toJSON();
      const kept = await listCheckpoints(runDir);
      assert.deepEqual(kept.map((c) => c.step), [9, 12]);
      assert.equal(await Deno.readTextFile(join(runDir, "checkpoints", "latest")), "step-000012\n");
      using params = await SafetensorsFile.open(join(kept[1].path, "trainable.safetensors"));
      assert.deepEqual(params.names.sort(), ["lm_head.weight", "model.embed_tokens.weight"]);
      assert.deepEqual(await params.readF32("lm_head.weight"), await lm.head.toArray());
      using opt = await SafetensorsFile.open(join(kept[1].path, "optimizer.safetensors"));
      assert.ok(
        opt.names.includes("lm_head.weight.exp_avg") && opt.names.includes("lm_head.weight.exp_avg_sq"),
      );
      assert.deepEqual(JSON.parse(opt.metadata["ferry.adamw"]).steps, {
        "lm_head.weight": 12,
        "model.embed_tokens.weight": 12,
      });
      const state = JSON.parse(await Deno.readTextFile(join(kept[1].path, "trainer_state.json")));
      assert.equal(state.step, 12);
      assert.equal(state.microBatch, 24);
      return rows;
    });
    // Interrupted at step 7 (after the step-6 checkpoint), then resumed by a fresh trainer and model.
    const resumed = await withRun(dev, async (lm, runDir) => {
      {
        using trainer = new Trainer(lm.task, options(runDir, { checkpointEvery: 3 }));
        await assert.rejects(
          trainer.fit(DATA, {
            evalData: EVAL,
            onStep: (r) => {
              if (r.step === 7) throw new Error("interrupted");
            },
          }),
          /interrupted/,
        );
      }
      const lm2 = tinyLm(dev);
      try {
        using trainer = new Trainer(lm2.task, options(runDir, { checkpointEvery: 3 }));
        const result = await trainer.fit(DATA, { evalData: EVAL });
        assert.ok(result.resumedFrom?.endsWith("step-000006"));
        return result.log.toJSON();
      } finally {
        lm2.dispose();
      }
    });
    assert.deepEqual(trainLosses(resumed), trainLosses(full));
    const evalLosses = (rows: Record<string, unknown>[]) =>
      rows.filter((r) => r.split === "eval").map((r) => r.eval_loss);
    assert.deepEqual(evalLosses(resumed), evalLosses(full));
  },
);

testOnDevices(
  "Trainer stops on a NaN loss with TrainingDivergedError and keeps the last good checkpoint",
  async (dev) => {
    // accumulation 2: loss call 10 is step 5's first micro-batch.
    await withRun(dev, async (lm, runDir) => {
      using trainer = new Trainer(lm.task, options(runDir, { checkpointEvery: 2 }));
      const err = await trainer.fit(DATA).then(() => null, (e) => e);
      assert.ok(err instanceof TrainingDivergedError, String(err));
      assert.equal(err.step, 5);
      assert.equal(err.what, "loss");
      assert.ok(Number.isNaN(err.value));
      assert.ok(err.checkpoint?.endsWith("step-000004"), String(err.checkpoint));
      assert.match(
        err.message,
        /^Training diverged at step 5: the loss is NaN .*Last good checkpoint: .*step-000004/,
      );
      assert.deepEqual((await listCheckpoints(runDir)).map((c) => c.step), [2, 4]);
      for (const t of [lm.emb, lm.head]) assert.ok((await t.toArray()).every(Number.isFinite));
      const rows = (await loadRun(runDir)).table.toArray().map((r) => r.toJSON());
      assert.equal(rows.at(-1)!.step, 5);
      assert.ok(Number.isNaN(rows.at(-1)!.loss));
    }, { nanFromCall: 10 });
  },
);

testOnDevices(
  "Trainer refuses to mix runs: resume off over checkpoints, or a changed data layout",
  async (dev) => {
    await withRun(dev, async (lm, runDir) => {
      {
        using trainer = new Trainer(lm.task, options(runDir, { schedule: { totalSteps: 2 } }));
        await trainer.fit(DATA);
      }
      using fresh = new Trainer(lm.task, options(runDir, { resume: false }));
      await assert.rejects(fresh.fit(DATA), /already holds checkpoints \(step-000002\); pass resume: true/);
      using other = new Trainer(lm.task, options(runDir, { batch: 4 }));
      await assert.rejects(
        other.fit(DATA),
        (e) => e instanceof RangeError && /batch 2 there, 4 now/.test(e.message),
      );
    });
  },
);

Deno.test("Trainer config: unknown keys get a did-you-mean ConfigError; cross-field rules", () => {
  const task = { parameters: () => new Map(), loss: () => ({}) as never };
  assert.throws(
    () => new Trainer(task, { schedule: { totalSteps: 10 }, acumulation: 4 } as TrainerOptions),
    (e) =>
      e instanceof ConfigError && /acumulation: unknown key .*did you mean "accumulation"\?/.test(e.message),
  );
  assert.throws(
    () =>
      new Trainer(task, { schedule: { totalSteps: 10 }, optimizer: { learningRate: 1 } } as TrainerOptions),
    (e) => e instanceof ConfigError && /optimizer\.learningRate/.test(e.message),
  );
  assert.throws(
    () => new Trainer(task, { schedule: { totalSteps: 10, warmupSteps: 20 } }),
    (e) => e instanceof ConfigError && /schedule\.warmupSteps: must be at most totalSteps/.test(e.message),
  );
  assert.throws(() => new Trainer(task, {} as TrainerOptions), ConfigError); // totalSteps is required
  const t = new Trainer(task, { schedule: { totalSteps: 10 } });
  assert.equal(t.config.batch, 1);
  assert.equal(t.config.maxGradNorm, 1);
  assert.match(t.runDir, /^runs\/\d{8}-\d{6}-[0-9a-f]{4}$/);
});
