/**
 * Ops against golden outputs from PyTorch, computed the way transformers' modeling code
 * does (test/fixtures/make_ops_golden.py): RMSNorm, rotate_half RoPE, eager GQA attention
 * with a causal cache mask, softmax, activations, F.linear, topk and embedding.
 */
import assert from "node:assert/strict";
import { SafetensorsFile } from "../../src/io/safetensors.ts";
import { attention } from "../../src/ops/attention.ts";
import { embedding } from "../../src/ops/embedding.ts";
import { gelu, geluTanh, silu } from "../../src/ops/elementwise.ts";
import { matmul } from "../../src/ops/matmul.ts";
import { rmsNorm } from "../../src/ops/rmsnorm.ts";
import { rope } from "../../src/ops/rope.ts";
import { softmax } from "../../src/ops/softmax.ts";
import { topk } from "../../src/ops/topk.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, testOnDevices } from "../_helpers.ts";

using file = await SafetensorsFile.open(new URL("../fixtures/ops/golden.safetensors", import.meta.url));
const golden = new Map<string, { shape: readonly number[]; data: Float32Array | Int32Array }>();
for (const name of file.names) {
  const t = await file.read(name);
  const data = t.dtype === "I32" ? new Int32Array(t.data.slice().buffer) : await file.readF32(name);
  golden.set(name, { shape: t.shape, data });
}
const f32 = (name: string) => golden.get(name)!.data as Float32Array;
const on = (dev: Parameters<Parameters<typeof testOnDevices>[1]>[0], name: string) => {
  const g = golden.get(name)!;
  return Tensor.fromArray(dev, g.data, g.shape);
};

testOnDevices("rmsNorm matches transformers' LlamaRMSNorm", async (dev) => {
  const y = rmsNorm(on(dev, "rmsnorm.x"), on(dev, "rmsnorm.weight"), 1e-6);
  assertClose(await y.toArray(), f32("rmsnorm.y"), { rtol: 1e-5, atol: 1e-6 });
});

testOnDevices("rope matches transformers' apply_rotary_pos_emb at positions 100..106", async (dev) => {
  const y = rope(on(dev, "rope.x"), 100, { theta: 10000 });
  // transformers forms pos·inv_freq in f32; Ferry reduces the angle exactly, so allow f32 angle error.
  assertClose(await y.toArray(), f32("rope.y"), { rtol: 2e-5, atol: 2e-5 });
});

testOnDevices("attention matches eager GQA attention with a causal cache mask", async (dev) => {
  const y = attention(on(dev, "attention.q"), on(dev, "attention.k"), on(dev, "attention.v"), { pos: 3 });
  assertClose(await y.toArray(), f32("attention.y"), { rtol: 1e-5, atol: 1e-6 });
});

testOnDevices("softmax, silu, gelu and gelu_tanh match torch", async (dev) => {
  assertClose(await softmax(on(dev, "softmax.x")).toArray(), f32("softmax.y"), { rtol: 1e-5, atol: 1e-7 });
  const x = on(dev, "act.x");
  assertClose(await silu(x).toArray(), f32("act.silu"), { rtol: 1e-5, atol: 1e-6 });
  assertClose(await gelu(x).toArray(), f32("act.gelu"), { rtol: 1e-5, atol: 1e-6 });
  assertClose(await geluTanh(x).toArray(), f32("act.gelu_tanh"), { rtol: 1e-5, atol: 1e-6 });
});

testOnDevices("matmul with transB matches F.linear", async (dev) => {
  const y = matmul(on(dev, "linear.x"), on(dev, "linear.weight"), { transB: true });
  assert.deepEqual(y.shape, [3, 17, 31]);
  assertClose(await y.toArray(), f32("linear.y"), { rtol: 1e-5, atol: 1e-5 });
});

testOnDevices("topk and embedding match torch exactly", async (dev) => {
  const { values, indices } = topk(on(dev, "topk.x"), 2);
  assert.deepEqual(Array.from(await values.toArray()), Array.from(f32("topk.values")));
  assert.deepEqual(Array.from(await indices.toArray()), Array.from(golden.get("topk.indices")!.data));
  const y = embedding(on(dev, "embedding.table"), on(dev, "embedding.ids"));
  assert.deepEqual(Array.from(await y.toArray()), Array.from(f32("embedding.y")));
});
