import assert from "node:assert/strict";
import { z } from "zod";
import { parseConfig } from "../src/config.ts";
import { ConfigError } from "../src/errors.ts";

const LoraConfigSchema = z.strictObject({
  r: z.number().int().min(1).max(256).default(8),
  loraAlpha: z.number().positive().default(16),
  targetModules: z.array(z.string()).default(["q_proj", "v_proj"]),
  quant: z.strictObject({
    nbits: z.union([z.literal(2), z.literal(3), z.literal(4), z.literal(8)]),
    groupSize: z.number().int().default(64),
  }).optional(),
});

/** Runs `fn`, asserts it throws a ConfigError, and returns the message. */
function configErrorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${err}`);
    assert.ok(err instanceof TypeError);
    assert.equal(err.name, "ConfigError");
    return err.message;
  }
  assert.fail("expected parseConfig() to throw");
}

Deno.test("parseConfig() fills defaults and returns the parsed values", () => {
  const config = parseConfig("LoraConfig", LoraConfigSchema, { r: 4 });
  assert.deepEqual(config, { r: 4, loraAlpha: 16, targetModules: ["q_proj", "v_proj"] });
  const nested = parseConfig("LoraConfig", LoraConfigSchema, { quant: { nbits: 4 } });
  assert.deepEqual(nested.quant, { nbits: 4, groupSize: 64 });
});

Deno.test("parseConfig() returns a deeply frozen copy, leaving the input alone", () => {
  const input = { r: 4, targetModules: ["o_proj"], quant: { nbits: 2 as const } };
  const config = parseConfig("LoraConfig", LoraConfigSchema, input);
  assert.ok(Object.isFrozen(config));
  assert.ok(Object.isFrozen(config.targetModules));
  assert.ok(Object.isFrozen(config.quant));
  assert.notEqual(config, input);
  assert.ok(!Object.isFrozen(input) && !Object.isFrozen(input.targetModules));
  assert.throws(() => {
    (config as { r: number }).r = 5;
  }, TypeError);
});

Deno.test("parseConfig() rejects an unknown key and lists the allowed keys", () => {
  const message = configErrorOf(() => parseConfig("LoraConfig", LoraConfigSchema, { r: 4, bias: "none" }));
  assert.equal(
    message,
    'Invalid LoraConfig config:\n  bias: unknown key (received "none"); allowed keys: r, loraAlpha, targetModules, quant',
  );
});

Deno.test("parseConfig() suggests the nearest key for a typo", () => {
  const message = configErrorOf(() => parseConfig("LoraConfig", LoraConfigSchema, { lora_alpha: 32 }));
  assert.match(message, /^Invalid LoraConfig config:\n/);
  assert.match(
    message,
    /lora_alpha: unknown key \(received 32\); did you mean "loraAlpha"\? Allowed keys: r, /,
  );
  const swapped = configErrorOf(() => parseConfig("LoraConfig", LoraConfigSchema, { targetModule: ["x"] }));
  assert.match(swapped, /did you mean "targetModules"\?/);
  const unrelated = configErrorOf(() => parseConfig("LoraConfig", LoraConfigSchema, { dropout: 0.1 }));
  assert.doesNotMatch(unrelated, /did you mean/);
});

Deno.test("parseConfig() reports a wrong type with the received value", () => {
  const message = configErrorOf(() => parseConfig("LoraConfig", LoraConfigSchema, { r: "8" }));
  assert.equal(message, 'Invalid LoraConfig config:\n  r: expected number (received string "8")');
  const root = configErrorOf(() => parseConfig("LoraConfig", LoraConfigSchema, 42));
  assert.equal(root, "Invalid LoraConfig config:\n  (root): expected object (received number 42)");
});

Deno.test("parseConfig() reports an out-of-range value", () => {
  const message = configErrorOf(() => parseConfig("LoraConfig", LoraConfigSchema, { r: 0 }));
  assert.match(message, /^Invalid LoraConfig config:\n {2}r: .*>=1 \(received 0\)$/);
  const big = configErrorOf(() => parseConfig("LoraConfig", LoraConfigSchema, { r: 1000 }));
  assert.match(big, /r: .*<=256 \(received 1000\)$/);
});

Deno.test("parseConfig() names nested paths, array indices and missing keys", () => {
  const message = configErrorOf(() =>
    parseConfig("LoraConfig", LoraConfigSchema, {
      targetModules: ["q_proj", 7],
      quant: { groupSize: 32, nbit: 4 },
    })
  );
  const lines = message.split("\n");
  assert.equal(lines[0], "Invalid LoraConfig config:");
  assert.ok(lines.includes("  targetModules[1]: expected string (received number 7)"), message);
  assert.ok(
    lines.includes("  quant.nbits: required, expected one of 2 | 3 | 4 | 8 (received undefined)"),
    message,
  );
  assert.ok(
    lines.includes(
      '  quant.nbit: unknown key (received 4); did you mean "nbits"? Allowed keys: nbits, groupSize',
    ),
    message,
  );
});

Deno.test("parseConfig() picks a discriminated union's option to list its keys", () => {
  const Schema = z.discriminatedUnion("method", [
    z.strictObject({ method: z.literal("rtn"), nbits: z.number() }),
    z.strictObject({ method: z.literal("hqq"), nbits: z.number(), optimize: z.boolean().default(true) }),
  ]);
  const message = configErrorOf(() =>
    parseConfig("Quantizer", Schema, { method: "hqq", nbits: 4, optimise: false })
  );
  assert.match(message, /optimise: unknown key \(received false\); did you mean "optimize"\?/);
  const tag = configErrorOf(() => parseConfig("Quantizer", Schema, { method: "gptq" }));
  assert.match(tag, /method: .*\(received "gptq"\)$/);
});

Deno.test("parseConfig() lists a union's alternatives", () => {
  const Schema = z.strictObject({ device: z.union([z.enum(["auto", "cpu"]), z.number().int()]) });
  const message = configErrorOf(() => parseConfig("Device", Schema, { device: "gpu" }));
  assert.equal(
    message,
    'Invalid Device config:\n  device: expected one of "auto" | "cpu" | number (received "gpu")',
  );
});
