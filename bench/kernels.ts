/**
 * Kernel benchmark: matmul GFLOP/s, GEMV GB/s, upload GB/s, submit-and-wait latency and
 * the per-dispatch cost inside a batch, next to this machine's own limits measured in the
 * same run (host ArrayBuffer copy bandwidth; a plain TypeScript triple loop as the floor).
 *
 * Run: `deno task bench` (add `--quick` for a short run). Writes bench/results/kernels.json.
 * @module
 */
import { createDevice } from "../src/device/create_device.ts";
import type { WebGpuDevice } from "../src/device/webgpu_device.ts";
import { scale } from "../src/ops/elementwise.ts";
import { gemv } from "../src/ops/gemv.ts";
import { matmul, matmulRef } from "../src/ops/matmul.ts";
import { Tensor } from "../src/tensor/tensor.ts";
import { type BenchRow, printTable, timeMs, writeJson } from "./_harness.ts";

const quick = Deno.args.includes("--quick");
const rows: BenchRow[] = [];
const gpu = await createDevice({ backend: "webgpu" }) as WebGpuDevice;
console.log(
  `device: ${gpu.info.adapter} (${gpu.info.backend}); features: ${gpu.info.features.join(", ") || "none"}`,
);

// ---------------------------------------------------------------------------------------
// The machine's own limits, measured now.

// Host memory bandwidth: copy a 256 MiB buffer (bytes read + bytes written per second).
const hostBytes = (quick ? 64 : 256) << 20;
const src = new Uint8Array(hostBytes).fill(1);
const dst = new Uint8Array(hostBytes);
const copyMs = await timeMs(() => dst.set(src), { minRuns: 5 });
const hostCopyGBs = (2 * hostBytes) / (copyMs * 1e6);
rows.push({ group: "machine", name: "host ArrayBuffer copy (read+write)", value: hostCopyGBs, unit: "GB/s" });

// TypeScript floor: the reference triple loop at 256³.
{
  const n = 256;
  const a = new Float32Array(n * n).fill(0.5);
  const b = new Float32Array(n * n).fill(0.25);
  const y = new Float32Array(n * n);
  const ms = await timeMs(() => matmulRef(a, b, y, 1, n, n, n, false, false), { minRuns: 2, minMs: 100 });
  rows.push({
    group: "machine",
    name: "TypeScript triple loop matmul 256³",
    value: (2 * n ** 3) / (ms * 1e6),
    unit: "GFLOP/s",
  });
}
const tsFloor = rows[1].value;
// The same reference in the transB layout at a training shape (linear forward, T = 256).
{
  const [m, n, k] = [256, 1024, 256];
  const a = new Float32Array(m * k).fill(0.5);
  const b = new Float32Array(n * k).fill(0.25);
  const y = new Float32Array(m * n);
  const ms = await timeMs(() => matmulRef(a, b, y, 1, m, n, k, true, false), { minRuns: 2, minMs: 100 });
  rows.push({
    group: "machine",
    name: `TypeScript matmulRef [${m},${k}]x[${n},${k}]ᵀ`,
    value: (2 * m * n * k) / (ms * 1e6),
    unit: "GFLOP/s",
  });
}

// Compute ceiling: f32 FMA peak at 256-bit vectors (llvmpipe's width), from this machine's
// cores and clock: cores × GHz × 2 FMA pipes × 8 lanes × 2 flops.
const fmaPeak = await (async () => {
  try {
    const mhz = Number((await Deno.readTextFile("/proc/cpuinfo")).match(/cpu MHz\s*:\s*([\d.]+)/)?.[1]);
    return mhz > 0 ? navigator.hardwareConcurrency * (mhz / 1000) * 32 : undefined;
  } catch {
    return undefined;
  }
})();
if (fmaPeak) {
  rows.push({
    group: "machine",
    name: "f32 FMA peak, 256-bit (cores × clock)",
    value: fmaPeak,
    unit: "GFLOP/s",
  });
}

// ---------------------------------------------------------------------------------------
// Device round trips.

{
  await gpu.flush();
  const ms = await timeMs(async () => {
    gpu.submit();
    await gpu.gpu.queue.onSubmittedWorkDone();
  }, { minRuns: 10 });
  rows.push({ group: "device", name: "empty submit-and-wait", value: ms, unit: "ms" });
}

