/**
 * generate() and perplexity() on the golden fixtures: greedy decoding with the KV cache
 * reproduces the PyTorch greedy tokens; sampling is seeded; sliding-window perplexity
 * equals a direct computation from one full forward.
 */
import assert from "node:assert/strict";
import { generate, sampleToken } from "../../src/models/generate.ts";
import { mulberry32 } from "../../src/tensor/random.ts";
import { loadModel } from "../../src/models/load.ts";
import { logSoftmaxAt, perplexity } from "../../src/models/perplexity.ts";
import { testOnDevices } from "../_helpers.ts";
import { FIXTURES } from "./_fixtures.ts";

for (
  const { name, dir, golden } of FIXTURES.filter((f) =>
    ["llama-bf16-sharded", "mixtral-top2-f32"].includes(f.name)
  )
) {
  testOnDevices(
    `generate(${name}) greedy equals the PyTorch greedy tokens, one submit per token`,
    async (device) => {
      using model = await loadModel(dir, { device });
      const out = await generate(model, golden.inputIds, { maxNewTokens: golden.greedy.length });
      assert.deepEqual(out.tokens, Array.from(golden.greedy));
      assert.equal(out.stopReason, "length");
      if (device.kind === "webgpu") assert.equal(out.submitsPerToken, 1);
      const stopAt = golden.greedy[3];
      const stopped = await generate(model, golden.inputIds, { maxNewTokens: 8, stop: [stopAt] });
      assert.deepEqual(stopped.tokens, Array.from(golden.greedy.slice(0, golden.greedy.indexOf(stopAt) + 1)));
      assert.equal(stopped.stopReason, "stop");
    },
  );

  testOnDevices(`generate(${name}) sampling is deterministic for a seed`, async (device) => {
    using model = await loadModel(dir, { device });
    const opts = { maxNewTokens: 6, temperature: 1.5, topP: 0.9, seed: 7 };
    const a = await generate(model, golden.inputIds, opts);
    const b = await generate(model, golden.inputIds, opts);
    assert.deepEqual(a.tokens, b.tokens);
  });

  testOnDevices(`perplexity(${name}) sliding windows equal a direct computation`, async (device) => {
    using model = await loadModel(dir, { device });
    const ids = Int32Array.from([...golden.inputIds, ...golden.greedy, ...golden.inputIds]); // 22 tokens
    const { logits } = model.forward(ids);
    const data = await logits.toArray() as Float32Array;
    const v = logits.shape[1];
    logits.dispose();
    let nll = 0;
    for (let j = 1; j < ids.length; j++) nll -= logSoftmaxAt(data, (j - 1) * v, v, ids[j]);
    const full = await perplexity(model, ids, { blockSize: ids.length });
    assert.equal(full.tokens, ids.length - 1);
    assert.ok(Math.abs(full.loss - nll / (ids.length - 1)) < 1e-6);
    // Disjoint windows lose context; overlapping windows with stride 1 score each token once.
    const windows = await perplexity(model, ids, { blockSize: 8, stride: 3 });
    assert.equal(windows.tokens, ids.length - 1);
    assert.ok(Number.isFinite(windows.perplexity) && windows.perplexity > 1);
    const disjoint = await perplexity(model, ids, { blockSize: 8 });
    assert.equal(disjoint.tokens, ids.length - Math.ceil(ids.length / 8));
  });
}

Deno.test("sampleToken: greedy takes the lowest index among ties; top-k 1 is greedy", () => {
  const logits = new Float32Array([0.5, 2, 2, -1]);
  const random = mulberry32(1);
  assert.equal(sampleToken(logits, { temperature: 0, topP: 1, topK: 0, random }), 1);
  for (let i = 0; i < 20; i++) {
    assert.equal(sampleToken(logits, { temperature: 1, topP: 1, topK: 1, random }), 1);
  }
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 4000; i++) counts[sampleToken(logits, { temperature: 1, topP: 1, topK: 0, random })]++;
  const p = [0.5, 2, 2, -1].map(Math.exp);
  const z = p.reduce((s, x) => s + x, 0);
  counts.forEach((c, i) =>
    assert.ok(Math.abs(c / 4000 - p[i] / z) < 0.03, `token ${i}: ${c / 4000} vs ${p[i] / z}`)
  );
  // topP 0.5 keeps only the two tied best tokens.
  for (let i = 0; i < 50; i++) {
    assert.ok([1, 2].includes(sampleToken(logits, { temperature: 1, topP: 0.5, topK: 0, random })));
  }
});

Deno.test("generate and perplexity reject bad options", async () => {
  const fake = {
    device: {} as never,
    forward: () => ({ logits: {} as never }),
    createCache: () => ({ dispose() {} }) as never,
  };
  await assert.rejects(generate(fake, [], { maxNewTokens: 1 }), /the prompt is empty/);
  await assert.rejects(
    generate(fake, [1], { maxNewTokens: -1 }),
    /maxNewTokens must be a non-negative integer/,
  );
  await assert.rejects(generate(fake, [1], { maxNewTokens: 1, topP: 0 }), /topP must be in \(0, 1\]/);
  await assert.rejects(perplexity(fake, [1, 2], { blockSize: 1 }), /blockSize must be an integer >= 2/);
  await assert.rejects(
    perplexity(fake, [1, 2], { blockSize: 4, stride: 5 }),
    /stride must be an integer in \[1, blockSize\]/,
  );
});
