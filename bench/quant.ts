/**
 * Packed-weight benchmark: GEMV from 2/3/4/8-bit affine codes (g = 64, axis 1) and NF4 (with and
 * without double quantisation) against the f32 GEMV on the same 4096 × 4096 weight in the same run:
 * ms per call, GB/s of packed bytes (codes + metadata), the speed-up over f32 next to the byte ratio
 * (the memory-bound ceiling), and the targets (≥ 2× at 4 bits, ≥ 3× at 2 bits); then the
 * prefill product `qmatmul` against `matmul(x, W, { transB: true })` at T = 16.
 *
 * Run: `deno run -A bench/quant.ts` (add `--quick` for a short run). Writes bench/results/quant.json.
 * @module
 */
import { createDevice } from "../src/device/create_device.ts";
import type { WebGpuDevice } from "../src/device/webgpu_device.ts";
import { dequantize } from "../src/ops/dequantize.ts";
import { packAffineMeta } from "../src/ops/dequantize_ref.ts";
import { gemv } from "../src/ops/gemv.ts";
import { matmul } from "../src/ops/matmul.ts";
import { qgemv } from "../src/ops/qgemv.ts";
import { qmatmul } from "../src/ops/qmatmul.ts";
import {
  disposeQuantized,
  type QuantBits,
  quantizedBytes,
  type QuantizedTensor,
  wordsPerRow,
} from "../src/tensor/quantized_tensor.ts";
import { mulberry32, randn } from "../src/tensor/random.ts";
import { Tensor } from "../src/tensor/tensor.ts";
import { type BenchRow, printTable, timeMs, writeJson } from "./_harness.ts";

const quick = Deno.args.includes("--quick");
const N = 4096;
const G = 64;
const T = 16;
const REPS = quick ? 8 : 24; // calls per submit, so the ~12 ms flush is a small share
const gpu = await createDevice({ backend: "webgpu" }) as WebGpuDevice;
console.log(`device: ${gpu.info.adapter} (${gpu.info.backend}); ${navigator.hardwareConcurrency} cores`);

/** Median ms of one call of `op` (REPS calls per submit). */
function perCall(op: () => Tensor, reps = REPS): Promise<number> {
  return timeMs(async () => {
    const outs = Array.from({ length: reps }, op);
    await gpu.flush();
    for (const o of outs) o.dispose();
  }, { minRuns: quick ? 2 : 3, minMs: quick ? 100 : 400 }).then((ms) => ms / reps);
}

/** A random `[N, N]` quantized weight in the contract's layout (random codes and metadata). */
function randomWeight(scheme: "affine" | "nf4", bits: QuantBits, dq: boolean, seed: number): QuantizedTensor {
  const u = mulberry32(seed);
  const groups = (N * N) / G;
  const words = N * wordsPerRow(N, bits);
  const w = { dtype: "u32", category: "weights" } as const;
  const f = { dtype: "f32", category: "weights" } as const;
  const codes = Tensor.fromArray(
    gpu,
    Uint32Array.from({ length: words }, () => (u() * 2 ** 32) >>> 0),
    undefined,
    w,
  );
  const base = {
    method: scheme === "nf4" ? "nf4" : "rtn",
    scheme,
    bits,
    groupSize: G,
    axis: 1,
    shape: [N, N],
  } as const;
  if (scheme === "affine") {
    const meta = packAffineMeta(
      Float32Array.from({ length: groups }, () => 0.01 + 0.01 * u()),
      Float32Array.from({ length: groups }, () => u() * ((1 << bits) - 1)),
    );
    return { ...base, codes, meta: Tensor.fromArray(gpu, meta, undefined, w) };
  }
  if (!dq) {
    return { ...base, codes, meta: Tensor.fromArray(gpu, randn(groups, seed).map(Math.abs), undefined, f) };
  }
  return {
    ...base,
    codes,
    meta: Tensor.fromArray(
      gpu,
      Uint32Array.from({ length: groups / 4 }, () => (u() * 2 ** 32) >>> 0),
      undefined,
      w,
    ),
    meta2: Tensor.fromArray(gpu, Float32Array.from({ length: groups / 256 }, () => 0.01 * u()), undefined, f),
    metaOffset: 0.02,
  };
}

/** max |a − b| / max |b|: a sanity check printed next to the timings. */
async function relErr(a: Tensor, b: Tensor): Promise<number> {
  const [x, y] = [await a.toArray(), await b.toArray()];
  let err = 0, mag = 0;
  for (let i = 0; i < x.length; i++) {
    err = Math.max(err, Math.abs(x[i] - y[i]));
    mag = Math.max(mag, Math.abs(y[i]));
  }
  return err / mag;
}

