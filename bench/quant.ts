/**
 * Packed-weight benchmark: GEMV from 2/3/4/8-bit affine codes (g = 64, axis 1) and NF4 (with and
 * without double quantisation) against the f32 GEMV on the same 4096 × 4096 weight in the same run:
 * ms per call, GB/s of packed bytes (codes + metadata), the speed-up over f32 next to the byte ratio
 * (the memory-bound ceiling), and the targets (≥ 2× at 4 bits, ≥ 3× at 2 bits); then the
 * prefill product `qmatmul` against `matmul(x, W, { transB: true })` at T = 16.
 *
 * Each packed kernel and its f32 baseline run in turns in one loop ({@link timeAlternating}), so
 * both see the same machine state; the figures are medians of those rounds, with their spread.
 * Every output is checked against the TypeScript references (`qgemvRef`, `gemvRef`, `qmatmulRef`,
 * `matmulRef`): a wrong kernel fails the benchmark.
 *
 * Run: `deno task bench:quant` (add `--quick` for a short run). Writes bench/results/quant.json;
 * `deno task bench:readme` renders the README's packed-GEMV table from it. Then runs
 * `bench/quantize.ts` with the same arguments (a task passes its arguments to its last command
 * only, so this script starts the second one itself).
 * @module
 */
import { createDevice } from "../src/device/create_device.ts";
import type { WebGpuDevice } from "../src/device/webgpu_device.ts";
import { quantizedToHost } from "../src/compressors/quant/quantize.ts";
import { packAffineMeta } from "../src/ops/dequantize_ref.ts";
import { gemv, gemvRef } from "../src/ops/gemv.ts";
import { matmul, matmulRef } from "../src/ops/matmul.ts";
import { qgemv, qgemvRef } from "../src/ops/qgemv.ts";
import { qmatmul, qmatmulRef } from "../src/ops/qmatmul.ts";
import {
  disposeQuantized,
  type QuantBits,
  quantizedBytes,
  type QuantizedTensor,
  wordsPerRow,
} from "../src/tensor/quantized_tensor.ts";
import { mulberry32, randn } from "../src/tensor/random.ts";
import { Tensor } from "../src/tensor/tensor.ts";
import {
  type BenchRow,
  checkOutput,
  printTable,
  type Spread,
  timeAlternating,
  writeJson,
} from "./_harness.ts";

const quick = Deno.args.includes("--quick");
const N = 4096;
const G = 64;
const T = 16;
const REPS = quick ? 8 : 24; // calls per submit, so the ~12 ms flush is a small share
const gpu = await createDevice({ backend: "webgpu" }) as WebGpuDevice;
console.log(`device: ${gpu.info.adapter} (${gpu.info.backend}); ${navigator.hardwareConcurrency} cores`);

const ROUNDS = quick ? 5 : 9; // alternating rounds of (f32, packed) per configuration
/** Allowed max |got − want| / max |want| against the float64-accumulating references. */
const TOL = 1e-3;

/** `reps` calls of `op` recorded into one submit, then waited for: one timed unit. */
const batch = (op: () => Tensor, reps: number) => async () => {
  const outs = Array.from({ length: reps }, op);
  await gpu.flush();
  for (const o of outs) o.dispose();
};

