/**
 * Running the command line as a subprocess the way `deno task ferry` runs it (CPU backend), for the
 * CLI tests.
 * @module
 */

/** Runs `src/cli.ts` with `args`; exit code, stdout and stderr. */
export async function ferry(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", "--allow-ffi", "src/cli.ts", ...args],
    env: { NO_COLOR: "1", FERRY_BACKEND: "cpu" },
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/**
 * A copy of the `llama-gqa-tied-f32` fixture with the test tokenizer (`test/fixtures/cli/`) beside
 * it, in a temporary folder; remove it when done.
 */
export async function checkpointWithTokenizer(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "ferry_cli_" });
  const from = "test/fixtures/models/llama-gqa-tied-f32";
  for (const f of ["config.json", "model.safetensors"]) await Deno.copyFile(`${from}/${f}`, `${dir}/${f}`);
  await Deno.copyFile("test/fixtures/cli/tokenizer.json", `${dir}/tokenizer.json`);
  return dir;
}
