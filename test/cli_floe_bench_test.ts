/**
 * `ferry floe bench` as a subprocess on the CPU backend: the JSON holds one object per policy with
 * the fields, the Arrow file has the same rows, a policy that does not fit gets a row that
 * says so, and bad input (no policy fits, unknown policy, a dense model) is one line, nothing written.
 * @module
 */
import assert from "node:assert/strict";
import { tableFromIPC } from "apache-arrow";
import { ferry } from "./_cli.ts";

const MODEL = "test/fixtures/models/mixtral-top2-f32";
const dir = await Deno.makeTempDir({ prefix: "ferry-cli-floe-bench-" });

Deno.test("ferry floe bench writes the systems table as JSON and Arrow", async () => {
  const json = `${dir}/out/bench.json`;
  const r = await ferry(
    "floe",
    "bench",
    "--model",
    MODEL,
    "--budget",
    "2MiB",
    "--policies",
    "ondemand,cached,floe,resident",
    "--sparsity",
    "0.5",
    "--group-size",
    "16",
    "--cache-slots",
    "3",
    "--prompt-tokens",
    "5",
    "--tokens",
    "4",
    "--json",
    json,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /policy\s+decode tok\/s/);
  const rows = JSON.parse(await Deno.readTextFile(json));
  assert.deepEqual(rows.map((o: { policy: string }) => o.policy), ["ondemand", "cached", "floe", "resident"]);
  for (const o of rows) {
    for (
      const k of [
        "policy",
        "decode_tokens_per_s",
        "prefill_s",
        "bytes_per_token",
        "reloads_per_token",
        "expert_hit_rate",
        "peak_device_bytes",
        "budget_bytes",
      ]
    ) assert.ok(k in o, `${o.policy}: ${k}`);
    assert.equal(o.budget_bytes, 2 * 2 ** 20);
    assert.ok(o.fits && o.peak_device_bytes <= o.budget_bytes, o.policy);
    assert.ok(o.peak_by_category.weights > 0 && o.peak_by_category.weights <= o.peak_device_bytes, o.policy);
  }
  assert.equal(rows[0].expert_hit_rate, 0); // ondemand never hits
  assert.match(rows[1].settings, /slots=3 bits=4 eviction=lru/);
  assert.equal(rows[3].bytes_per_token, 0); // resident moves nothing
  const table = tableFromIPC(await Deno.readFile(`${dir}/out/bench.arrow`));
  assert.equal(table.numRows, 4);
});

Deno.test("ferry floe bench: an unfit policy gets a row; no fit at all is one line, nothing written", async () => {
  const json = `${dir}/small.json`;
  const ok = await ferry(
    "floe",
    "bench",
    "--model",
    MODEL,
    "--budget",
    "250KB",
    "--policies",
    "ondemand,resident",
    "--tokens",
    "3",
    "--prompt-tokens",
    "3",
    "--json",
    json,
  );
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(
    ok.stdout,
    /resident does not fit: Cannot plan the offload run: the budget of .* is below the minimum/,
  );
  const rows = JSON.parse(await Deno.readTextFile(json));
  assert.deepEqual(rows.map((o: { fits: boolean }) => o.fits), [true, false]);
  const cases: [string[], RegExp][] = [
    [
      ["--budget", "10KB"],
      /no policy fits the budget of 9.77 KiB: the model.s non-expert weights alone exceed the budget/,
    ],
    [["--budget", "2MiB", "--policies", "ondemand,lru"], /unknown policy "lru" in --policies/],
    [["--budget", "lots"], /--budget must be a byte count such as 700000000/],
    [["--budget", "2MiB", "--floe-dense-layers", "5"], /--floe-dense-layers 5 is not a MoE layer/],
    [["--budget", "2MiB", "--floe-channels", "all"], /--floe-channels must be one of predicted, exact/],
  ];
  for (const [flags, message] of cases) {
    const out = `${dir}/bad.json`;
    const r = await ferry("floe", "bench", "--model", MODEL, ...flags, "--json", out);
    assert.equal(r.code, 1);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split("\n").length, 1);
    await assert.rejects(Deno.stat(out), Deno.errors.NotFound);
  }
  const dense = await ferry(
    "floe",
    "bench",
    "--model",
    "test/fixtures/models/llama-gqa-tied-f32",
    "--budget",
    "1GB",
  );
  assert.equal(dense.code, 1);
  assert.match(dense.stderr, /has no MoE layers/);
});

