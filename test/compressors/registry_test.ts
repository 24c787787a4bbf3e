/**
 * Quantizers and pruners as registered objects: a toy method of each, registered from a file
 * outside src/ (`_toy_methods.ts`), runs through the public API (`quantize`, the packed ops,
 * `pruneWeight`, the sweep) like a built-in; the registries list them and refuse what they cannot run.
 */
import assert from "node:assert/strict";
import { z } from "zod";
import {
  compressionSweep,
  ConfigError,
  dequantize,
  dequantizeRef,
  getPruner,
  getQuantizer,
  listPruners,
  listQuantizers,
  pruneWeight,
  qgemv,
  quantGrid,
  quantize,
  quantizedToHost,
  registerPruner,
  registerQuantizer,
  Tensor,
  unpackCodes,
} from "../../src/mod.ts";
import { assertClose, DEVICES, randn, testOnDevices } from "../_helpers.ts";
import { toyAbsmaxRef } from "./_toy_methods.ts";

Deno.test("the registries list the built-in methods first, then the toy ones", () => {
  assert.deepEqual(listQuantizers(), ["rtn", "hqq", "nf4", "toy-absmax"]);
  assert.deepEqual(listPruners(), ["magnitude", "wanda", "2:4", "toy-rows"]);
  assert.deepEqual(getQuantizer("nf4").bits, [4]);
  assert.deepEqual(getQuantizer("rtn").bits, [2, 3, 4, 8]);
  assert.equal(getPruner("2:4").fixedSparsity, 0.5);
});

testOnDevices(
  "a quantizer registered outside src/ runs through quantize() and the packed ops",
  async (device) => {
    const [rows, cols, g] = [6, 40, 8];
    const w = randn(rows * cols, 21, 0.1);
    using t = Tensor.fromArray(device, w, [rows, cols]); // [rows, cols]
    for (const [bits, clip] of [[2, 1], [4, 0.5], [8, 1]] as const) {
      const q = await quantize(t, { method: "toy-absmax", bits, groupSize: g, clip });
      const what = `toy-absmax ${bits}-bit clip ${clip}`;
      assert.equal(q.method, "toy-absmax");
      const host = await quantizedToHost(q);
      const ref = toyAbsmaxRef(w, bits, g, clip);
      assert.deepEqual(unpackCodes(host.codes, rows, cols, bits), ref.codes, `${what}: codes`);
      const back = dequantizeRef(host); // [rows, cols]
      if (clip === 1) {
        for (let i = 0; i < w.length; i++) {
          const step = ref.step[Math.floor(i / g)];
          assert.ok(
            Math.abs(back[i] - w[i]) <= step * 0.5 * (1 + 2 ** -9),
            `${what}: element ${i} off by more than step/2`,
          );
        }
      }
      assertClose(await dequantize(q).toArray(), back, {
        rtol: 1e-6,
        atol: 1e-7,
        what: `${what}: dequantize`,
      });
      const x = randn(cols, 5);
      using xt = Tensor.fromArray(device, x, [cols]); // [cols]
      const want = new Float32Array(rows);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) want[r] += back[r * cols + c] * x[c];
      assertClose(await qgemv(q, xt).toArray(), want, { rtol: 1e-4, atol: 1e-5, what: `${what}: qgemv` }); // [rows, cols] · [cols] -> [rows]
      q.codes.dispose();
      q.meta.dispose();
    }
  },
);

Deno.test("quantize() validates a registered method's bits, axes and own options, and refuses others'", async () => {
  const device = DEVICES[0];
  using t = Tensor.zeros(device, [4, 16]);
  const rejects = (options: Record<string, unknown>, pattern: RegExp) =>
    assert.rejects(() => quantize(t, options as never), (e: Error) => {
      assert.ok(e instanceof ConfigError, `${e.name}: ${e.message}`);
      assert.match(e.message, pattern);
      return true;
    });
  await rejects(
    { method: "toy-absmax", bits: 3 },
    /bits: toy-absmax takes 2, 4, 8 bits: leave bits out or pass one of 2, 4, 8 \(received 3\)/,
  );
  await rejects({ method: "toy-absmax", axis: 0 }, /axis: toy-absmax groups along axis 1 only/);
  await rejects({ method: "toy-absmax", clip: 2 }, /clip: .*<=1 \(received 2\)/);
  await rejects(
    { method: "rtn", clip: 0.5 },
    /clip: an option of method "toy-absmax", not of "rtn" \(received 0\.5\)/,
  );
  await rejects({ method: "toy-absmax", doubleQuant: true }, /doubleQuant: an option of method "nf4"/);
  await rejects(
    { method: "toy", groupSize: 8 },
    /expected one of "rtn"\|"hqq"\|"nf4"\|"toy-absmax" \(received "toy"\)/,
  );
});

