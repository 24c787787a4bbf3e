/**
 * `ferry loram run` as a subprocess on the embedded brown-dense model (a couple of LoRA steps):
 * every artefact is written and eval.json holds the figures; bad input is one line on stderr and
 * nothing is written.
 */
import assert from "node:assert/strict";
import { planFromJSON } from "../../src/compressors/prune/pruning_plan.ts";
import { ferry } from "../_cli.ts";

const MODEL = "examples/models/brown-dense";

Deno.test("ferry loram run: a short LoRAM-Rand run on brown-dense writes every artefact", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry-loram-cli-" });
  try {
    const out = `${dir}/run`;
    const args = ["--model", MODEL, "--method", "rand", "--ratio", "0.5", "--genre", "cj", "--steps", "2"];
    const r = await ferry(
      "loram",
      "run",
      ...args,
      "--layers",
      "2:6",
      "--batch",
      "2",
      "--block",
      "32",
      "--eval-tokens",
      "64",
      "--eval-docs",
      "3",
      "--out",
      out,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /LoRAM-rand \(infer original\)/);
    assert.match(r.stdout, /in-domain +out: Brown +out: SOTU/);
    // Three documents per domain: the claim is judged on paired intervals over them.
    assert.match(r.stdout, /LoRAM-Rand: in-domain ppl .*\(ratio \d\.\d{3}, 95% CI \d\.\d{3}–\d\.\d{3}: /);
    for (
      const f of [
        "plan.json",
        "pruned/tokenizer.json",
        "pruned-adapter/adapter_config.json",
        "adapter/adapter_model.safetensors",
        "merged/config.json",
        "training_log.arrow",
      ]
    ) {
      assert.ok((await Deno.stat(`${out}/${f}`)).isFile, f);
    }
    const plan = planFromJSON(JSON.parse(await Deno.readTextFile(`${out}/plan.json`)));
    assert.deepEqual(plan.layers.map((l) => l.index), [2, 3, 4, 5]);
    const e = JSON.parse(await Deno.readTextFile(`${out}/eval.json`));
    assert.equal(e.params.params, 3_935_424);
    assert.equal(e.params.measured_weight_bytes, 4 * e.params.pruned_params);
    for (const row of ["original", "pruned", "pruned_lora", "loram"]) {
      const p = e.ppl[row];
      assert.ok(p.in_domain > 1 && p.out_of_domain > 1 && p.out_of_domain_sotu > 1, row);
      assert.deepEqual(Object.keys(p.documents), ["in_domain", "out_of_domain", "out_of_domain_sotu"], row);
      assert.equal(p.documents.in_domain.scores.length, 3);
    }
    assert.equal(e.train.steps, 2);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ferry loram run: bad input is one line and writes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ferry-loram-cli-bad-" });
  try {
    const out = `${dir}/run`;
    const base = ["--genre", "cn", "--steps", "2", "--out", out];
    const cases: [string[], RegExp][] = [
      [
        ["--model", MODEL, "--method", "rand", "--ratio", "1.5", ...base],
        /--ratio must be a number in \(0, 1\)/,
      ],
      [
        ["--model", MODEL, "--method", "rand", "--ratio", "0.5", "--layers", "6:12", ...base],
        /outside the model's 8 layers/,
      ],
      [
        ["--model", "examples/models/brown-moe", "--method", "stru", "--ratio", "0.5", ...base],
        /only dense Llama-family models/,
      ],
      [[
        "--model",
        MODEL,
        "--method",
        "rand",
        "--ratio",
        "0.5",
        "--genre",
        "zz",
        "--steps",
        "2",
        "--out",
        out,
      ], /--genre must be a Brown genre/],
      [["--model", MODEL, "--method", "semi", "--ratio", "0.4", ...base], /must be 0\.5/],
      [
        ["--model", MODEL, "--method", "rand", "--ratio", "0.5", "--recover", "oneA", ...base],
        /--recover must be zeroA or normA/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await ferry("loram", "run", ...args);
      assert.equal(r.code, 1, args.join(" "));
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, message);
    }
    assert.deepEqual([...Deno.readDirSync(dir)], [], "nothing written");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
