import assert from "node:assert/strict";
import { createDevice } from "../../src/device/create_device.ts";
import type { WebGpuDevice } from "../../src/device/webgpu_device.ts";
import { DeviceLostError, KernelCompileError, OutOfBudgetError } from "../../src/errors.ts";
import { add, scale } from "../../src/ops/elementwise.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { testOnDevices, webGpuTest } from "../_helpers.ts";

testOnDevices("tensors allocate through the ledger and dispose returns the bytes", async (dev) => {
  const before = dev.ledger.current();
  const t = Tensor.fromArray(dev, new Float32Array([1, 2, 3]), [3], { category: "weights" });
  assert.equal(dev.ledger.current("weights") >= 12, true);
  const r = t.reshape([1, 3]);
  t.dispose();
  assert.deepEqual(Array.from(await r.toArray()), [1, 2, 3], "a reshape keeps the storage alive");
  r.dispose();
  r.dispose();
  assert.equal(dev.ledger.current(), before);
  assert.throws(() => r.reshape([3]), /it was disposed/);
});

testOnDevices("odd-sized 16-bit and integer tensors round-trip", async (dev) => {
  for (
    const data of [
      new Uint16Array([1, 2, 65535]),
      new Int32Array([-5, 7, 2 ** 31 - 1]),
      new Uint32Array([0, 2 ** 32 - 1]),
    ]
  ) {
    using t = Tensor.fromArray(dev, data, undefined, {
      dtype: data instanceof Uint16Array ? "bf16" : undefined,
    });
    assert.deepEqual(Array.from(await t.toArray()), Array.from(data));
  }
  using e = Tensor.zeros(dev, [2, 0, 3]);
  assert.equal((await e.toArray()).length, 0);
});

testOnDevices("Tensor.fromArray validates shape and dtype", (dev) => {
  assert.throws(
    () => Tensor.fromArray(dev, new Float32Array(6), [4, 2]),
    /shape \[4,2\]: it holds 8 elements but data has 6/,
  );
  assert.throws(
    () => Tensor.fromArray(dev, new Int32Array(2), [2], { dtype: "f32" }),
    /data must be a Float32Array: received Int32Array/,
  );
  assert.throws(() => Tensor.empty(dev, [2, -1]), /shape must be non-negative integers: received \[2,-1\]/);
  assert.throws(() => Tensor.empty(dev, [2], { dtype: "f64" as "f32" }), /unknown dtype "f64"/);
});

Deno.test("a budget is enforced on tensors with OutOfBudgetError", async () => {
  const dev = await createDevice({ backend: "cpu", budgetBytes: 1024 });
  const a = Tensor.zeros(dev, [128]);
  assert.throws(() => Tensor.zeros(dev, [200]), OutOfBudgetError);
  a.dispose();
  Tensor.zeros(dev, [200]).dispose();
});

Deno.test("createDevice rejects an unknown backend", async () => {
  await assert.rejects(
    createDevice({ backend: "metal" as "cpu" }),
    /unknown backend "metal": expected one of auto, webgpu, cpu/,
  );
});

webGpuTest("WebGPU batches ops into one submit per readback", async () => {
  const dev = await createDevice({ backend: "webgpu" });
  const x = Tensor.fromArray(dev, new Float32Array([1, 2, 3, 4, 5]));
  const submits = dev.stats.submits;
  let y = x;
  for (let i = 0; i < 20; i++) y = add(scale(y, 1), x);
  assert.equal(dev.stats.submits, submits, "no submit while recording");
  assert.deepEqual(Array.from(await y.toArray()), [21, 42, 63, 84, 105]);
  assert.equal(dev.stats.submits, submits + 1, "one submit for the whole chain");
  assert.equal(dev.stats.dispatches >= 40, true);
  dev.destroy();
});

webGpuTest("WebGPU disposes tensors still referenced by pending work safely", async () => {
  const dev = await createDevice({ backend: "webgpu" });
  const x = Tensor.fromArray(dev, new Float32Array([1, 2, 3]));
  const y = scale(x, 2);
  x.dispose(); // the pending dispatch still reads x's buffer
  assert.deepEqual(Array.from(await y.toArray()), [2, 4, 6]);
  y.dispose();
  // What stays is the device's own uniform ring (category "staging"); uploads were released at the submit.
  assert.equal(dev.ledger.current("staging"), dev.ledger.current());
  assert.equal(dev.ledger.current(), 256 * 4096);
  dev.destroy();
  assert.equal(dev.ledger.current(), 0);
});

webGpuTest("WebGPU refuses a buffer larger than maxStorageBufferBindingSize", async () => {
  const dev = await createDevice({ backend: "webgpu" });
  const limit = dev.info.limits.maxStorageBufferBindingSize;
  assert.throws(
    () => Tensor.empty(dev, [limit / 4 + 1], { category: "weights" }),
    /at most maxStorageBufferBindingSize = \d+ bytes on this adapter; split the tensor/,
  );
  assert.equal(dev.ledger.current("weights"), 0);
  dev.destroy();
});

webGpuTest("WebGPU device loss becomes DeviceLostError on the next use", async () => {
  const dev = await createDevice({ backend: "webgpu" }) as WebGpuDevice;
  const x = Tensor.fromArray(dev, new Float32Array([1]));
  dev.gpu.destroy(); // what a driver reset looks like from here
  await dev.gpu.lost;
  assert.throws(() => scale(x, 2), DeviceLostError);
  await assert.rejects(
    x.toArray(),
    /the device was lost \(destroyed.*create a new device with createDevice\(\)/,
  );
});

webGpuTest("WebGPU kernel compile errors surface as KernelCompileError at the next readback", async () => {
  const dev = await createDevice({ backend: "webgpu" }) as WebGpuDevice;
  const x = Tensor.fromArray(dev, new Float32Array([1]));
  dev.dispatch({ name: "broken", code: "@compute @workgroup_size(1) fn main() { let a: u32 = 1.5; }" }, {
    bindings: [],
    workgroups: [1],
  });
  const err = await assert.rejects(x.toArray(), KernelCompileError);
  void err;
  dev.destroy();
});

webGpuTest(
  "WebGPU uploadMs counts until the uploads are usable (a readback proves it), not the enqueue",
  async () => {
    const dev = await createDevice({ backend: "webgpu" });
    const x = Tensor.fromArray(dev, new Float32Array(1 << 20)); // 4 MiB, enqueued
    assert.equal(dev.stats.uploadMs, 0, "nothing is known to be on the device yet");
    await x.toArray(); // the round trip that proves it
    const settled = dev.stats.uploadMs;
    assert.ok(settled > 0, `uploadMs ${settled}`);
    await x.toArray(); // no new upload: nothing more counted
    assert.equal(dev.stats.uploadMs, settled);
    x.dispose();
    dev.destroy();
  },
);
