import assert from "node:assert/strict";
import { join } from "node:path";
import { FormatError } from "../../src/errors.ts";
import {
  checkpointName,
  latestCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  removeStaleTemporaries,
  saveCheckpoint,
} from "../../src/lora/checkpoint.ts";
import { AdamW } from "../../src/optim/adamw.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { testOnDevices } from "../_helpers.ts";

testOnDevices(
  "saveCheckpoint/loadCheckpoint round-trip params in place and AdamW state exactly",
  async (dev) => {
    const runDir = await Deno.makeTempDir();
    try {
      const w = Tensor.fromArray(dev, [1, -2, 3, 0.5], [2, 2], { category: "lora" }); // [2, 2]
      const opt = new AdamW({ lr: 0.1 });
      for (let i = 0; i < 3; i++) {
        using g = Tensor.fromArray(dev, [0.1 * i, 1, -1, 2], [2, 2]);
        opt.step([{ name: "w", value: w, grad: g }]);
      }
      const path = await saveCheckpoint(runDir, {
        params: new Map([["w", w]]),
        optimizer: opt,
        state: { step: 3, note: "x" },
      });
      assert.equal(path, join(runDir, "checkpoints", "step-000003"));

      using w2 = Tensor.zeros(dev, [2, 2], { category: "lora" });
      using opt2 = new AdamW({ lr: 0.1 });
      const state = await loadCheckpoint(path, { params: new Map([["w", w2]]), optimizer: opt2 });
      assert.deepEqual(state, { step: 3, note: "x" });
      assert.deepEqual(await w2.toArray(), await w.toArray());
      const [a, b] = [await opt.stateDict(), await opt2.stateDict()];
      assert.deepEqual(b.state.w, a.state.w);

      using wrong = Tensor.zeros(dev, [4]);
      await assert.rejects(
        loadCheckpoint(path, { params: new Map([["w", wrong]]), optimizer: opt2 }),
        (e) =>
          e instanceof FormatError && /"w" was saved with shape \[2,2\], the task's is \[4\]/.test(e.message),
      );
      await assert.rejects(
        loadCheckpoint(path, { params: new Map([["v", w2]]), optimizer: opt2 }),
        (e) =>
          e instanceof FormatError && /holds the tensors \[w\] but the task trains \[v\]/.test(e.message),
      );
      w.dispose();
      opt.dispose();
    } finally {
      await Deno.remove(runDir, { recursive: true });
    }
  },
);

testOnDevices(
  "saveCheckpoint replaces a folder of the same step, prunes, and ignores temporaries",
  async (dev) => {
    const runDir = await Deno.makeTempDir();
    try {
      using w = Tensor.fromArray(dev, [1, 2], [2]);
      using opt = new AdamW();
      const params = new Map([["w", w]]);
      for (const step of [1, 2, 3, 3]) {
        await saveCheckpoint(runDir, {
          params,
          optimizer: opt,
          state: { step },
        }, { keep: 2 });
      }
      assert.deepEqual((await listCheckpoints(runDir)).map((c) => c.step), [2, 3]);
      // A crash mid-save leaves a temporary folder; a crash before the pointer update leaves `latest` stale.
      await Deno.mkdir(join(runDir, "checkpoints", ".tmp-step-000009-deadbeef"));
      await Deno.writeTextFile(join(runDir, "checkpoints", "latest"), "step-000002\n");
      assert.equal(await latestCheckpoint(runDir), join(runDir, "checkpoints", "step-000003"));
      await removeStaleTemporaries(runDir);
      const names = [];
      for await (const e of Deno.readDir(join(runDir, "checkpoints"))) names.push(e.name);
      assert.deepEqual(names.sort(), ["latest", "step-000002", "step-000003"]);
      assert.equal(await latestCheckpoint(join(runDir, "nope")), null);
      assert.equal(checkpointName(12), "step-000012");
      assert.throws(() => checkpointName(-1), RangeError);
    } finally {
      await Deno.remove(runDir, { recursive: true });
    }
  },
);
