/**
 * `quantize()`: option parsing (defaults, zod strict keys, cross-field rules), the errors for bad
 * weights, and `quantizedToHost` feeding `dequantizeRef` for every method on every device.
 */
import assert from "node:assert/strict";
import { parseQuantizeOptions, quantize, quantizedToHost } from "../../src/compressors/quant/quantize.ts";
import { ConfigError } from "../../src/errors.ts";
import { dequantizeRef } from "../../src/ops/dequantize_ref.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { DEVICES, randn, testOnDevices } from "../_helpers.ts";
import { errorStats } from "./_quant_cases.ts";

Deno.test("quantize options default to 4 bits, groups of 64 along rows, and each method's own defaults", () => {
  assert.deepEqual(parseQuantizeOptions({ method: "hqq" }), {
    method: "hqq",
    bits: 4,
    groupSize: 64,
    axis: 1,
  });
  const o = parseQuantizeOptions({ method: "hqq", hqq: { iterations: 5 } });
  assert.deepEqual(o.hqq, { iterations: 5, lpNorm: 0.7, beta: 10, kappa: 1.01, earlyStop: true });
  assert.deepEqual(parseQuantizeOptions({ method: "nf4", groupSize: 32 }), {
    method: "nf4",
    bits: 4,
    groupSize: 32,
    axis: 1,
    doubleQuant: false,
  });
});

const dev = DEVICES[0];

/** Asserts that quantizing `shape` with `options` rejects with `type` and a message matching `pattern`. */
async function rejects(
  options: unknown,
  type: new (...args: never[]) => Error,
  pattern: RegExp,
  shape = [24, 96],
): Promise<void> {
  using t = Tensor.zeros(dev, shape);
  await assert.rejects(() => quantize(t, options as never), (e: Error) => {
    assert.ok(e instanceof type, `${e.name} is not a ${type.name}: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

Deno.test("quantize rejects bad options with messages that name the key, the value and the choices", async () => {
  await rejects({ method: "rtn", bits: 5 }, ConfigError, /bits: .*expected one of 2\|3\|4\|8 \(received 5\)/);
  await rejects({ method: "hqq", bits: 1 }, ConfigError, /bits: .*expected one of 2\|3\|4\|8 \(received 1\)/);
  await rejects({ method: "rtn", axis: 2 }, ConfigError, /axis: .*expected one of 0\|1 \(received 2\)/);
  await rejects(
    { method: "gptq" },
    ConfigError,
    /method: no quantizer of that name is registered \(registerQuantizer adds one\): expected one of "rtn"\|"hqq"\|"nf4" \(received "gptq"\)/,
  );
  await rejects(
    { method: "rtn", grupSize: 32 },
    ConfigError,
    /grupSize: unknown key \(received 32\); did you mean "groupSize"\?/,
  );
  await rejects(
    { method: "hqq", hqq: { iters: 5 } },
    ConfigError,
    /hqq\.iters: unknown key .*allowed keys: iterations, lpNorm/,
  );
  await rejects({ method: "hqq", hqq: { kappa: 1 } }, ConfigError, /hqq\.kappa: .*>1 \(received 1\)/);
  await rejects({ method: "rtn", groupSize: 0 }, ConfigError, /groupSize: .*>0 \(received 0\)/);
  await rejects(
    { method: "nf4", bits: 2 },
    ConfigError,
    /bits: nf4 is a 4-bit code: leave bits out or pass 4 \(received 2\)/,
  );
  await rejects(
    { method: "nf4", axis: 0 },
    ConfigError,
    /axis: nf4 groups along axis 1 only: leave axis out or pass 1 \(received 0\)/,
  );
  await rejects(
    { method: "rtn", doubleQuant: true },
    ConfigError,
    /doubleQuant: an option of method "nf4", not of "rtn" \(received true\)/,
  );
  await rejects(
    { method: "rtn", hqq: {} },
    ConfigError,
    /hqq: an option of method "hqq", not of "rtn"/,
  );
});

Deno.test("quantize rejects weights it cannot group: group size, rank, dtype, empty", async () => {
  await rejects(
    { method: "rtn", groupSize: 64 },
    RangeError,
    /Cannot quantize weight with rtn: group size 64 must .* dividing the row length \(cols\) 96 of weight \[24,96\] \(axis 1\); pick a divisor of 96/,
  );
  await rejects(
    { method: "hqq", axis: 0, groupSize: 7 },
    RangeError,
    /group size 7 must .* dividing the column length \(rows\) 24 of weight \[24,96\] \(axis 0\)/,
  );
  await rejects({ method: "nf4", groupSize: 40 }, RangeError, /group size 40 .* row length \(cols\) 96/);
  await rejects(
    { method: "rtn", groupSize: 4 },
    RangeError,
    /expected a 2-D weight \[rows, cols\]: received shape \[2,3,4\]/,
    [
      2,
      3,
      4,
    ],
  );
  await rejects({ method: "rtn", groupSize: 4 }, RangeError, /the weight \[0,8\] is empty/, [0, 8]);
  using half = Tensor.zeros(dev, [4, 8], { dtype: "f16" });
  await assert.rejects(
    () => quantize(half, { method: "hqq", groupSize: 4 }),
    /must be f32: received f16; cast it first/,
  );
});

testOnDevices(
  "quantize refuses NaN and Inf weights, naming the count and the first, on every method",
  async (d) => {
    const w = randn(6 * 32, 9);
    w[2 * 32 + 5] = NaN;
    w[4 * 32 + 1] = -Infinity;
    using t = Tensor.fromArray(d, w, [6, 32]);
    for (const method of ["rtn", "hqq", "nf4"] as const) {
      await assert.rejects(
        () => quantize(t, { method, groupSize: 16 }),
        /weight \[6,32\] holds 2 NaN or Inf values, the first NaN at \[2, 5\]; check the checkpoint/,
      );
    }
  },
);

testOnDevices("quantizedToHost feeds dequantizeRef for every method", async (d) => {
  const shape: [number, number] = [12, 128];
  const w = randn(shape[0] * shape[1], 17, 0.05);
  using t = Tensor.fromArray(d, w, shape);
  // Relative Frobenius errors measured at 4 bits (Gaussian weights): 0.092 RTN (groups of 64), 0.057
  // HQQ (groups of 12), 0.095 NF4 with or without double quantisation; 0.12 catches a layout or
  // metadata mix-up, which gives errors of order 1.
  for (
    const options of [
      { method: "rtn" },
      { method: "hqq", axis: 0, groupSize: 12 },
      { method: "nf4" },
      { method: "nf4", doubleQuant: true },
    ] as const
  ) {
    const q = await quantize(t, options);
    const h = await quantizedToHost(q);
    assert.equal(h.scale.length, (shape[0] * shape[1]) / q.groupSize);
    const { fro } = errorStats(w, dequantizeRef(h));
    assert.ok(fro < 0.12, `${JSON.stringify(options)}: relative error ${fro}`);
  }
});
