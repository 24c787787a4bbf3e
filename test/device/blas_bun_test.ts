/**
 * The BLAS binding under Bun (`bun:ffi`), as under Deno: Bun comes from npm (`npx -y bun@1`).
 * Ignored, with the reason, where Bun cannot be fetched or no BLAS is installed.
 */
import assert from "node:assert/strict";
import { loadBlas } from "../../src/device/blas.ts";

async function bunVersion(): Promise<string | null> {
  try {
    const r = await new Deno.Command("npx", {
      args: ["-y", "bun@1", "--version"],
      stdout: "piped",
      stderr: "null",
    })
      .output();
    return r.success ? new TextDecoder().decode(r.stdout).trim() : null;
  } catch {
    return null;
  }
}

const bun = await bunVersion();
const blas = await loadBlas({ quiet: true });
const why = !bun ? "npx -y bun@1 is not available" : !blas ? "no BLAS installed" : "";

Deno.test({
  name: `Bun loads the BLAS through bun:ffi and computes what Deno does${why ? ` (ignored: ${why})` : ""}`,
  ignore: why !== "",
  fn: async () => {
    const r = await new Deno.Command("npx", {
      args: ["-y", "bun@1", "run", "test/device/_bun_blas.ts"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stdout);
    assert.ok(r.success, `bun exited with ${r.code}: ${new TextDecoder().decode(r.stderr)}`);
    const got = JSON.parse(out.trim().split("\n").pop()!);
    assert.deepEqual(got.gemm, [1, 6, 4, 15]); // [[1,2,3],[4,5,6]] x [[1,0,0],[1,1,1]]ᵀ
    assert.deepEqual(got.gemv, [0, 0, 0, 0, 0, 6, 15, 0, 0, 0, 0, 0]); // written at the view's offset only
    assert.equal(got.blas.library, blas!.info.library);
    assert.equal(got.blas.config, blas!.info.config);
  },
});
