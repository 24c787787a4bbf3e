/**
 * Trains the tiny LM of `../_tiny_lm.ts` into a run folder; the resume test runs it as a
 * subprocess, kills it after a checkpoint and runs it again.
 *
 *   deno run -A test/lora/_fixtures/train_tiny.ts <runDir> <totalSteps> <checkpointEvery> [sleepMs]
 * @module
 */
import { createDevice } from "../../../src/device/create_device.ts";
import { Trainer } from "../../../src/lora/trainer.ts";
import { tinyBlocks, tinyLm } from "../_tiny_lm.ts";

if (import.meta.main) await main();

async function main(): Promise<void> {
  const [runDir, totalSteps, checkpointEvery, sleepMs = "0"] = Deno.args;
  const device = await createDevice({ backend: "cpu" });
  const lm = tinyLm(device);
  using trainer = new Trainer(lm.task, {
    optimizer: { lr: 0.05, weightDecay: 0.01 },
    schedule: { totalSteps: Number(totalSteps), warmupSteps: 2, minLr: 0.005 },
    batch: 2,
    accumulation: 2,
    maxGradNorm: 0.5,
    evalEvery: 4,
    checkpointEvery: Number(checkpointEvery),
    runDir,
    seed: 7,
    progress: true, // lines on stderr (not a terminal): the resumed run says where it resumed from
  });
  const data = tinyBlocks(24, 9, 3);
  const evalData = tinyBlocks(4, 9, 4);
  await trainer.fit(data, {
    evalData,
    onStep: () => Number(sleepMs) > 0 ? new Promise((r) => setTimeout(r, Number(sleepMs))) : undefined,
  });
  console.log("done");
}
