/**
 * A device lost mid-run: `generate` rejects with an `OffloadRunLostError` holding the tokens and
 * counters measured until then, and `offloadBench` turns it into a row that says so.
 * @module
 */
import assert from "node:assert/strict";
import { createDevice } from "../../src/device/create_device.ts";
import { DeviceLostError } from "../../src/errors.ts";
import { offloadBench } from "../../src/moe/bench.ts";
import { OnDemandPolicy } from "../../src/moe/policies/ondemand.ts";
import type { LoadedGroup, PolicyContext } from "../../src/moe/policy.ts";
import { OffloadRunLostError, openOffloadRuntime } from "../../src/moe/runtime.ts";

const MIXTRAL = "test/fixtures/models/mixtral-top2-f32";

/** `ondemand` that destroys the device on its `n`-th load (a device lost mid-decode). */
class LosingPolicy extends OnDemandPolicy {
  #device: PolicyContext["device"] | undefined;
  #loads = 0;
  constructor(readonly n: number) {
    super();
  }
  override setup(ctx: PolicyContext): void {
    this.#device = ctx.device;
    super.setup(ctx);
  }
  override load(layer: number, group: readonly number[]): LoadedGroup {
    if (++this.#loads === this.n) this.#device!.destroy();
    return super.load(layer, group);
  }
}

Deno.test("generate: a device lost mid-decode rejects with what was measured so far", async () => {
  const device = await createDevice({ backend: "cpu" });
  using rt = await openOffloadRuntime(MIXTRAL, {
    device,
    budgetBytes: 2 ** 22,
    policy: new LosingPolicy(7),
    maxSeq: 16,
  });
  const err = await rt.generate([3, 17, 42], { maxNewTokens: 8 }).then(() => undefined, (e) => e);
  assert.ok(err instanceof OffloadRunLostError && err instanceof DeviceLostError, String(err));
  const n = err.partial.tokens.length; // the prefill's loads depend on its routing: lost during decode
  assert.ok(n >= 1 && n < 8, `${n} tokens`);
  assert.ok(err.partial.report.prefillMs > 0 && err.partial.report.prefillBytes > 0);
  assert.ok(err.message.includes(`lost after ${n} generated tokens`));
});

Deno.test("offloadBench: a lost device gives a row with the partial counters and the reason", async () => {
  const bench = await offloadBench(MIXTRAL, {
    budgetBytes: 2 ** 22,
    policies: ["ondemand", () => new LosingPolicy(5)],
    promptTokens: 3,
    tokens: 6,
    backend: "cpu",
  });
  assert.equal(bench.rows[0].error, "");
  assert.match(bench.rows[1].error, /device was lost after \d+ generated tokens/);
  assert.ok(bench.rows[1].fits && bench.rows[1].prefill_s > 0);
});