Deno.test("ferry floe bench --sweep-budgets writes the sweep, the cache table and the report", async () => {
  const json = `${dir}/sweep/b.json`;
  const r = await ferry(
    "floe",
    "bench",
    "--model",
    MODEL,
    "--budget",
    "1MiB",
    "--policies",
    "ondemand,cached",
    "--cache-bits",
    "16",
    "--prompt-tokens",
    "4",
    "--tokens",
    "4",
    "--sweep-budgets",
    "250KB,1MiB",
    "--json",
    json,
  );
  assert.equal(r.code, 0, r.stderr);
  const sweep = JSON.parse(await Deno.readTextFile(`${dir}/sweep/b_sweep.json`));
  assert.deepEqual(sweep.map((o: { budget_bytes: number }) => o.budget_bytes), [
    250000,
    250000,
    2 ** 20,
    2 ** 20,
  ]);
  const cache = JSON.parse(await Deno.readTextFile(`${dir}/sweep/b_cache.json`));
  // (lru, lfu) × 4 sizes × 2 MoE layers; a cache that holds every expert hits at least as often as 2 slots
  assert.equal(cache.length, 16);
  const mean = (ev: string, n: number) =>
    cache.find((o: { eviction: string; slots: number }) => o.eviction === ev && o.slots === n).mean_hit_rate;
  assert.ok(mean("lru", 8) >= mean("lru", 2));
  assert.match(await Deno.readTextFile(`${dir}/sweep/b_report.html`), /Cache table/);
});

Deno.test("ferry floe bench cleanup", async () => {
  await Deno.remove(dir, { recursive: true });
});

Deno.test("ferry floe bench --plan prints each policy's minimum budget, runs nothing, and agrees with a run", async () => {
  const json = `${dir}/plan/p.json`;
  const args = ["--model", MODEL, "--policies", "ondemand,floe", "--sparsity", "0.5", "--group-size", "16"];
  const lengths = ["--prompt-tokens", "5", "--tokens", "4"];
  const r = await ferry(
    "floe",
    "bench",
    ...args,
    ...lengths,
    "--plan",
    "--budget",
    "1MiB",
    "--dtype",
    "f16",
    "--json",
    json,
  );
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /smallest budgets with f16 weights/);
  assert.match(r.stdout, /ondemand: (fits|does not fit) a budget of 1.00 MiB/);
  const rows = JSON.parse(await Deno.readTextFile(json));
  assert.deepEqual(rows.map((o: { policy: string }) => o.policy), ["ondemand", "floe"]);
  for (const o of rows) {
    const transient = Math.max(o.activation_bytes + o.transfer_bytes, o.setup_bytes);
    assert.equal(o.minimum_bytes, o.held_bytes + o.kv_bytes + transient + o.policy_bytes);
    assert.equal(o.weights_dtype, "f16");
  }
  // A run at exactly the planned minimum is accepted; one byte less is refused.
  for (const o of rows) {
    const run = (budget: number) =>
      ferry(
        "floe",
        "bench",
        ...args,
        ...lengths,
        "--policies",
        o.policy,
        "--dtype",
        "f16",
        "--budget",
        `${budget}`,
      );
    const at = await run(o.minimum_bytes);
    assert.equal(at.code, 0, at.stderr);
    const below = await run(o.minimum_bytes - 1);
    assert.equal(below.code, 1, `${o.policy} ran below its minimum`);
    assert.match(below.stderr, /below the minimum/);
  }
});
