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
