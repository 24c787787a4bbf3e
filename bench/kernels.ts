/**
 * Kernel benchmark: matmul GFLOP/s, GEMV GB/s, upload GB/s, submit-and-wait latency and
 * the per-dispatch cost inside a batch, next to this machine's own limits measured in the
 * same run (host ArrayBuffer copy bandwidth; a naive TypeScript triple loop as the floor and
 * the blocked TypeScript reference `matmulRef`, the CPU backend's fallback, above it).
 *
 * Inputs are seeded random values, and every timed kernel's output (and every upload and
 * readback) is checked against its TypeScript reference: a wrong kernel fails the benchmark
 * with the error it made instead of reporting the speed of a wrong answer.
 *
 * Run: `deno task bench` (add `--quick` for a short run). Writes bench/results/kernels.json;
 * `deno task bench:readme` renders the README's batching figures from it.
 * @module
 */
import { createDevice } from "../src/device/create_device.ts";
import type { WebGpuDevice } from "../src/device/webgpu_device.ts";
import { scale, scaleRef } from "../src/ops/elementwise.ts";
import { gemv, gemvRef } from "../src/ops/gemv.ts";
import { matmul, matmulRef } from "../src/ops/matmul.ts";
import { randn } from "../src/tensor/random.ts";
import { Tensor } from "../src/tensor/tensor.ts";
import { type BenchRow, checkOutput, printTable, timeMs, writeJson } from "./_harness.ts";

/** Allowed max |got − want| / max |want| of an f32 kernel against its float64-accumulating reference. */
const F32_TOL = 1e-4;

/**
 * The textbook i-j-k triple loop, `y = a · b` for `[n, n]` row-major: the floor that the blocked
 * reference and the kernels are compared with.
 */
function naiveMatmul(a: Float32Array, b: Float32Array, y: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let k = 0; k < n; k++) s += a[i * n + k] * b[k * n + j];
      y[i * n + j] = s;
    }
  }
}

const quick = Deno.args.includes("--quick");
/** Length of the chain of small ops that the batching rows time. */
const CHAIN = 200;
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