const rows: BenchRow[] = [];
const configs = [
  { name: "2-bit", scheme: "affine", bits: 2, dq: false, target: 3 },
  { name: "3-bit", scheme: "affine", bits: 3, dq: false },
  { name: "4-bit", scheme: "affine", bits: 4, dq: false, target: 2 },
  { name: "8-bit", scheme: "affine", bits: 8, dq: false },
  { name: "NF4", scheme: "nf4", bits: 4, dq: false },
  { name: "NF4 + double quant", scheme: "nf4", bits: 4, dq: true },
] as const;
const results: Record<string, unknown>[] = [];

// ---------------------------------------------------------------------------------------
// GEMV, 4096 × 4096: each packed kernel timed right after the f32 GEMV (same run, same x).

{
  const wf = Tensor.fromArray(gpu, randn(N * N, 1, 0.02), [N, N], { category: "weights" });
  const x = Tensor.fromArray(gpu, randn(N, 2));
  const f32Bytes = N * N * 4;
  let seed = 10;
  for (const c of configs) {
    const q = randomWeight(c.scheme, c.bits, c.dq, seed++);
    const bytes = quantizedBytes(q).total;
    const fMs = await perCall(() => gemv(wf, x));
    const qMs = await perCall(() => qgemv(q, x));
    const fMs2 = await perCall(() => gemv(wf, x));
    const f32Ms = (fMs + fMs2) / 2;
    using wd = dequantize(q);
    using want = gemv(wd, x);
    using got = qgemv(q, x);
    const err = await relErr(got, want);
    const speedup = f32Ms / qMs;
    const ratio = f32Bytes / bytes;
    const group = `qgemv ${N}² g${G}`;
    rows.push({
      group,
      name: `${c.name}: packed bytes per second`,
      value: bytes / (qMs * 1e6),
      unit: "GB/s",
      note: `${qMs.toFixed(2)} ms (f32 ${f32Ms.toFixed(2)} ms, ${
        (f32Bytes / (f32Ms * 1e6)).toFixed(1)
      } GB/s)`,
    });
    rows.push({
      group,
      name: `${c.name}: speed-up over f32 gemv`,
      value: speedup,
      unit: "x",
      limit: ratio,
      limitName: "byte ratio",
      target: "target" in c ? c.target : undefined,
      note: `max rel err vs dequantize+gemv ${err.toExponential(1)}`,
    });
    results.push({ kernel: "qgemv", config: c.name, ms: qMs, f32Ms, bytes, speedup, byteRatio: ratio, err });
    disposeQuantized(q);
  }
  wf.dispose();
  x.dispose();
}

// ---------------------------------------------------------------------------------------
// Prefill: qmatmul vs matmul(x, W, { transB: true }) at T tokens.

{
  const wf = Tensor.fromArray(gpu, randn(N * N, 3, 0.02), [N, N], { category: "weights" });
  const x = Tensor.fromArray(gpu, randn(T * N, 4), [T, N]);
  const flops = 2 * T * N * N;
  let seed = 40;
  for (const c of configs.filter((c) => c.bits !== 3 && c.bits !== 8)) {
    const q = randomWeight(c.scheme, c.bits, c.dq, seed++);
    const fMs = await perCall(() => matmul(x, wf, { transB: true }), 4);
    const qMs = await perCall(() => qmatmul(x, q), 4);
    using wd = dequantize(q);
    using want = matmul(x, wd, { transB: true });
    using got = qmatmul(x, q);
    const err = await relErr(got, want);
    rows.push({
      group: `qmatmul T=${T} ${N}²`,
      name: `${c.name}: GFLOP/s`,
      value: flops / (qMs * 1e6),
      unit: "GFLOP/s",
      limit: flops / (fMs * 1e6),
      limitName: "f32 matmul",
      note: `${qMs.toFixed(1)} ms vs f32 ${fMs.toFixed(1)} ms; max rel err ${err.toExponential(1)}`,
    });
    results.push({ kernel: "qmatmul", config: c.name, T, ms: qMs, f32Ms: fMs, speedup: fMs / qMs, err });
    disposeQuantized(q);
  }
  wf.dispose();
  x.dispose();
}

printTable("Ferry packed-weight benchmark", rows);
const meta = {
  date: new Date().toISOString(),
  adapter: gpu.info.adapter,
  backend: gpu.info.backend,
  deno: Deno.version.deno,
  cores: navigator.hardwareConcurrency,
  shape: [N, N],
  groupSize: G,
  tokens: T,
  quick,
  results,
};
await writeJson("bench/results/quant.json", meta, rows);
console.log("\nwrote bench/results/quant.json");
gpu.destroy();
