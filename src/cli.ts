/**
 * The Ferry command line: `deno task ferry <command> [options]`.
 *
 *   info                    the compute devices here: adapter, features, limits
 *   inspect PATH            tensors of a .safetensors file or an HF checkpoint folder
 *
 * Errors go to stderr with a non-zero exit status.
 * @module
 */
import { parseArgs } from "node:util";
import { createDevice, hasWebGpu } from "./device/create_device.ts";
import { formatBytes } from "./device/ledger.ts";
import { DTYPE_BYTES, SafetensorsFile } from "./io/safetensors.ts";
import { ShardedCheckpoint } from "./io/sharded.ts";

const USAGE = `usage: deno task ferry <command> [options]

commands:
  info                 show the compute devices (WebGPU adapter, CPU reference)
  inspect PATH         list the tensors of a .safetensors file or HF checkpoint folder
                       [--limit N] rows to print (default 40, 0 = all)
`;

async function info(): Promise<void> {
  const backends = (await hasWebGpu()) ? ["webgpu", "cpu"] as const : ["cpu"] as const;
  for (const backend of backends) {
    const dev = await createDevice({ backend });
    console.log(`${dev.info.backend}: ${dev.info.adapter}${dev.info.isFallbackAdapter ? " (software)" : ""}`);
    if (backend === "webgpu") {
      console.log(`  features: ${dev.info.features.join(", ") || "none"}`);
      for (const [k, v] of Object.entries(dev.info.limits)) console.log(`  ${k}: ${v}`);
    }
    dev.destroy();
  }
  if (backends.length === 1) {
    console.log(
      "no WebGPU adapter: install mesa-vulkan-drivers and set DENO_WEBGPU_BACKEND=vulkan for a software one",
    );
  }
}

async function inspect(path: string, limit: number): Promise<void> {
  const stat = await Deno.stat(path);
  using ckpt = stat.isDirectory ? await ShardedCheckpoint.open(path) : null;
  using file = stat.isDirectory ? null : await SafetensorsFile.open(path);
  const names = ckpt ? ckpt.names : file!.names;
  const infoOf = (n: string) => ckpt ? ckpt.info(n) : file!.info(n);
  let params = 0;
  let bytes = 0;
  const byDtype = new Map<string, number>();
  const rows: string[][] = [];
  for (const name of names) {
    const i = infoOf(name);
    const n = i.byteLength / DTYPE_BYTES[i.dtype];
    params += n;
    bytes += i.byteLength;
    byDtype.set(i.dtype, (byDtype.get(i.dtype) ?? 0) + n);
    rows.push([name, i.dtype, `[${i.shape.join(", ")}]`, formatBytes(i.byteLength)]);
  }
  const shown = limit > 0 ? rows.slice(0, limit) : rows;
  const w = [0, 1, 2].map((c) => Math.max(...shown.map((r) => r[c].length), 4));
  for (const r of shown) {
    console.log(`${r[0].padEnd(w[0])}  ${r[1].padEnd(w[1])}  ${r[2].padEnd(w[2])}  ${r[3]}`);
  }
  if (shown.length < rows.length) console.log(`... ${rows.length - shown.length} more (--limit 0 shows all)`);
  const files = ckpt ? `${ckpt.shardFiles.length} file(s)` : "1 file";
  const dtypes = [...byDtype].map(([d, n]) => `${d} ${n.toLocaleString("en-US")}`).join(", ");
  console.log(
    `\n${names.length} tensors in ${files}; ${params.toLocaleString("en-US")} parameters (${dtypes}); ${
      formatBytes(bytes)
    }`,
  );
}

/** Runs the command line on `args`; returns the exit status. */
export async function main(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: { help: { type: "boolean", short: "h" }, limit: { type: "string", default: "40" } },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return command || values.help ? 0 : 2;
  }
  switch (command) {
    case "info":
      await info();
      return 0;
    case "inspect": {
      if (rest.length !== 1) {
        throw new TypeError("Cannot inspect: expected one PATH (a .safetensors file or a folder)");
      }
      const limit = Number(values.limit);
      if (!Number.isInteger(limit) || limit < 0) {
        throw new RangeError(
          `Cannot inspect: --limit must be a non-negative integer: received ${values.limit}`,
        );
      }
      await inspect(rest[0], limit);
      return 0;
    }
    default:
      throw new TypeError(`Unknown command "${command}": expected one of info, inspect (see --help)`);
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (err) {
    console.error(`ferry: ${err instanceof Error ? err.message : err}`);
    Deno.exit(1);
  }
}
