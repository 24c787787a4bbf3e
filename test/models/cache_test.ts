/**
 * The KV cache path: prefill + decode (and chunked prefill) against full-sequence recomputation,
 * one submit per step (WebGPU) or one upload and one readback per step (CPU), a ledger that does not grow per step, and the errors a cache can raise.
 */
import assert from "node:assert/strict";
import { loadModel } from "../../src/models/load.ts";
import type { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, testOnDevices } from "../_helpers.ts";
import { fixture, FIXTURES } from "./_fixtures.ts";

/** Rows of `[T, N]` tensors, read back and concatenated. */
async function rows(parts: Tensor[]): Promise<Float32Array> {
  const arrays = await Promise.all(parts.map(async (t) => await t.toArray() as Float32Array));
  for (const t of parts) t.dispose();
  const out = new Float32Array(arrays.reduce((n, a) => n + a.length, 0));
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}

for (const { name, dir, golden } of FIXTURES) {
  testOnDevices(`CausalLM(${name}) through the cache equals full-sequence recomputation`, async (device) => {
    using model = await loadModel(dir, { device });
    const ids = Int32Array.from([...golden.inputIds, ...golden.greedy]); // 15 tokens
    const full = model.forward(ids, { collectRouter: true });
    const wantLogits = await rows([full.logits]);
    const wantRouter = await Promise.all((full.routerLogits ?? []).map((t) => rows([t])));
    for (const s of full.selected ?? []) s.dispose();
    // Token by token after a 4-token prefill, then chunks of 5, 3, 2 after a 5-token prefill.
    for (const chunks of [[4, ...new Array(ids.length - 4).fill(1)], [5, 5, 3, 2]]) {
      using cache = model.createCache(ids.length);
      const logits: Tensor[] = [];
      const routers: Tensor[][] = model.moeLayers.map(() => []);
      let at = 0;
      for (const n of chunks) {
        const out = model.forward(ids.subarray(at, at + n), { cache, collectRouter: true });
        logits.push(out.logits);
        out.routerLogits!.forEach((r, j) => routers[j].push(r));
        for (const s of out.selected!) s.dispose();
        at += n;
        assert.equal(cache.position, at);
      }
      const what = `${name} chunks [${chunks.slice(0, 4)}${chunks.length > 4 ? ",..." : ""}]`;
      assertClose(await rows(logits), wantLogits, { rtol: 1e-5, atol: 1e-5, what: `${what} logits` });
      for (const [j, parts] of routers.entries()) {
        assertClose(await rows(parts), wantRouter[j], {
          rtol: 1e-5,
          atol: 1e-5,
          what: `${what} router ${j}`,
        });
      }
    }
  });
}

/**
 * The decode-step contract on each backend. WebGPU: recording a step submits nothing and reading
 * its logits is one submit. The CPU backend has no command stream (it never submits or dispatches);
 * what it guarantees instead is the same host traffic: the step uploads only its token id (one
 * 4-byte upload), reads nothing back while it runs (routing stays in device storage), and reading
 * the logits is the step's only readback, of exactly `[1, vocab]` f32. Both leave the ledger as it was.
 */
testOnDevices(
  "CausalLM decode steps: one submit each on WebGPU, one upload (the id) and one readback (the logits) on the CPU, ledger unchanged",
  async (device) => {
    for (const name of ["llama-gqa-tied-f32", "qwen2-moe-f32"]) {
      using model = await loadModel(fixture(name).dir, { device });
      using cache = model.createCache(32);
      const first = model.forward(Int32Array.of(3, 1, 4), { cache }).logits;
      await first.toArray();
      first.dispose();
      const before = device.ledger.current();
      const kv = device.ledger.current("kv");
      for (let i = 0; i < 5; i++) {
        const start = { ...device.stats };
        const { logits } = model.forward(Int32Array.of(i + 5), { cache });
        const recorded = { ...device.stats };
        await logits.toArray();
        logits.dispose();
        const done = device.stats;
        const what = `${name} step ${i}`;
        assert.equal(recorded.readbacks - start.readbacks, 0, `${what}: readbacks while recording the step`);
        assert.equal(recorded.submits - start.submits, 0, `${what}: submits while recording the step`);
        assert.equal(done.readbacks - start.readbacks, 1, `${what}: readbacks per step`);
        assert.equal(
          done.readbackBytes - start.readbackBytes,
          model.config.vocabSize * 4,
          `${what}: bytes read`,
        );
        if (device.kind === "webgpu") {
          assert.equal(done.submits - start.submits, 1, `${what}: submits per step`);
        } else {
          assert.equal(done.uploads - start.uploads, 1, `${what}: uploads per step (the token id)`);
          assert.equal(done.uploadBytes - start.uploadBytes, 4, `${what}: bytes uploaded per step`);
          assert.equal(
            done.submits + done.dispatches,
            0,
            `${what}: the CPU backend neither submits nor dispatches`,
          );
        }
        assert.equal(device.ledger.current(), before, `${name}: bytes in use after step ${i}`);
      }
      assert.equal(device.ledger.current("kv"), kv);
      assert.equal(kv, model.config.layers * 2 * 32 * model.config.kvHeads * model.config.headDim * 4);
    }
  },
);

testOnDevices("CausalLM.forward rejects bad ids and caches with clear errors", async (device) => {
  using model = await loadModel(fixture("llama-gqa-tied-f32").dir, { device });
  const V = model.config.vocabSize;
  assert.throws(() => model.forward(new Int32Array(0)), /ids is empty/);
  assert.throws(
    () => model.forward(Int32Array.of(1, V)),
    new RegExp(`ids\\[1\\] = ${V} is outside the vocabulary \\(0\\.\\.${V - 1}\\)`),
  );
  assert.throws(() => model.forward([1, -1]), /ids\[1\] = -1 is outside/);
  using cache = model.createCache(4);
  model.forward(Int32Array.of(1, 2, 3), { cache }).logits.dispose();
  assert.throws(
    () => model.forward(Int32Array.of(1, 2), { cache }),
    /the cache holds 4 tokens, 3 are used and 2 more were passed; create the cache with a larger maxSeq/,
  );
  assert.equal(cache.position, 3, "a refused step leaves the cache untouched");
  cache.reset();
  assert.equal(cache.position, 0);
  using other = await loadModel(fixture("qwen3-moe-f32").dir, { device });
  using wrong = other.createCache(8);
  assert.throws(() => model.forward(Int32Array.of(1), { cache: wrong }), /the cache does not fit this model/);
});
