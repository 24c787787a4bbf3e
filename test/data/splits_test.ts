import assert from "node:assert/strict";
import { loadBrown } from "../../src/data/brown.ts";
import { SPLIT_NAMES, splitDocuments, splitHash, splitOf } from "../../src/data/splits.ts";
import { ConfigError } from "../../src/errors.ts";

const brown = loadBrown();
const ids = (docs: readonly { id: string }[]) => docs.map((d) => d.id);

Deno.test("splitHash() is pinned: values from an independent Python implementation", () => {
  // FNV-1a 32 over UTF-8 of f"{seed}:{id}", then MurmurHash3 fmix32, / 2**32 (see splits.ts).
  assert.equal(splitHash("ca01"), 0.9742386194411665);
  assert.equal(splitHash("ca01", 1), 0.2168604377657175);
  assert.equal(splitHash("cr09", 0), 0.7002107128500938);
  assert.equal(splitHash("héllo ✓", 42), 0.6003204484004527);
});

Deno.test("splitDocuments() on Brown is deterministic, disjoint and covering", async () => {
  const docs = await brown;
  const a = splitDocuments(docs);
  const b = splitDocuments(docs, { seed: 0, ratios: { train: 0.8, validation: 0.1, test: 0.1 } });
  assert.deepEqual(SPLIT_NAMES.map((s) => ids(a[s])), SPLIT_NAMES.map((s) => ids(b[s])));
  const seen = new Set<string>();
  for (const s of SPLIT_NAMES) {
    for (const d of a[s]) {
      assert.ok(!seen.has(d.id), `${d.id} in two splits`);
      seen.add(d.id);
      assert.equal(splitOf(d.id), s);
    }
  }
  assert.equal(seen.size, 500);
  // 500 × 0.1 = 50 ± 6.7 expected; the pinned hash gives fixed sizes.
  assert.ok(a.validation.length > 30 && a.validation.length < 70, `${a.validation.length}`);
  assert.ok(a.test.length > 30 && a.test.length < 70, `${a.test.length}`);
  assert.ok(ids(a.train).join() === ids(a.train).sort().join(), "order within a split is kept");
});

Deno.test("splitDocuments() puts a document in the same split whatever the other documents", async () => {
  const docs = await brown;
  const full = splitDocuments(docs, { seed: 7 });
  const subset = splitDocuments(docs.filter((d) => d.genre === "ck").reverse(), { seed: 7 });
  for (const s of SPLIT_NAMES) {
    assert.deepEqual(ids(subset[s]).sort(), ids(full[s].filter((d) => d.genre === "ck")).sort());
  }
  const other = splitDocuments(docs, { seed: 8 });
  assert.notDeepEqual(ids(other.test), ids(full.test));
});

Deno.test("splitDocuments() follows the ratios in expectation", () => {
  const docs = Array.from({ length: 20_000 }, (_, i) => ({ id: `doc-${i}` }));
  const { train, validation, test } = splitDocuments(docs, {
    seed: 3,
    ratios: { train: 0.5, validation: 0.3, test: 0.2 },
  });
  // Binomial standard deviations: ≈ 71, 65, 57; allow 4σ.
  assert.ok(Math.abs(train.length - 10_000) < 284, `${train.length}`);
  assert.ok(Math.abs(validation.length - 6_000) < 260, `${validation.length}`);
  assert.ok(Math.abs(test.length - 4_000) < 228, `${test.length}`);
});

Deno.test("splitDocuments() keeps zero-ratio splits empty", () => {
  const docs = Array.from({ length: 2_000 }, (_, i) => ({ id: String(i) }));
  const onlyTrain = splitDocuments(docs, { ratios: { train: 1, validation: 0, test: 0 } });
  assert.equal(onlyTrain.train.length, 2_000);
  const noTest = splitDocuments(docs, { ratios: { train: 0.7, validation: 0.3, test: 0 } });
  assert.equal(noTest.test.length, 0);
  assert.ok(noTest.validation.length > 450);
  const noValidation = splitDocuments(docs, { ratios: { train: 0.9, validation: 0, test: 0.1 } });
  assert.equal(noValidation.validation.length, 0);
});

Deno.test("splitOf() rejects ratios that don't sum to 1 or are out of range", () => {
  assert.throws(
    () => splitOf("x", { ratios: { train: 0.8, validation: 0.1, test: 0.2 } }),
    (err) => err instanceof ConfigError && err.message.includes("train + validation + test must equal 1"),
  );
  assert.throws(
    () => splitOf("x", { ratios: { train: 1.2, validation: -0.1, test: -0.1 } }),
    /ratios\.train/,
  );
  // @ts-expect-error: "val" is not an option
  assert.throws(() => splitDocuments([], { ratios: { train: 0.9, val: 0.1, test: 0 } }), ConfigError);
  assert.throws(() => splitOf("x", { seed: 0.5 }), ConfigError);
});
