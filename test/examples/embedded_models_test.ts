/**
 * The embedded checkpoints (`EMBEDDED_MODELS` in `examples/models/`, written by
 * `examples/pretrain.ts`) and the LoRA adapter fine-tuned on one genre
 * (`examples/adapters/brown-dense-lora-cn`, written by `examples/lora_finetune.ts`): they load,
 * reproduce the figures their `eval.json` reports, and beat the unigram baseline.
 */
import assert from "node:assert/strict";
import { type BrownDocument, loadBrown } from "../../src/data/brown.ts";
import { tokenizeAndPack } from "../../src/data/pack.ts";
import { splitDocuments } from "../../src/data/splits.ts";
import { Tokenizer } from "../../src/io/tokenizer.ts";
import { loadLoraAdapter } from "../../src/lora/adapter_io.ts";
import { loadModel } from "../../src/models/load.ts";
import { EMBEDDED_MODELS } from "../../src/models/embedded.ts";
import { perplexity } from "../../src/models/perplexity.ts";
import { testOnDevices } from "../_helpers.ts";

const MODELS = new URL("../../examples/models/", import.meta.url).pathname;
const ADAPTER = new URL("../../examples/adapters/brown-dense-lora-cn/", import.meta.url).pathname;
const REGENERATE = "regenerate with the commands recorded in eval.json";

interface GenreRow {
  genre: string;
  tokens: number;
  perplexity: number;
  unigram_perplexity?: number;
}

const validation = loadBrown().then((docs) => splitDocuments(docs).validation);
const tokenizer = Tokenizer.fromDir(`${MODELS}tokenizer`);
async function genreIds(genre: string): Promise<Int32Array> {
  const docs = (await validation).filter((d: BrownDocument) => d.genre === genre);
  return tokenizeAndPack(docs, await tokenizer, { blockSize: 1, addEos: true }).data;
}

for (const name of EMBEDDED_MODELS) {
  // cn (fiction: adventure) is the smallest validation genre: quick to score in full.
  testOnDevices(
    `${name} reproduces its eval.json perplexity on genre cn and beats unigram`,
    async (device) => {
      const dir = `${MODELS}${name}`;
      const evaluation = JSON.parse(await Deno.readTextFile(`${dir}/eval.json`));
      const block = evaluation.block as number;
      const rows = evaluation.validation as GenreRow[];
      const all = rows.find((r) => r.genre === "all")!;
      assert.ok(
        all.perplexity < 0.5 * all.unigram_perplexity!,
        `${name}: validation ppl ${all.perplexity} is not clearly below unigram ${all.unigram_perplexity}`,
      );
      for (const r of rows) {
        if (r.unigram_perplexity === undefined) continue; // SOTU: no unigram baseline
        assert.ok(r.perplexity < r.unigram_perplexity, `${name}: genre ${r.genre} does not beat unigram`);
      }
      const cn = rows.find((r) => r.genre === "cn")!;
      using model = await loadModel(dir, { device });
      const got = await perplexity(model, await genreIds("cn"), { blockSize: block });
      assert.equal(got.tokens, cn.tokens, REGENERATE);
      assert.ok(
        Math.abs(got.perplexity - cn.perplexity) / cn.perplexity < 1e-4,
        `${name}: cn ppl ${got.perplexity} != eval.json ${cn.perplexity}; ${REGENERATE}`,
      );
    },
  );
}

testOnDevices("the genre LoRA adapter loads as PEFT and lowers that genre's perplexity", async (device) => {
  const evaluation = JSON.parse(await Deno.readTextFile(`${ADAPTER}eval.json`));
  assert.equal(evaluation.genre, "cn");
  const v = evaluation.validation_perplexity;
  assert.ok(v.genre_after < v.genre_before, "the recorded fine-tune did not lower the genre's ppl");
  const ids = (await genreIds("cn")).subarray(0, 2048);
  using model = await loadModel(`${MODELS}brown-dense`, { device });
  const base = await perplexity(model, ids, { blockSize: 128 });
  using lora = await loadLoraAdapter(ADAPTER, model);
  assert.equal(lora.config.r, 8);
  const adapted = await perplexity(model, ids, { blockSize: 128 });
  assert.ok(
    adapted.perplexity < 0.97 * base.perplexity,
    `adapter ppl ${adapted.perplexity} is not below base ${base.perplexity} on cn`,
  );
  await lora.merge();
  const merged = await perplexity(model, ids, { blockSize: 128 });
  assert.ok(Math.abs(merged.perplexity - adapted.perplexity) / adapted.perplexity < 1e-4);
});
