/**
 * The hardware projection against hand-computed cases on a toy model and device (1 GB/s link and
 * memory, 1 ms syncs), and `trafficOf`'s expert equivalents.
 * @module
 */
import assert from "node:assert/strict";
import { type DeviceProfile, projectDecode, type TargetModel, trafficOf } from "../../src/moe/projection.ts";

// expert: 3·10·20 = 600 params = 1200 f16 bytes; non-expert weights 1000 params = 2000 bytes
const MODEL: TargetModel = {
  name: "toy",
  layers: 2,
  experts: 4,
  topK: 2,
  hidden: 10,
  intermediate: 20,
  nonExpertParams: 1000,
};
const DEVICE: DeviceProfile = {
  name: "toy",
  linkGBps: 1,
  memGBps: 1,
  flops: 1e18,
  memoryBytes: 1e12,
  syncMs: 1,
};
const close = (a: number, b: number) =>
  assert.ok(Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b)), `${a} vs ${b}`);

Deno.test("projectDecode: ondemand waits for every expert it loads", () => {
  const p = projectDecode(
    { policy: "ondemand", syncExpertsPerLayer: 2, prefetchExpertsPerLayer: 0, syncsPerToken: 3 },
    MODEL,
    DEVICE,
  );
  close(p.computeMs, 6800 / 1e6); // (2000 + 2 layers · 2 experts · 1200) bytes at 1 GB/s
  close(p.blockingMs, 4800 / 1e6); // 2 · 2 · 1200 bytes over the link
  close(p.syncMs, 3);
  close(p.tokensPerS, 1000 / (6800 / 1e6 + 4800 / 1e6 + 3));
});

Deno.test("projectDecode: floe hides its prefetch behind compute and waits for reloads", () => {
  const p = projectDecode(
    {
      policy: "floe",
      syncExpertsPerLayer: 0.05,
      prefetchExpertsPerLayer: 0.2,
      syncsPerToken: 3,
      sparsity: 0.9,
      upBits: 2,
    },
    MODEL,
    DEVICE,
  );
  // 2000 + 2 · 2 · (two 2-bit ups of 200 weights = 100 bytes, + 2 matrices · 200 · 0.1 f16 rows = 80 bytes)
  close(p.computeMs, 2720 / 1e6);
  close(p.overlapMs, 480 / 1e6); // 0.2 · 2 · 1200, less than compute: hidden
  close(p.blockingMs, 120 / 1e6);
  close(p.tokensPerS, 1000 / (2720 / 1e6 + 120 / 1e6 + 3));
  const slowLink = projectDecode(
    {
      policy: "floe",
      syncExpertsPerLayer: 0,
      prefetchExpertsPerLayer: 0.2,
      syncsPerToken: 0,
      sparsity: 0.9,
      upBits: 2,
    },
    MODEL,
    { ...DEVICE, linkGBps: 0.1 },
  );
  close(slowLink.tokensPerS, 1000 / (4800 / 1e6)); // the prefetch now outlasts compute
});

Deno.test("projectDecode: resident only where the whole model fits; cached at its bits", () => {
  const all = 2000 + 2 * 4 * 1200;
  const fits = projectDecode(
    { policy: "resident", syncExpertsPerLayer: 0, prefetchExpertsPerLayer: 0, syncsPerToken: 0 },
    MODEL,
    { ...DEVICE, memoryBytes: all },
  );
  close(fits.tokensPerS, 1000 / (6800 / 1e6));
  const not = projectDecode(
    { policy: "resident", syncExpertsPerLayer: 0, prefetchExpertsPerLayer: 0, syncsPerToken: 0 },
    MODEL,
    { ...DEVICE, memoryBytes: all - 1 },
  );
  assert.ok(Number.isNaN(not.tokensPerS));
  const q4 = projectDecode(
    { policy: "cached", syncExpertsPerLayer: 1, prefetchExpertsPerLayer: 0, syncsPerToken: 0, expertBits: 4 },
    MODEL,
    DEVICE,
  );
  close(q4.blockingMs, (2 * 300) / 1e6); // one 4-bit expert (300 bytes) per layer
});

Deno.test("trafficOf: bytes per token as expert equivalents per layer", () => {
  const t = trafficOf("floe", { demand: 0, prefetch: 300, reload: 100 }, 1000, 2, 5, { sparsity: 0.9 });
  assert.deepEqual(t, {
    policy: "floe",
    syncExpertsPerLayer: 0.05,
    prefetchExpertsPerLayer: 0.15,
    syncsPerToken: 5,
    sparsity: 0.9,
  });
});
