/** Every malformed-file case, each crafted by hand, must fail with a FormatError that says why. */
import assert from "node:assert/strict";
import { FormatError } from "../../src/errors.ts";
import { parseSafetensors, SafetensorsFile } from "../../src/io/safetensors.ts";

const enc = new TextEncoder();

/** Build a file: u64 length prefix (or `n` when given), the header text padded to 8, then the buffer. */
function craft(header: string | Uint8Array, bufferBytes: number, n?: bigint): Uint8Array {
  const raw = typeof header === "string" ? enc.encode(header) : header;
  const padded = new Uint8Array(Math.ceil(raw.length / 8) * 8).fill(0x20);
  padded.set(raw);
  const out = new Uint8Array(8 + padded.length + bufferBytes);
  new DataView(out.buffer).setBigUint64(0, n ?? BigInt(padded.length), true);
  out.set(padded, 8);
  return out;
}

const t = (dtype: string, shape: unknown, offsets: unknown) => ({ dtype, shape, data_offsets: offsets });
const json = (o: unknown) => JSON.stringify(o);

const CASES: [string, Uint8Array, RegExp][] = [
  ["file shorter than 8 bytes", new Uint8Array(5), /file is 5 bytes, shorter than the 8-byte header length/],
  ["empty file", new Uint8Array(0), /file is 0 bytes, shorter than the 8-byte header length/],
  [
    "header length past the end",
    craft("{}", 0, 4096n),
    /header length 4096 bytes runs past the end of the file \(16 bytes\)/,
  ],
  [
    "header length above 100 MB",
    craft("{}", 0, 200_000_000n),
    /header length 200000000 bytes exceeds the 100 MB limit/,
  ],
  ["header length near 2^64", craft("{}", 0, 2n ** 64n - 1n), /exceeds the 100 MB limit/],
  ["header not UTF-8", craft(new Uint8Array([0x7b, 0xff, 0x7d]), 0), /header is not valid UTF-8/],
  ["header not JSON", craft('{"w": {"dtype": ', 0), /header is not valid JSON/],
  ["header is an array", craft("[1, 2]", 0), /header must be a JSON object, received an array/],
  ["header is a string", craft('"hello"', 0), /header must be a JSON object, received string/],
  [
    "tensor entry not an object",
    craft(json({ w: 3 }), 0),
    /tensor "w" must be an object with dtype, shape and data_offsets/,
  ],
  [
    "unknown dtype",
    craft(json({ w: t("F128", [1], [0, 16]) }), 16),
    /tensor "w" has unknown dtype "F128" \(supported: BOOL, /,
  ],
  [
    "missing dtype",
    craft(json({ w: { shape: [1], data_offsets: [0, 4] } }), 4),
    /tensor "w" is missing "dtype"/,
  ],
  [
    "missing shape",
    craft(json({ w: { dtype: "F32", data_offsets: [0, 4] } }), 4),
    /tensor "w" is missing "shape"/,
  ],
  ["negative dim", craft(json({ w: t("F32", [-1], [0, 4]) }), 4), /tensor "w" has invalid shape \[-1\]/],
  ["fractional dim", craft(json({ w: t("F32", [1.5], [0, 4]) }), 4), /tensor "w" has invalid shape \[1\.5\]/],
  ["shape not an array", craft(json({ w: t("F32", "4", [0, 4]) }), 4), /tensor "w" has invalid shape "4"/],
  [
    "missing data_offsets",
    craft(json({ w: { dtype: "F32", shape: [1] } }), 4),
    /tensor "w" is missing "data_offsets"/,
  ],
  ["one offset", craft(json({ w: t("F32", [1], [0]) }), 4), /tensor "w" has invalid data_offsets \[0\]/],
  [
    "string offset",
    craft(json({ w: t("F32", [1], [0, "4"]) }), 4),
    /tensor "w" has invalid data_offsets \[0,"4"\]/,
  ],
  [
    "negative offset",
    craft(json({ w: t("F32", [1], [-4, 0]) }), 4),
    /tensor "w" has invalid data_offsets \[-4,0\]/,
  ],
  [
    "size mismatch",
    craft(json({ w: t("F32", [3], [0, 8]) }), 8),
    /tensor "w" size mismatch: shape \[3\] x F32 \(4 bytes\) needs 12 bytes but data_offsets \[0, 8\] span 8/,
  ],
  [
    "begin > end",
    craft(json({ w: t("U8", [0], [8, 0]) }), 8),
    /tensor "w" has data_offsets \[8, 0\] with begin > end/,
  ],
  [
    "offsets past the end",
    craft(json({ w: t("F32", [4], [0, 16]) }), 8),
    /tensor "w" data_offsets \[0, 16\] run past the end of the file: its data section holds 8 bytes \(file \d+ bytes, header \d+\); the file is truncated/,
  ],
  [
    "overlapping tensors",
    craft(json({ a: t("F32", [2], [0, 8]), b: t("F32", [2], [4, 12]) }), 12),
    /tensor "b" data_offsets \[4, 12\] overlap tensor "a" \(ends at 8\)/,
  ],
  [
    "gap between tensors",
    craft(json({ a: t("F32", [1], [0, 4]), b: t("F32", [1], [8, 12]) }), 12),
    /bytes \[4, 8\) before tensor "b" belong to no tensor \(a gap\); the buffer must be fully covered/,
  ],
  [
    "gap before the first tensor",
    craft(json({ a: t("F32", [1], [4, 8]) }), 8),
    /bytes \[0, 4\) before tensor "a"/,
  ],
  [
    "trailing bytes",
    craft(json({ a: t("F32", [1], [0, 4]) }), 8),
    /4 bytes after the last tensor belong to no tensor/,
  ],
  [
    "non-string metadata value",
    craft(json({ __metadata__: { step: 3 } }), 0),
    /metadata value for "step" must be a string, received 3/,
  ],
  [
    "metadata not an object",
    craft(json({ __metadata__: "pt" }), 0),
    /"__metadata__" must be an object of strings/,
  ],
];

for (const [what, bytes, re] of CASES) {
  Deno.test(`SafetensorsFile.open() rejects a file with ${what}`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "ferry_st_bad_" });
    const path = `${dir}/bad.safetensors`;
    try {
      await Deno.writeFile(path, bytes);
      await assert.rejects(SafetensorsFile.open(path), (e: Error) => {
        assert.ok(e instanceof FormatError, `expected FormatError, got ${e.name}: ${e.message}`);
        assert.match(e.message, re);
        assert.ok(e.message.startsWith(`Cannot read safetensors file ${path}: `), e.message);
        assert.match(e.message, /re-save the file with a safetensors writer or re-download it$/);
        assert.equal(e.path, path);
        return true;
      });
      // The in-memory parser applies the same rules.
      assert.throws(
        () => parseSafetensors(bytes, "mem"),
        (e: Error) => e instanceof FormatError && re.test(e.message),
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("parseSafetensors() accepts valid edge cases: no tensors, zero-size tensors, scalars", () => {
  assert.deepEqual(parseSafetensors(craft("{}", 0)).tensors.size, 0);
  const edge = craft(
    json({ e: t("F32", [0, 5], [0, 0]), s: t("F64", [], [0, 8]), z: t("U8", [0], [8, 8]) }),
    8,
  );
  const parsed = parseSafetensors(edge);
  assert.deepEqual([...parsed.tensors.keys()], ["e", "s", "z"]);
  assert.deepEqual(parsed.tensors.get("s")?.shape, []);
  assert.equal(parsed.tensors.get("e")?.data.length, 0);
  // Unknown keys inside a tensor entry are ignored, as the reference does.
  const extra = craft(json({ w: { ...t("U8", [1], [0, 1]), note: "x" } }), 1);
  assert.equal(parseSafetensors(extra).tensors.get("w")?.data.length, 1);
});
