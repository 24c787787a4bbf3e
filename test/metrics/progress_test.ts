import assert from "node:assert/strict";
import { type JupyterDisplayFn, ProgressBar } from "../../src/metrics/progress.ts";

const CLEAR = "\x1b[K"; // erase to the end of the line

function clock() {
  const c = { t: 0, now: () => c.t };
  return c;
}

Deno.test("ProgressBar tty mode redraws one line with \\r, throttled, and ends it on finish", () => {
  const c = clock();
  const out: string[] = [];
  const bar = new ProgressBar({
    total: 10,
    mode: "tty",
    intervalMs: 100,
    write: (s) => void out.push(s),
    now: c.now,
  });
  bar.start();
  for (let step = 1; step <= 10; step++) {
    c.t += 40;
    bar.update(step, { loss: 2, lr: 3e-4, tokensPerS: 1500 });
  }
  bar.message("step 10: eval_loss 1.9");
  bar.finish();
  assert.ok(out.length < 10, `throttled: ${out.length} writes`);
  assert.ok(out.every((s) => s.startsWith("\r")));
  assert.ok(out[0].endsWith(CLEAR));
  assert.match(
    out[0].slice(0, -CLEAR.length),
    /^\rtrain \d+\/10 \[#+·*\] loss 2\.0000 lr 3\.00e-4 1\.5k tok\/s 0:00 eta 0:0\d$/,
  );
  assert.ok(out.at(-2)!.startsWith(`\r${CLEAR}step 10: eval_loss 1.9\n`));
  assert.ok(out.at(-1)!.endsWith("\n"));
});

Deno.test("ProgressBar lines mode prints every N steps and the last; ETA from this session's rate", () => {
  const c = clock();
  let out = "";
  const bar = new ProgressBar({ total: 100, mode: "lines", every: 25, write: (s) => out += s, now: c.now });
  bar.start(50); // resumed at step 50
  for (let step = 51; step <= 100; step++) {
    c.t += 1000;
    bar.update(step, { loss: 1 });
  }
  const lines = out.trim().split("\n");
  assert.deepEqual(lines.map((l) => l.split(" ")[1]), ["75/100", "100/100"]);
  assert.match(lines[0], /0:25 eta 0:25$/);
});

Deno.test("ProgressBar jupyter mode displays an HTML bar once, then updates it by display_id", () => {
  const calls: { bundle: Record<string, string>; options: Parameters<JupyterDisplayFn>[1] }[] = [];
  const display: JupyterDisplayFn = (bundle, options) => void calls.push({ bundle, options });
  const c = clock();
  const bar = new ProgressBar({ total: 4, display, now: c.now, write: () => {} });
  assert.equal(bar.mode, "jupyter"); // "auto" picks the kernel when a display function exists
  bar.start();
  for (let step = 1; step <= 4; step++) {
    c.t += 1000;
    bar.update(step, { loss: 1.5 });
  }
  assert.equal(calls.length, 4);
  assert.equal(calls[0].options.update, undefined);
  assert.ok(calls.slice(1).every((x) => x.options.update === true));
  assert.equal(new Set(calls.map((x) => x.options.display_id)).size, 1);
  assert.match(calls[3].bundle["text/html"], /<progress value="4" max="4"/);
  assert.match(calls[3].bundle["text/plain"], /^train 4\/4 loss 1\.5000/);
});

Deno.test("ProgressBar off mode writes nothing; jupyter without a kernel falls back to lines", () => {
  let out = "";
  const off = new ProgressBar({ total: 2, mode: "off", write: (s) => out += s });
  off.start();
  off.update(2, { loss: 1 });
  off.message("x");
  off.finish();
  assert.equal(out, "");
  assert.equal(new ProgressBar({ total: 2, mode: "jupyter", write: () => {} }).mode, "lines");
  assert.throws(() => new ProgressBar({ total: -1 }), RangeError);
});