Deno.test("a pruner registered outside src/ runs through pruneWeight() with the shared checks", () => {
  const w = Float32Array.of(1, 1, 0.1, 0.1, 3, 0, 0.5, 0.5); // [4, 2]: row norms² 2, 0.02, 9, 0.5
  const r = pruneWeight(w, [4, 2], { method: "toy-rows", sparsity: 0.5 });
  assert.deepEqual([...r.mask], [1, 1, 0, 0, 1, 1, 0, 0]);
  assert.deepEqual([...r.pruned], [1, 1, 0, 0, 3, 0, 0, 0]);
  assert.equal(r.sparsity, 0.5);
  assert.throws(() => pruneWeight(w, [4, 2], { method: "toy-rows" }), /toy-rows: sparsity is required/);
  assert.throws(
    () => pruneWeight(w, [4, 2], { method: "rows", sparsity: 0.5 }),
    /unknown method "rows": expected one of magnitude, wanda, 2:4, toy-rows/,
  );
});

Deno.test("the sweep runs registered methods at the bits and axes they declare", async () => {
  const device = DEVICES[0];
  const grid = quantGrid({ methods: ["toy-absmax", "nf4"], bits: [2, 3], groupSizes: [8], axes: [0, 1] });
  assert.deepEqual(grid.map((s) => `${s.method}/${s.bits}/${s.axis}`), ["toy-absmax/2/1", "nf4/4/1"]);
  assert.throws(
    () => quantGrid({ methods: ["gptq"], bits: [2], groupSizes: [8], axes: [1] }),
    /Unknown quantizer "gptq"/,
  );
  const data = randn(8 * 16, 3);
  const log = await compressionSweep([{ name: "w", data, shape: [8, 16] }], {
    device,
    quantizers: grid.slice(0, 1),
    pruners: [{ method: "toy-rows", sparsity: 0.25 }],
    progress: "off",
  });
  const rows = log.toJSON();
  assert.deepEqual(rows.map((r) => [r.kind, r.method]), [["quantize", "toy-absmax"], ["prune", "toy-rows"]]);
  assert.equal(rows[1].sparsity, 0.25);
  assert.ok((rows[0].rel_error as number) > 0 && (rows[0].rel_error as number) < 0.5);
});

Deno.test("registering refuses a taken name, bad bits or axes, and options that shadow the shared keys", () => {
  const quantize = () => {
    throw new Error("not called");
  };
  assert.throws(
    () => registerQuantizer({ name: "hqq", description: "", quantize }),
    /"hqq": a quantizer of that name is already registered/,
  );
  assert.throws(
    () => registerQuantizer({ name: "", description: "", quantize }),
    /its name must be a non-empty string/,
  );
  assert.throws(
    () => registerQuantizer({ name: "q5", description: "", bits: [5 as 4], quantize }),
    /bits must be some of 2, 3, 4, 8: received \[5\]/,
  );
  assert.throws(
    () => registerQuantizer({ name: "qa", description: "", axes: [2 as 1], quantize }),
    /axes must be some of 0, 1: received \[2\]/,
  );
  assert.throws(
    () => registerQuantizer({ name: "qb", description: "", options: { bits: z.number() }, quantize }),
    /its option "bits" is one every method shares; rename it/,
  );
  const mask = () => {
    throw new Error("not called");
  };
  assert.throws(
    () => registerPruner({ name: "wanda", description: "", inputNorms: "required", mask }),
    /already registered/,
  );
  assert.throws(
    () => registerPruner({ name: "p1", description: "", inputNorms: "unused", fixedSparsity: 1, mask }),
    /fixedSparsity must be in \[0, 1\): received 1/,
  );
  assert.deepEqual(
    listQuantizers(),
    ["rtn", "hqq", "nf4", "toy-absmax"],
    "a refused method is not registered",
  );
});
