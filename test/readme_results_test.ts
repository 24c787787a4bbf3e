/**
 * The README's result figures are the committed results': the LoRAM table is `summary.md` verbatim, and
 * the FloE figures are read back from `quality.arrow`, `mask_signal.arrow` and `compression.arrow` of
 * the test bed. A rerun that changes a result fails here until the README says the new figure.
 * @module
 */
import assert from "node:assert/strict";
import { tableFromIPC } from "apache-arrow";

const README = await Deno.readTextFile("README.md");
// The README wraps lines: compare with single spaces.
const flat = README.replace(/\s+/g, " ");
const rows = async (path: string) =>
  tableFromIPC(await Deno.readFile(path)).toArray().map((r) => r.toJSON() as Record<string, unknown>);

Deno.test("README: the LoRAM table is examples/results/loram-brown-dense-10m/summary.md", async () => {
  const table = await Deno.readTextFile("examples/results/loram-brown-dense-10m/summary.md");
  assert.ok(README.includes(table.trimEnd()), "README.md does not hold summary.md's table; paste it in");
});

Deno.test("README: FloE's figures on brown-moe-28m come from its committed tables", async () => {
  const dir = "examples/results/floe-brown-moe-28m";
  const quality = await rows(`${dir}/quality.arrow`);
  const q = (bits: number, mode: string, s: number) => {
    const r = quality.find((r) => r.up_bits === bits && r.mode === mode && r.sparsity === s);
    assert.ok(r, `no quality row: up ${bits} ${mode} s ${s}`);
    return r as Record<string, number>;
  };
  const pct = (v: number, d: number) => `${v.toFixed(d)}%`;
  const cited = (r: Record<string, number>, d: number) =>
    `+${pct(r.delta_pct, d)} (${pct(r.delta_lo_pct, d)} to ${pct(r.delta_hi_pct, d)})`;
  const dense = quality.find((r) => r.mode === "dense") as Record<string, number>;
  const want = [
    `dense perplexity ${dense.perplexity.toFixed(2)}`,
    cited(q(16, "threshold", 0.5), 2),
    cited(q(16, "threshold", 0.7), 1),
    cited(q(16, "threshold", 0.8), 1),
    cited(q(16, "threshold", 0.9), 1),
    `s = 0.5: +${pct(q(2, "threshold", 0.5).delta_pct, 2)}`,
    `+${pct(q(2, "threshold", 0.9).delta_pct, 1)}, ${pct(q(2, "threshold", 0.9).delta_lo_pct, 1)} to ${
      pct(q(2, "threshold", 0.9).delta_hi_pct, 1)
    }`,
    `+${pct(q(2, "topk", 0.9).delta_pct, 1)} (${pct(q(2, "topk", 0.9).delta_lo_pct, 1)} to ${
      pct(q(2, "topk", 0.9).delta_hi_pct, 1)
    })`,
  ];
  const masks = await rows(`${dir}/mask_signal.arrow`);
  const m = (signal: string, s: number) =>
    (masks.find((r) => r.signal === signal && r.sparsity === s) as Record<string, number>).delta_pct;
  want.push(`down input (+${pct(m("down-input", 0.5), 2)}, +${pct(m("down-input", 0.7), 1)})`);
  want.push(`up output (+${pct(m("up", 0.5), 2)}, +${pct(m("up", 0.7), 1)})`);
  want.push(`gate output (+${pct(m("gate", 0.5), 1)}, +${pct(m("gate", 0.7), 1)})`);
  want.push(
    `(+${pct(m("up", 0.9), 1)}, against +${pct(m("gate", 0.9), 1)} by the gate and +${
      pct(m("down-input", 0.9), 1)
    } by the down input)`,
  );
  const floe = (await rows(`${dir}/compression.arrow`)).find((r) => r.config === "floe") as Record<
    string,
    number
  >;
  want.push(`INT2 up is ${floe.cr_with_meta.toFixed(2)}×`);
  for (const w of want) assert.ok(flat.includes(w), `README.md does not say "${w}" (from ${dir})`);
});

Deno.test("README: the compressor study's figures come from compress-test-beds/metrics.arrow", async () => {
  const metrics = await rows("examples/results/compress-test-beds/metrics.arrow");
  const of = (section: string, method: string, layers?: string) => {
    const r = metrics.find((r) =>
      r.section === section && r.method === method && (!layers || String(r.layers).startsWith(layers))
    );
    assert.ok(r, `no ${section} row for ${method}`);
    return r as Record<string, number>;
  };
  const base = of("structured", "none").ppl;
  const want = [`(perplexity ${base.toFixed(2)})`];
  for (const method of ["random", "l2", "activation"]) {
    const r = of("structured", method, "[4,");
    want.push(
      `${(100 * (r.ppl / base - 1)).toFixed(1)}% (${r.change_lo_pct.toFixed(1)}% to ${
        r.change_hi_pct.toFixed(1)
      }%)`,
    );
  }
  for (
    const [method, name] of [["hqq w3 (up)", "up"], ["hqq w1 (gate)", "gate"], ["hqq w2 (down)", "down"]]
  ) {
    const r = of("sensitivity", method);
    want.push(
      `${name} +${r.change_pct.toFixed(2)}% (${r.change_lo_pct.toFixed(2)}% to ${
        r.change_hi_pct.toFixed(2)
      }%)`,
    );
  }
  const d = of("sensitivity", "down vs up");
  want.push(
    `INT2 down costs ${d.change_pct.toFixed(2)}% (${d.change_lo_pct.toFixed(1)}% to ${
      d.change_hi_pct.toFixed(1)
    }%)`,
  );
  for (const w of want) assert.ok(flat.includes(w), `README.md does not say "${w}" (compress-test-beds)`);
});
