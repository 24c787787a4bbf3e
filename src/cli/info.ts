/**
 * `ferry info`: the compute devices here (WebGPU adapter, features and limits; the CPU backend and its BLAS).
 * @module
 */
import { createDevice, hasWebGpu } from "../device/create_device.ts";
import { noPositionals, parseFlags } from "./_common.ts";

export const INFO_USAGE =
  `  info                 show the compute devices (WebGPU adapter, CPU backend and its BLAS)`;

/** Runs `ferry info`. */
export async function infoCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags("info", args, {});
  if (values.help) {
    console.log(`usage: deno task ferry info\n\n${INFO_USAGE}`);
    return 0;
  }
  noPositionals("info", positionals);
  const backends = (await hasWebGpu()) ? ["webgpu", "cpu"] as const : ["cpu"] as const;
  for (const backend of backends) {
    const dev = await createDevice({ backend });
    console.log(`${dev.info.backend}: ${dev.info.adapter}${dev.info.isFallbackAdapter ? " (software)" : ""}`);
    if (backend === "webgpu") {
      console.log(`  features: ${dev.info.features.join(", ") || "none"}`);
      for (const [k, v] of Object.entries(dev.info.limits)) console.log(`  ${k}: ${v}`);
    } else if (dev.info.blas) {
      const b = dev.info.blas;
      console.log(`  blas: ${b.library} (${b.threads} threads, core ${b.coreType})\n  config: ${b.config}`);
    } else {
      console.log("  blas: none; GEMMs run the TypeScript reference (apt-get install libopenblas0-pthread)");
    }
    dev.destroy();
  }
  if (backends.length === 1) {
    console.log(
      (globalThis as { Bun?: unknown }).Bun !== undefined
        ? "no WebGPU on Bun (it has no navigator.gpu); the CPU backend runs everything, its GEMMs through bun:ffi"
        : "no WebGPU adapter: install mesa-vulkan-drivers and set DENO_WEBGPU_BACKEND=vulkan for a software one",
    );
  }
  return 0;
}