/** ms per call of the f32 baseline and the packed op, measured in turns (`reps` calls per submit). */
async function perCall(f32: () => Tensor, packed: () => Tensor, reps = REPS) {
  const t = await timeAlternating({ f32: batch(f32, reps), packed: batch(packed, reps) }, { rounds: ROUNDS });
  const per = (s: Spread): Spread => ({
    ...s,
    median: s.median / reps,
    min: s.min / reps,
    max: s.max / reps,
  });
  return { f32: per(t.f32), packed: per(t.packed) };
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
  const hw = randn(N * N, 1, 0.02); // [N, N]
  const hx = randn(N, 2); // [N]
  const wf = Tensor.fromArray(gpu, hw, [N, N], { category: "weights" });
  const x = Tensor.fromArray(gpu, hx);
  const f32Bytes = N * N * 4;
  {
    const want = new Float32Array(N); // [N, N] · [N] -> [N]
    gemvRef(hw, hx, want, N, N);
    using got = gemv(wf, x);
    checkOutput(`f32 gemv ${N}²`, await got.toArray(), want, TOL);
  }
  let seed = 10;
  for (const c of configs) {
    const q = randomWeight(c.scheme, c.bits, c.dq, seed++);
    const bytes = quantizedBytes(q).total;
    const want = new Float32Array(N); // Ŵ [N, N] · [N] -> [N]
    qgemvRef(await quantizedToHost(q), hx, want);
    let err: number;
    {
      using got = qgemv(q, x);
      err = checkOutput(`qgemv ${c.name} ${N}²`, await got.toArray(), want, TOL);
    }
    const t = await perCall(() => gemv(wf, x), () => qgemv(q, x));
    const [f32Ms, qMs] = [t.f32.median, t.packed.median];
    const speedup = f32Ms / qMs;
    const ratio = f32Bytes / bytes;
    const group = `qgemv ${N}² g${G}`;
    rows.push({
      group,
      name: `${c.name}: ms per call`,
      value: qMs,
      unit: "ms",
      min: t.packed.min,
      max: t.packed.max,
      runs: t.packed.runs,
      limit: f32Ms,
      limitName: "f32 gemv",
      note: `f32 ${f32Ms.toFixed(2)} ms (${t.f32.min.toFixed(2)}–${t.f32.max.toFixed(2)}), ` +
        `${(f32Bytes / (f32Ms * 1e6)).toFixed(1)} GB/s; packed ${(bytes / (qMs * 1e6)).toFixed(1)} GB/s`,
    });
    rows.push({
      group,
      name: `${c.name}: speed-up over f32 gemv`,
      value: speedup,
      unit: "x",
      limit: ratio,
      limitName: "byte ratio",
      target: "target" in c ? c.target : undefined,
      note: `max rel err vs qgemvRef ${err.toExponential(1)}`,
    });
    results.push({
      kernel: "qgemv",
      config: c.name,
      ms: qMs,
      msMin: t.packed.min,
      msMax: t.packed.max,
      f32Ms,
      f32MsMin: t.f32.min,
      f32MsMax: t.f32.max,
      rounds: ROUNDS,
      bytes,
      speedup,
      byteRatio: ratio,
      err,
    });
    disposeQuantized(q);
  }
  wf.dispose();
  x.dispose();
}

// ---------------------------------------------------------------------------------------
// Prefill: qmatmul vs matmul(x, W, { transB: true }) at T tokens.

{
  const hw = randn(N * N, 3, 0.02); // [N, N]
  const hx = randn(T * N, 4); // [T, N]
  const wf = Tensor.fromArray(gpu, hw, [N, N], { category: "weights" });
  const x = Tensor.fromArray(gpu, hx, [T, N]);
  const flops = 2 * T * N * N;
  {
    const want = new Float32Array(T * N); // [T, N] x [N, N]ᵀ -> [T, N]
    matmulRef(hx, hw, want, 1, T, N, N, true, false);
    using got = matmul(x, wf, { transB: true });
    checkOutput(`f32 matmul T=${T} ${N}²`, await got.toArray(), want, TOL);
  }
  let seed = 40;
  for (const c of configs.filter((c) => c.bits !== 3 && c.bits !== 8)) {
    const q = randomWeight(c.scheme, c.bits, c.dq, seed++);
    const want = new Float32Array(T * N); // [T, N] x Ŵ[N, N]ᵀ -> [T, N]
    qmatmulRef(hx, await quantizedToHost(q), want, T);
    let err: number;
    {
      using got = qmatmul(x, q);
      err = checkOutput(`qmatmul ${c.name} T=${T} ${N}²`, await got.toArray(), want, TOL);
    }
    const t = await perCall(() => matmul(x, wf, { transB: true }), () => qmatmul(x, q), 4);
    const [fMs, qMs] = [t.f32.median, t.packed.median];
    rows.push({
      group: `qmatmul T=${T} ${N}²`,
      name: `${c.name}: GFLOP/s`,
      value: flops / (qMs * 1e6),
      unit: "GFLOP/s",
      limit: flops / (fMs * 1e6),
      limitName: "f32 matmul",
      note: `${qMs.toFixed(1)} ms (${t.packed.min.toFixed(1)}–${t.packed.max.toFixed(1)}) vs f32 ` +
        `${fMs.toFixed(1)} ms; max rel err vs qmatmulRef ${err.toExponential(1)}`,
    });
    results.push({
      kernel: "qmatmul",
      config: c.name,
      T,
      ms: qMs,
      f32Ms: fMs,
      rounds: ROUNDS,
      speedup: fMs / qMs,
      err,
    });
    disposeQuantized(q);
  }
  wf.dispose();
  x.dispose();
}

printTable("Ferry packed-weight benchmark", rows);
const meta = {
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

// The quantizer timings, in a fresh process (its own devices) with the same arguments.
const quantizeBench = await new Deno.Command(Deno.execPath(), {
  args: ["run", "--allow-all", new URL("./quantize.ts", import.meta.url).pathname, ...Deno.args],
  stdout: "inherit",
  stderr: "inherit",
}).output();
if (!quantizeBench.success) Deno.exit(quantizeBench.code || 1);
