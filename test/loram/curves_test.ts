import assert from "node:assert/strict";
import { MetricLog } from "../../src/metrics/metric_log.ts";
import { trainingCurveRows, trainingCurvesFigure } from "../../src/loram/curves.ts";

Deno.test("training curves: the eval rows of each run's log, one Plotly line per run", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry-loram-curves-" });
  try {
    const paths: string[] = [];
    for (const [i, id] of ["a", "b"].entries()) {
      const log = new MetricLog({ runId: id });
      for (let step = 1; step <= 5; step++) {
        log.log({ step, split: "train", loss: 6 - step });
        if (step % 2 === 1) log.log({ step, split: "eval", eval_loss: 5, eval_ppl: 100 * (i + 1) - step });
      }
      paths.push(`${await log.save(dir)}/metrics.arrow`);
    }
    const rows = [
      ...(await trainingCurveRows("LoRAM-Rand", paths[0])),
      ...(await trainingCurveRows("large + LoRA", paths[1])),
    ];
    assert.deepEqual(rows.map((r) => [r.run, r.step, r.eval_ppl]), [
      ["LoRAM-Rand", 1, 99],
      ["LoRAM-Rand", 3, 97],
      ["LoRAM-Rand", 5, 95],
      ["large + LoRA", 1, 199],
      ["large + LoRA", 3, 197],
      ["large + LoRA", 5, 195],
    ]);
    const fig = trainingCurvesFigure(rows);
    assert.deepEqual(fig.data.map((t) => [t.name, t.x, t.y]), [
      ["LoRAM-Rand", [1, 3, 5], [99, 97, 95]],
      ["large + LoRA", [1, 3, 5], [199, 197, 195]],
    ]);
    assert.equal((fig.layout.title as { text: string }).text, "in-domain eval perplexity");
    // A log without eval rows (evalEvery 0) has no curve; a missing file is an error.
    const train = new MetricLog({ runId: "c" }).log({ step: 1, split: "train", loss: 1 });
    assert.deepEqual(await trainingCurveRows("x", `${await train.save(dir)}/metrics.arrow`), []);
    await assert.rejects(() => trainingCurveRows("x", `${dir}/none.arrow`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
