/**
 * Hardware projection: decode tokens/s of each offload policy for a target model (Mixtral-8x7B by
 * default) on a target device (RTX 3090 on PCIe 4.0 x16, H100 on PCIe 5.0), from the counters a
 * run measured on a small model here. What carries over from the measurement is the traffic in
 * *expert equivalents*: `e = bytes moved per token / (bytes of one whole expert · MoE layers)` for
 * prefetches and for synchronous loads (demand loads and reloads) apart, plus syncs per token.
 * Per token on the target:
 *
 * ```
 * compute  = bytes the step reads from device memory / memory bandwidth     (decode is memory-bound)
 *          = (non-expert weights + K routed experts per layer as the policy stores them) / memGBps
 * overlap  = e_prefetch · L · expert bytes / linkGBps                       (hidden behind compute)
 * blocking = e_sync · L · expert bytes / linkGBps                           (waited for)
 * token    = max(compute, overlap) + blocking + syncs · sync latency
 * ```
 *
 * Expert bytes are the target's f16 experts (cached: at its quantization bits; floe's row
 * transfers are already fractional expert equivalents). A policy that keeps every expert resident
 * is projected only where the whole model fits the device. Paper reference (FloE, RTX 3090):
 * 48.7× over DeepSpeed-MII (`ondemand`), 2.6× over mixtral-offloading (`cached`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEVICE_PROFILES, MIXTRAL_8X7B, projectDecode } from "./projection.ts";
 * const p = projectDecode({ policy: "ondemand", syncExpertsPerLayer: 2, prefetchExpertsPerLayer: 0, syncsPerToken: 33 }, MIXTRAL_8X7B, DEVICE_PROFILES.rtx3090);
 * assert.ok(p.tokensPerS > 0.5 && p.tokensPerS < 1.5); // ~22.5 GB of f16 experts per token over PCIe 4.0
 * ```
 * @module
 */

/** The target model's sizes. */
export interface TargetModel {
  name: string;
  /** MoE layers `L`. */
  layers: number;
  experts: number;
  topK: number;
  hidden: number;
  /** Expert width `F`. */
  intermediate: number;
  /** Parameters outside the routed experts (attention, embeddings, norms, routers). */
  nonExpertParams: number;
}

/** A target device. */
export interface DeviceProfile {
  name: string;
  /** Host-to-device bandwidth achieved by a packed copy, GB/s. */
  linkGBps: number;
  /** Device memory bandwidth, GB/s. */
  memGBps: number;
  /** Dense f16 FLOP/s. */
  flops: number;
  /** Device memory, bytes. */
  memoryBytes: number;
  /** Cost of one host round trip, ms. */
  syncMs: number;
}

/** Mixtral-8x7B (ALGORITHMS.md A.1): 32 layers, 8 experts, top-2, C = 4096, F = 14336, 46.7B parameters. */
export const MIXTRAL_8X7B: TargetModel = {
  name: "Mixtral-8x7B",
  layers: 32,
  experts: 8,
  topK: 2,
  hidden: 4096,
  intermediate: 14336,
  nonExpertParams: 46_702_792_704 - 32 * 8 * 3 * 4096 * 14336,
};

/**
 * Devices: link rates are 88% of the PCIe peak (FloE's packed copies reach 88%, A.6); memory and
 * FLOP/s are the datasheet figures; a CUDA sync costs tens of microseconds.
 */
export const DEVICE_PROFILES: Readonly<Record<string, DeviceProfile>> = {
  rtx3090: {
    name: "RTX 3090 (PCIe 4.0 x16)",
    linkGBps: 0.88 * 31.5,
    memGBps: 936,
    flops: 71e12,
    memoryBytes: 24e9,
    syncMs: 0.02,
  },
  h100: {
    name: "H100 SXM (PCIe 5.0 x16)",
    linkGBps: 0.88 * 63,
    memGBps: 3350,
    flops: 989e12,
    memoryBytes: 80e9,
    syncMs: 0.02,
  },
};

/** What a measured run says about one policy, in target-independent units. */
export interface MeasuredTraffic {
  policy: string;
  /** Expert equivalents per MoE layer per token loaded while the step waits (demand, reload). */
  syncExpertsPerLayer: number;
  /** Expert equivalents per MoE layer per token loaded ahead (prefetch), overlapped with compute. */
  prefetchExpertsPerLayer: number;
  syncsPerToken: number;
  /** Bits per stored expert weight (default 16; cached at its quantization). */
  expertBits?: number;
  /** floe: sparsity `s` and up bits (its computed bytes are the kept rows and the quantized up). */
  sparsity?: number;
  upBits?: number;
}

/** One projected row. */
export interface Projection {
  policy: string;
  device: string;
  /** NaN when the policy's resident bytes do not fit the device. */
  tokensPerS: number;
  computeMs: number;
  overlapMs: number;
  blockingMs: number;
  syncMs: number;
}

/** Projects one policy's decode rate on `device` for `model` (see the module doc). */
export function projectDecode(t: MeasuredTraffic, model: TargetModel, device: DeviceProfile): Projection {
  const { layers: L, experts: E, topK: K, hidden: C, intermediate: F } = model;
  const expertParams = 3 * C * F;
  const bits = t.expertBits ?? 16;
  const expertBytes = (expertParams * bits) / 8;
  const dense = model.nonExpertParams * 2;
  let computeBytes = dense + L * K * expertBytes;
  if (t.policy === "floe") {
    const kept = 1 - (t.sparsity ?? 0);
    // the up projection of the K routed and the K predicted experts, and the kept f16 gate/down rows
    computeBytes = dense + L * K * (2 * (C * F * (t.upBits ?? 2)) / 8 + 2 * C * F * kept * 2);
  }
  const params = computeBytes / 2; // as f16, for the FLOP bound (2 FLOPs per weight read)
  const computeMs = Math.max(computeBytes / device.memGBps / 1e6, (2 * params / device.flops) * 1e3);
  const overlapMs = (t.prefetchExpertsPerLayer * L * expertBytes) / device.linkGBps / 1e6;
  const blockingMs = (t.syncExpertsPerLayer * L * expertBytes) / device.linkGBps / 1e6;
  const syncMs = t.syncsPerToken * device.syncMs;
  const fits = t.policy !== "resident" || dense + L * E * expertBytes <= device.memoryBytes;
  const ms = Math.max(computeMs, overlapMs) + blockingMs + syncMs;
  return {
    policy: t.policy,
    device: device.name,
    tokensPerS: fits ? 1000 / ms : NaN,
    computeMs,
    overlapMs,
    blockingMs,
    syncMs,
  };
}

/**
 * A bench row's counters in expert equivalents: bytes per token over (one whole f32 expert of the
 * measured model · its MoE layers), split into prefetch (overlapped) and the rest (waited for).
 *
 * @param moved bytes per decoded token by kind (`demand`, `prefetch`, `reload`)
 * @param expertBytes bytes of one whole expert as the measured run moved it (f32)
 * @param moeLayers MoE layers of the measured model
 */
export function trafficOf(
  policy: string,
  moved: { demand: number; prefetch: number; reload: number },
  expertBytes: number,
  moeLayers: number,
  syncsPerToken: number,
  extra: Pick<MeasuredTraffic, "expertBits" | "sparsity" | "upBits"> = {},
): MeasuredTraffic {
  const per = expertBytes * moeLayers;
  return {
    policy,
    syncExpertsPerLayer: (moved.demand + moved.reload) / per,
    prefetchExpertsPerLayer: moved.prefetch / per,
    syncsPerToken,
    ...extra,
  };
}