{
  const bytes = (quick ? 16 : 64) << 20;
  const host = new Float32Array(bytes / 4).fill(1);
  const t = Tensor.empty(gpu, [bytes / 4], { category: "staging" });
  const ms = await timeMs(async () => {
    gpu.upload(t.storage, host);
    await gpu.flush();
  }, { minRuns: 3 });
  rows.push({
    group: "device",
    name: `upload ${bytes >> 20} MiB (writeBuffer + submit)`,
    value: bytes / (ms * 1e6),
    unit: "GB/s",
    limit: hostCopyGBs / 2,
    limitName: "host copy",
  });
  const rms = await timeMs(() => t.toArray(), { minRuns: 3 });
  rows.push({
    group: "device",
    name: `readback ${bytes >> 20} MiB`,
    value: bytes / (rms * 1e6),
    unit: "GB/s",
    limit: hostCopyGBs / 2,
    limitName: "host copy",
  });
  t.dispose();
}

// Batching: the same chain of 200 small ops, one submit vs a submit-and-wait per op.
{
  const n = 200;
  const x = Tensor.fromArray(gpu, new Float32Array(1024).fill(1));
  const chain = async (syncEach: boolean) => {
    let y = x;
    const made: Tensor[] = [];
    for (let i = 0; i < n; i++) {
      y = scale(y, 1);
      made.push(y);
      if (syncEach) await gpu.flush();
    }
    await y.toArray();
    for (const t of made) t.dispose();
  };
  const batched = await timeMs(() => chain(false), { minRuns: 3 });
  const unbatched = await timeMs(() => chain(true), { minRuns: 2, minMs: 0 });
  rows.push({ group: "batching", name: `per dispatch, ${n} in one submit`, value: batched / n, unit: "ms" });
  rows.push({
    group: "batching",
    name: `per dispatch, submit-and-wait each`,
    value: unbatched / n,
    unit: "ms",
    note: `batched is ${(unbatched / batched).toFixed(1)}x faster`,
  });
  x.dispose();
}

// ---------------------------------------------------------------------------------------
// Kernels.

const sizes = quick ? [256, 512] : [256, 512, 1024];
for (
  const [n, transB] of [
    ...sizes.map((n) => [n, false] as const),
    ...sizes.map((n) => [n, true] as const),
  ]
) {
  const a = Tensor.fromArray(gpu, new Float32Array(n * n).fill(0.5), [n, n]);
  const b = Tensor.fromArray(gpu, new Float32Array(n * n).fill(0.25), [n, n]);
  const reps = Math.max(2, Math.round(2 * 1024 ** 3 / n ** 3));
  const ms = await timeMs(async () => {
    const outs = Array.from({ length: reps }, () => matmul(a, b, { transB }));
    await gpu.flush();
    for (const o of outs) o.dispose();
  }, { minRuns: 3 }) / reps;
  rows.push({
    group: "kernel",
    name: `matmul ${n}³ f32${transB ? " (x Wᵀ, transB)" : ""}`,
    value: (2 * n ** 3) / (ms * 1e6),
    unit: "GFLOP/s",
    limit: fmaPeak,
    limitName: "FMA peak",
    target: n === 1024 ? 8 : undefined,
    note: `${(((2 * n ** 3) / (ms * 1e6)) / tsFloor).toFixed(0)}x the TypeScript loop`,
  });
  a.dispose();
  b.dispose();
}

{
  const n = 4096;
  const w = Tensor.fromArray(gpu, new Float32Array(n * n).fill(0.001), [n, n], { category: "weights" });
  const x = Tensor.fromArray(gpu, new Float32Array(n).fill(1));
  const reps = 32; // enough that the ~12 ms flush is a small share of the batch
  const ms = await timeMs(async () => {
    const outs = Array.from({ length: reps }, () => gemv(w, x));
    await gpu.flush();
    for (const o of outs) o.dispose();
  }, { minRuns: 3 }) / reps;
  const gbs = (n * n * 4) / (ms * 1e6);
  rows.push({
    group: "kernel",
    name: "gemv 4096×4096 f32 (bytes of W)",
    value: gbs,
    unit: "GB/s",
    limit: hostCopyGBs / 2,
    limitName: "host read",
    target: 5,
  });
  w.dispose();
  x.dispose();
}

printTable("Ferry kernel benchmark", rows);
const meta = {
  date: new Date().toISOString(),
  adapter: gpu.info.adapter,
  backend: gpu.info.backend,
  features: gpu.info.features,
  deno: Deno.version.deno,
  cores: navigator.hardwareConcurrency,
  quick,
};
await writeJson("bench/results/kernels.json", meta, rows);
console.log("\nwrote bench/results/kernels.json");
gpu.destroy();
