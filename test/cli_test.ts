import assert from "node:assert/strict";

async function ferry(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", "src/cli.ts", ...args],
    env: { NO_COLOR: "1", FERRY_BACKEND: "cpu" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("ferry inspect lists the tensors of a safetensors file", async () => {
  const r = await ferry("inspect", "test/fixtures/safetensors/tiny.safetensors", "--limit", "0");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /embed\.weight\s+F32\s+\[2, 3\]\s+24 B/);
  assert.match(r.stdout, /12 tensors in 1 file; 30 parameters/);
});

Deno.test("ferry reports bad input on stderr with a non-zero exit", async () => {
  const missing = await ferry("inspect", "no/such/file.safetensors");
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^ferry: .*no\/such\/file\.safetensors/);
  const unknown = await ferry("frobnicate");
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /Unknown command "frobnicate": expected one of info, inspect/);
  const bad = await ferry("inspect", "x", "--limit=-3");
  assert.match(bad.stderr, /--limit must be a non-negative integer: received -3/);
});

Deno.test("ferry info names the CPU reference backend", async () => {
  const r = await ferry("info");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /cpu: cpu \(TypeScript reference\)/);
});
