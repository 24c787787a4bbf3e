/**
 * Ferry on Bun: `bun run src/cli.ts ppl …` prints what `deno task ferry ppl …` prints (the same
 * perplexity to the last digit), through the runtime module's `node:` APIs and Bun's FFI for the
 * BLAS. Bun comes from npm (`npx -y bun@1`); ignored, with the reason, where it cannot be fetched.
 */
import assert from "node:assert/strict";

const ARGS = ["ppl", "--model", "examples/models/brown-moe", "--data", "brown:cn", "--max-tokens", "512"];

async function output(cmd: string, args: string[]): Promise<{ ok: boolean; out: string; err: string }> {
  try {
    const r = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
    const d = new TextDecoder();
    return { ok: r.success, out: d.decode(r.stdout), err: d.decode(r.stderr) };
  } catch (e) {
    return { ok: false, out: "", err: (e as Error).message };
  }
}

const bun = await output("npx", ["-y", "bun@1", "--version"]);
const why = bun.ok ? "" : "npx -y bun@1 is not available";

Deno.test({
  name: `Bun runs ferry ppl and prints Deno's perplexity${why ? ` (ignored: ${why})` : ""}`,
  ignore: why !== "",
  fn: async () => {
    const onBun = await output("npx", ["-y", "bun@1", "run", "src/cli.ts", ...ARGS, "--backend", "cpu"]);
    assert.ok(onBun.ok, `bun failed: ${onBun.err.slice(-2000)}`);
    const onDeno = await output(Deno.execPath(), ["run", "-A", "src/cli.ts", ...ARGS, "--backend", "cpu"]);
    assert.ok(onDeno.ok, `deno failed: ${onDeno.err.slice(-2000)}`);
    const ppl = (s: string) => /perplexity\s+(\S+)/.exec(s)?.[1];
    assert.ok(ppl(onBun.out) !== undefined, onBun.out);
    assert.equal(ppl(onBun.out), ppl(onDeno.out));
    assert.equal(onBun.out, onDeno.out, "the whole report");
  },
});
