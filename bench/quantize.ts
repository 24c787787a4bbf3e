/**
 * Quantizer benchmark: time to quantize a 4096 × 4096 weight with HQQ (20 iterations, g = 64,
 * 2 and 4 bits), RTN and NF4, on the CPU reference and on WebGPU in the same run. Each WebGPU
 * time is reported as a fraction of the CPU reference's time for the same setting (the "limit"
 * column); the note gives HQQ's cost over RTN on the same backend (its 20 half-quadratic
 * iterations) and the reconstruction error that the time buys.
 *
 * The weight is heavy-tailed (Student-t with 3 degrees of freedom, like trained weights with
 * outliers) so HQQ's early stop behaves as on real matrices.
 *
 * Run: `deno task bench:quant` (after bench/quant.ts) or `deno run -A bench/quantize.ts` (`--quick`:
 * 1024 × 1024). Writes bench/results/quantize.json; `deno task bench:readme` renders the README's
 * quantize timings from it.
 * @module
 */
import { relativeError } from "../src/compressors/analysis/errors.ts";
import { quantize, quantizedToHost, type QuantizeOptions } from "../src/compressors/quant/quantize.ts";
import { createDevice, hasWebGpu } from "../src/device/create_device.ts";
import type { Device } from "../src/device/device.ts";
import { dequantizeRef } from "../src/ops/dequantize_ref.ts";
import { disposeQuantized } from "../src/tensor/quantized_tensor.ts";
import { mulberry32 } from "../src/tensor/random.ts";
import { Tensor } from "../src/tensor/tensor.ts";
import { type BenchRow, printTable, writeJson } from "./_harness.ts";

const quick = Deno.args.includes("--quick");
const N = quick ? 1024 : 4096;

/** Student-t(3) samples: a normal over the root of a scaled chi-square. */
function studentT(n: number, seed: number): Float32Array {
  const u = mulberry32(seed);
  const normal = () => Math.sqrt(-2 * Math.log(Math.max(u(), 1e-12))) * Math.cos(2 * Math.PI * u());
  return Float32Array.from({ length: n }, () => {
    const chi = normal() ** 2 + normal() ** 2 + normal() ** 2;
    return (0.02 * normal()) / Math.sqrt(chi / 3);
  });
}

const w = studentT(N * N, 1);
const devices: Device[] = [await createDevice({ backend: "cpu" })];
if (await hasWebGpu()) devices.push(await createDevice({ backend: "webgpu" }));
const SETTINGS: [string, QuantizeOptions][] = [
  ["rtn 2-bit", { method: "rtn", bits: 2, groupSize: 64 }],
  ["hqq 2-bit", { method: "hqq", bits: 2, groupSize: 64 }],
  ["rtn 4-bit", { method: "rtn", bits: 4, groupSize: 64 }],
  ["hqq 4-bit", { method: "hqq", bits: 4, groupSize: 64 }],
  ["nf4", { method: "nf4", bits: 4, groupSize: 64 }],
];

const rows: BenchRow[] = [];
/** One entry per device and setting: what the README's quantize table shows. */
const details: { device: string; setting: string; seconds: number; relError: number; iterations?: number }[] =
  [];
const cpuMs = new Map<string, number>();
for (const device of devices) {
  const rtnMs = new Map<number, number>();
  for (const [name, options] of SETTINGS) {
    using t = Tensor.fromArray(device, w, [N, N], { category: "weights" });
    const warm = await quantize(t, options); // compiles kernels, warms caches
    disposeQuantized(warm);
    const t0 = performance.now();
    const q = await quantize(t, options);
    await device.flush();
    const ms = performance.now() - t0;
    const err = relativeError(w, dequantizeRef(await quantizedToHost(q)));
    if (options.method === "rtn") rtnMs.set(options.bits ?? 4, ms);
    const rtn = rtnMs.get(options.bits ?? 4);
    if (device.kind === "cpu") cpuMs.set(name, ms);
    const cpu = device.kind === "cpu" ? undefined : cpuMs.get(name);
    rows.push({
      group: device.kind,
      name: `${name} g64 [${N}, ${N}]`,
      value: ms / 1000,
      unit: "s",
      ...(cpu ? { limit: cpu / 1000, limitName: "cpu" } : {}),
      note: `relative error ${err.toFixed(4)}` +
        (q.info ? `, ${q.info.iterations} iterations kept` : "") +
        (options.method === "hqq" && rtn ? `, ${(ms / rtn).toFixed(1)}× RTN's time` : ""),
    });
    details.push({
      device: device.kind,
      setting: name,
      seconds: ms / 1000,
      relError: err,
      ...(q.info ? { iterations: q.info.iterations } : {}),
    });
    disposeQuantized(q);
  }
}

printTable(`Quantize time, ${N} × ${N} (HQQ: 20 iterations, early stop)`, rows);
await writeJson("bench/results/quantize.json", {
  n: N,
  groupSize: 64,
  devices: devices.map((d) => d.info),
  details,
}, rows);
console.log("\nwrote bench/results/quantize.json");
for (const d of devices) d.destroy();