// TypeScript floor: a naive triple loop at 256³, then the blocked reference (matmulRef, what the
// CPU backend runs without a BLAS) on the same inputs; both checked against each other.
let tsRefGflops = 0;
{
  const n = 256;
  const a = randn(n * n, 11); // [n, n]
  const b = randn(n * n, 12); // [n, n]
  const yNaive = new Float32Array(n * n);
  const yRef = new Float32Array(n * n);
  const naiveMs = await timeMs(() => naiveMatmul(a, b, yNaive, n), { minRuns: 2, minMs: 100 });
  const refMs = await timeMs(() => matmulRef(a, b, yRef, 1, n, n, n, false, false), {
    minRuns: 2,
    minMs: 100,
  });
  const err = checkOutput(`naive triple loop ${n}³`, yNaive, yRef, F32_TOL);
  const naive = (2 * n ** 3) / (naiveMs * 1e6);
  tsRefGflops = (2 * n ** 3) / (refMs * 1e6);
  rows.push({
    group: "machine",
    name: `TypeScript naive triple loop matmul ${n}³`,
    value: naive,
    unit: "GFLOP/s",
    note: `max rel err vs matmulRef ${err.toExponential(1)}`,
  });
  rows.push({
    group: "machine",
    name: `TypeScript matmulRef (blocked, float64 sums) ${n}³`,
    value: tsRefGflops,
    unit: "GFLOP/s",
    note: `${(tsRefGflops / naive).toFixed(1)}x the naive loop`,
  });
}
// The same reference in the transB layout at a training shape (linear forward, T = 256).
{
  const [m, n, k] = [256, 1024, 256];
  const a = randn(m * k, 13); // [m, k]
  const b = randn(n * k, 14); // [n, k]
  const y = new Float32Array(m * n); // [m, k] x [n, k]ᵀ -> [m, n]
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
  const host = randn(bytes / 4, 21);
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
  let back: ArrayLike<number> = new Float32Array(0);
  const rms = await timeMs(async () => {
    back = await t.toArray();
  }, { minRuns: 3 });
  checkOutput(`upload + readback of ${bytes >> 20} MiB`, back, host, 0); // a copy: bit for bit
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

// Batching: the same chain of CHAIN small ops, one submit vs a submit-and-wait per op; both
// results checked against the reference chain.
{
  const n = CHAIN;
  const [alpha, beta] = [0.99, 0.01];
  const host = randn(1024, 31);
  const want = Float32Array.from(host);
  for (let i = 0; i < n; i++) scaleRef(want, want, alpha, beta);
  const x = Tensor.fromArray(gpu, host);
  const chain = async (syncEach: boolean) => {
    let y = x;
    const made: Tensor[] = [];
    for (let i = 0; i < n; i++) {
      y = scale(y, alpha, beta);
      made.push(y);
      if (syncEach) await gpu.flush();
    }
    const out = await y.toArray();
    for (const t of made) t.dispose();
    return out;
  };
  checkOutput(`${n} chained scale ops, one submit`, await chain(false), want, F32_TOL);
  checkOutput(`${n} chained scale ops, a submit each`, await chain(true), want, F32_TOL);
  const batched = await timeMs(() => chain(false), { minRuns: 3 });
  const unbatched = await timeMs(() => chain(true), { minRuns: 2, minMs: 0 });
  rows.push({ group: "batching", name: `per dispatch, ${n} in one submit`, value: batched / n, unit: "ms" });
  rows.push({
    group: "batching",
    name: `per dispatch, submit-and-wait each`,
    value: unbatched / n,
    unit: "ms",
  });
  rows.push({
    group: "batching",
    name: `batched speed-up, chain of ${n}`,
    value: unbatched / batched,
    unit: "x",
    note: `${unbatched.toFixed(0)} ms with a sync per op, ${batched.toFixed(1)} ms in one submit`,
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
  const ha = randn(n * n, 100 + n); // [n, n]
  const hb = randn(n * n, 200 + n); // [n, n] (used as [N, K] with transB)
  const a = Tensor.fromArray(gpu, ha, [n, n]);
  const b = Tensor.fromArray(gpu, hb, [n, n]);
  const want = new Float32Array(n * n);
  matmulRef(ha, hb, want, 1, n, n, n, transB, false); // [n, n] x [n, n](ᵀ) -> [n, n]
  const what = `matmul ${n}³ f32${transB ? " (x Wᵀ, transB)" : ""}`;
  let err: number;
  {
    using y = matmul(a, b, { transB });
    err = checkOutput(what, await y.toArray(), want, F32_TOL);
  }
  const reps = Math.max(2, Math.round(2 * 1024 ** 3 / n ** 3));
  const ms = await timeMs(async () => {
    const outs = Array.from({ length: reps }, () => matmul(a, b, { transB }));
    await gpu.flush();
    for (const o of outs) o.dispose();
  }, { minRuns: 3 }) / reps;
  const gflops = (2 * n ** 3) / (ms * 1e6);
  rows.push({
    group: "kernel",
    name: what,
    value: gflops,
    unit: "GFLOP/s",
    limit: fmaPeak,
    limitName: "FMA peak",
    target: n === 1024 ? 8 : undefined,
    note: `${(gflops / tsRefGflops).toFixed(0)}x TypeScript matmulRef; max rel err ${err.toExponential(1)}`,
  });
  a.dispose();
  b.dispose();
}

{
  const n = 4096;
  const hw = randn(n * n, 41, 0.02); // [out, in]
  const hx = randn(n, 42); // [in]
  const want = new Float32Array(n); // [out, in] · [in] -> [out]
  gemvRef(hw, hx, want, n, n);
  const w = Tensor.fromArray(gpu, hw, [n, n], { category: "weights" });
  const x = Tensor.fromArray(gpu, hx);
  let err: number;
  {
    using y = gemv(w, x);
    err = checkOutput(`gemv ${n}×${n}`, await y.toArray(), want, F32_TOL);
  }
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
    note: `max rel err ${err.toExponential(1)}`,
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
  chain: CHAIN,
};
await writeJson("bench/results/kernels.json", meta, rows);
console.log("\nwrote bench/results/kernels.json");
gpu.destroy();
