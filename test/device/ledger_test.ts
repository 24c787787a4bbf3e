import assert from "node:assert/strict";
import { formatBytes, MemoryLedger } from "../../src/device/ledger.ts";
import { OutOfBudgetError } from "../../src/errors.ts";

Deno.test("MemoryLedger tracks current and peak bytes per category", () => {
  const ledger = new MemoryLedger();
  const w = ledger.allocate(1000, "weights", "w");
  const a = ledger.allocate(300, "activations", "a");
  const b = ledger.allocate(200, "activations", "b");
  assert.equal(ledger.current(), 1500);
  ledger.release(a);
  const c = ledger.allocate(50, "activations", "c");
  assert.equal(ledger.current("activations"), 250);
  assert.equal(ledger.peak("activations"), 500);
  assert.equal(ledger.peak(), 1500);
  assert.equal(ledger.liveCount, 3);
  assert.deepEqual(ledger.snapshot(), {
    mem_bytes: 1250,
    mem_peak_bytes: 1500,
    mem_weights_bytes: 1000,
    mem_weights_peak_bytes: 1000,
    mem_activations_bytes: 250,
    mem_activations_peak_bytes: 500,
  });
  for (const x of [w, b, c]) ledger.release(x);
  assert.equal(ledger.current(), 0);
  ledger.resetPeak();
  assert.equal(ledger.peak(), 0);
});

Deno.test("MemoryLedger refuses allocations over budget with the breakdown", () => {
  const ledger = new MemoryLedger({ budgetBytes: 4096 });
  ledger.allocate(3000, "experts", "e0");
  ledger.allocate(1000, "kv", "layer0");
  const err = assert.throws(() => ledger.allocate(200, "activations", "logits"), OutOfBudgetError);
  void err;
  assert.throws(
    () => ledger.allocate(200, "activations", "logits"),
    /Cannot allocate 200 B for activations \("logits"\): budget is 4.00 KiB, 3.91 KiB in use \(experts 2.93 KiB, kv 1000 B\)\. .*raise budgetBytes/,
  );
  assert.equal(ledger.current(), 4000, "a refused allocation changes nothing");
});

Deno.test("MemoryLedger rejects bad input", () => {
  const ledger = new MemoryLedger();
  assert.throws(() => new MemoryLedger({ budgetBytes: 0 }), /budgetBytes must be positive: received 0/);
  assert.throws(() => ledger.allocate(-1, "weights"), /bytes must be a non-negative integer: received -1/);
  assert.throws(
    () => ledger.allocate(4, "scratch" as "weights"),
    /unknown memory category "scratch": expected one of weights/,
  );
  const a = ledger.allocate(4, "grads", "g");
  ledger.release(a);
  assert.throws(() => ledger.release(a), /already released/);
});

Deno.test("formatBytes picks a readable unit", () => {
  assert.equal(formatBytes(512), "512 B");
  assert.equal(formatBytes(1536), "1.50 KiB");
  assert.equal(formatBytes(200 * 2 ** 20), "200 MiB");
});

Deno.test("MemoryLedger.retag moves bytes between categories without changing the total", () => {
  const ledger = new MemoryLedger();
  const a = ledger.allocate(64, "activations", "dx");
  ledger.retag(a, "grads");
  assert.equal(a.category, "grads");
  assert.equal(ledger.current("activations"), 0);
  assert.equal(ledger.current("grads"), 64);
  assert.equal(ledger.peak("grads"), 64);
  assert.equal(ledger.current(), 64);
  ledger.release(a);
  assert.equal(ledger.current("grads"), 0);
  assert.throws(() => ledger.retag(a, "grads"), /already released/);
});
