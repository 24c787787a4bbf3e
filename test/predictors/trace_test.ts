/** Routing traces: the router logits agree with the selections; the Arrow files round trip. */
import assert from "node:assert/strict";
import { loadModel } from "../../src/models/load.ts";
import { traceMoe } from "../../src/predictors/trace.ts";
import { loadTraces, saveTraces } from "../../src/predictors/trace_io.ts";
import { testOnDevices } from "../_helpers.ts";

testOnDevices("traceMoe: selections are the top-k of the traced logits; Arrow round trip", async (dev) => {
  using model = await loadModel("test/fixtures/models/mixtral-top2-f32", { device: dev });
  const seqs = [Int32Array.of(3, 17, 42, 5, 8), Int32Array.of(9, 1, 4)];
  const traces = await Promise.all(seqs.map((ids) => traceMoe(model, ids)));
  for (const [l, tr] of traces[0]) {
    const E = tr.logits.length / tr.T;
    for (let t = 0; t < tr.T; t++) {
      const row = Array.from(tr.logits.subarray(t * E, (t + 1) * E));
      const top = row.map((v, e) => [v, e]).sort((a, b) => b[0] - a[0] || a[1] - b[1]).slice(0, tr.K).map((
        p,
      ) => p[1]);
      assert.deepEqual(
        Array.from(tr.selected.subarray(t * tr.K, (t + 1) * tr.K)),
        top,
        `layer ${l} token ${t}`,
      );
    }
  }
  const dir = await Deno.makeTempDir();
  try {
    await saveTraces(`${dir}/t.arrow`, traces);
    assert.deepEqual(await loadTraces(`${dir}/t.arrow`), traces);
    await saveTraces(`${dir}/small.arrow`, traces, { includeInput: false });
    const small = await loadTraces(`${dir}/small.arrow`);
    assert.deepEqual([small[1].get(0)!.x.length, small[1].get(0)!.selected], [0, traces[1].get(0)!.selected]);
    await assert.rejects(saveTraces(`${dir}/none.arrow`, []), /there is no traced token/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
