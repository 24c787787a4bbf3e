/** floeCompress: top-k at s = 0 is the dense model (exact up), the packed up path equals HQQ-dequantized weights, bad input. */
import assert from "node:assert/strict";
import { quantize } from "../../src/compressors/quant/quantize.ts";
import type { Device } from "../../src/device/device.ts";
import { HostExperts } from "../../src/moe/host_experts.ts";
import { floeCompress } from "../../src/floe/compress.ts";
import { FloeExperts } from "../../src/floe/floe_experts.ts";
import { loadModel } from "../../src/models/load.ts";
import { asDenseExperts } from "../../src/nn/experts.ts";
import type { SparseMoE } from "../../src/nn/sparse_moe.ts";
import { dequantize } from "../../src/ops/dequantize.ts";
import { assertClose, testOnDevices } from "../_helpers.ts";

const MODELS = ["mixtral-top2-f32", "qwen2-moe-f32", "olmoe-f32"];
const ids = [3, 17, 42, 5, 8, 11, 2];
const load = (dev: Device, name: string) => loadModel(`test/fixtures/models/${name}`, { device: dev });

testOnDevices("FloE top-k at s = 0 with exact up equals the dense model", async (dev) => {
  for (const name of MODELS) {
    using dense = await load(dev, name);
    const want = await dense.forward(ids).logits.toArray() as Float32Array; // [T, V]
    for (const prefill of ["sparse", "dense"] as const) {
      using floe = await floeCompress(await load(dev, name), {
        upBits: 16,
        sparsity: 0,
        mode: "topk",
        denseLayers: [],
        prefill,
      });
      assert.ok(
        floe.moeLayers.every((l) => (floe.layers[l].mlp as SparseMoE).experts instanceof FloeExperts),
      );
      const got = await floe.forward(ids).logits.toArray() as Float32Array;
      assertClose(got, want, { rtol: 1e-4, atol: 1e-4, what: `${name} prefill ${prefill}` });
    }
  }
});

testOnDevices(
  "FloE top-k at s = 0 with 2-bit up equals dense experts over the HQQ-dequantized up",
  async (dev) => {
    using ref = await load(dev, "mixtral-top2-f32");
    for (const l of ref.moeLayers.slice(1)) {
      const experts = asDenseExperts((ref.layers[l].mlp as SparseMoE).experts, "test");
      const [E, F, C] = experts.upProj.shape;
      const up = await experts.upProj.toArray() as Float32Array;
      for (let e = 0; e < E; e++) {
        const { Tensor } = await import("../../src/tensor/tensor.ts");
        using w = Tensor.fromArray(dev, up.slice(e * F * C, (e + 1) * F * C), [F, C]);
        const q = await quantize(w, { method: "hqq", bits: 2, groupSize: 16 });
        using dq = dequantize(q);
        up.set(await dq.toArray() as Float32Array, e * F * C);
      }
      dev.upload(experts.upProj.storage, up);
    }
    const want = await ref.forward(ids).logits.toArray() as Float32Array;
    using floe = await floeCompress(await load(dev, "mixtral-top2-f32"), {
      upBits: 2,
      groupSize: 16,
      sparsity: 0,
      mode: "topk",
    }); // layer 0 dense by default
    assert.ok((floe.layers[0].mlp as SparseMoE).experts.constructor.name === "SwiGLUExperts");
    assertClose(await floe.forward(ids).logits.toArray(), want, { rtol: 1e-4, atol: 1e-4 });
    const before = dev.ledger.current("experts");
    assert.ok(before > 0, "resident up codes are in the experts category");
  },
);

testOnDevices("FloE sparsity changes the logits, and more with higher s", async (dev) => {
  using floe = await floeCompress(await load(dev, "mixtral-top2-f32"), {
    upBits: 16,
    sparsity: 0,
    mode: "topk",
    denseLayers: [],
  });
  const base = await floe.forward(ids).logits.toArray() as Float32Array;
  const err: number[] = [];
  for (const s of [0.5, 0.9]) {
    for (const l of floe.moeLayers) {
      ((floe.layers[l].mlp as SparseMoE).experts as FloeExperts).configure({ mode: "topk", sparsity: s });
    }
    const got = await floe.forward(ids).logits.toArray() as Float32Array;
    err.push(got.reduce((a, v, i) => a + (v - base[i]) ** 2, 0));
  }
  assert.ok(err[0] > 0 && err[1] > err[0], `errors ${err}`);
});

testOnDevices("floeCompress and HostExperts.fromModel reject bad input with clear errors", async (dev) => {
  using dense = await loadModel("test/fixtures/models/llama-gqa-tied-f32", { device: dev });
  await assert.rejects(
    floeCompress(dense, { sparsity: 0.5, mode: "topk" }),
    /Cannot FloE-compress a dense model \(llama, no MoE layers\)/,
  );
  await assert.rejects(
    HostExperts.fromModel(dense),
    /has no MoE layers; FloE and offloading need a MoE model/,
  );
  using moe = await load(dev, "mixtral-top2-f32");
  await assert.rejects(floeCompress(moe, { sparsity: 1, mode: "topk" }), /sparsity/);
  await assert.rejects(floeCompress(moe, { sparsity: 0.5, mode: "mask" as "topk" }), /mode/);
  await assert.rejects(
    floeCompress(moe, { sparsity: 0.5, mode: "threshold" }),
    /threshold mode without thresholds/,
  );
  await assert.rejects(
    floeCompress(moe, { sparsity: 0.5, mode: "topk", denseLayers: [7] }),
    /dense layer 7 is not a MoE layer/,
  );
  await assert.rejects(
    floeCompress(moe, { sparsity: 0.5, mode: "topk", groupSize: 64 }),
    /group size 64 must divide the hidden size 32/,
  );
  const store = await HostExperts.fromModel(moe, { hostDType: "f16" });
  assert.equal(store.hostBytes, 2 * 4 * 3 * 48 * 32 * 2); // 2 layers × 4 experts × gate, up, down in f16
  const rows = store.staging(32);
  assert.throws(() => store.packRows(1, 0, "gate", [48], rows), /channel 48 is outside 0\.\.47/);
  assert.throws(() => store.matrix(5, 0, "gate"), /the store holds MoE layers \[0,1\] with 4 experts/);
});

testOnDevices("FloE experts split into row chunks (binding limit) compute the unsplit model", async (dev) => {
  const opts = { upBits: 4 as const, groupSize: 16, sparsity: 0.6, mode: "topk" as const, denseLayers: [] };
  using whole = await floeCompress(await load(dev, "mixtral-top2-f32"), opts);
  using split = await floeCompress(await load(dev, "mixtral-top2-f32"), { ...opts, chunkRows: 7 }); // F 48: 7 chunks
  const ex = (split.layers[1].mlp as SparseMoE).experts as FloeExperts;
  assert.equal([...ex.parameters().keys()].filter((k) => k.startsWith("0.gate_rows.")).length, 7);
  assertClose(await split.forward(ids).logits.toArray(), await whole.forward(ids).logits.toArray(), {
    rtol: 1e-5,
    atol: 1e-5,
  });
});
