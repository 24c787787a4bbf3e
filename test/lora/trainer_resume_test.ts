/**
 * Crash-resume for real: a training subprocess is SIGKILLed after it wrote a checkpoint, started
 * again, and must finish with the same per-step losses as an uninterrupted run.
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { listCheckpoints } from "../../src/lora/checkpoint.ts";
import { loadRun } from "../../src/metrics/run_dir.ts";

const SCRIPT = new URL("./_fixtures/train_tiny.ts", import.meta.url).pathname;
const TOTAL = 16;
const EVERY = 3;

function train(runDir: string, sleepMs: number): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPT, runDir, String(TOTAL), String(EVERY), String(sleepMs)],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Waits for a successful exit; the progress text on stderr. */
async function finish(child: Deno.ChildProcess): Promise<string> {
  const { code, stderr } = await child.output();
  const text = new TextDecoder().decode(stderr);
  assert.equal(code, 0, text);
  return text;
}

async function trainRows(runDir: string) {
  const rows = (await loadRun(runDir)).table.toArray().map((r) => r.toJSON());
  return {
    train: rows.filter((r) => r.split === "train").map((r) => [r.step, r.loss, r.grad_norm, r.lr]),
    eval: rows.filter((r) => r.split === "eval").map((r) => [r.step, r.eval_loss]),
  };
}

Deno.test({
  name: "Trainer resumes a SIGKILLed run from its checkpoint and reproduces the uninterrupted losses",
  sanitizeResources: false,
  fn: async () => {
    const root = await Deno.makeTempDir();
    try {
      const straight = join(root, "straight");
      assert.doesNotMatch(await finish(train(straight, 0)), /resumed/);

      const crashed = join(root, "crashed");
      const child = train(crashed, 150); // slow steps, so the kill lands mid-run
      const deadline = Date.now() + 60_000;
      while (((await listCheckpoints(crashed)).at(-1)?.step ?? 0) < EVERY * 2) {
        assert.ok(Date.now() < deadline, "no checkpoint appeared within 60 s");
        await new Promise((r) => setTimeout(r, 20));
      }
      child.kill("SIGKILL");
      const status = await child.status;
      assert.equal(status.signal, "SIGKILL");
      await child.stdout.cancel();
      await child.stderr.cancel();
      const before = await listCheckpoints(crashed);
      assert.ok(before.at(-1)!.step < TOTAL, "the run finished before it was killed");

      const progress = await finish(train(crashed, 0));
      const last = before.at(-1)!;
      assert.ok(
        progress.includes(`resumed from step ${last.step} (${last.path})`),
        `the resumed run names its checkpoint:\n${progress}`,
      );
      const want = await trainRows(straight);
      const got = await trainRows(crashed);
      assert.equal(got.train.length, TOTAL);
      assert.deepEqual(got.train, want.train); // exact: same data, seeds, state bits
      assert.deepEqual(got.eval, want.eval);
      assert.deepEqual((await listCheckpoints(crashed)).map((c) => c.step), [15, 16]);
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});
