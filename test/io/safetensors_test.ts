import { isNotFound } from "../../src/host/runtime.ts";
import assert from "node:assert/strict";
import { FormatError } from "../../src/errors.ts";
import {
  DTYPE_BYTES,
  parseSafetensors,
  SAFETENSORS_DTYPES,
  type SafetensorsDtype,
  SafetensorsFile,
  serializeSafetensors,
  type TensorInput,
  writeSafetensors,
} from "../../src/io/safetensors.ts";
import { writeFileAtomic } from "../../src/io/atomic.ts";

const FIXTURE = new URL("../fixtures/safetensors/tiny.safetensors", import.meta.url);

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ferry_st_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** The tensors that test/fixtures/make_safetensors_fixture.py writes, built independently here. */
function fixtureTensors(): Record<string, TensorInput> {
  return {
    "embed.weight": { dtype: "F32", shape: [2, 3], data: new Float32Array([0, 1, -2.5, 3.25, 1024, -0.125]) },
    scalar: { dtype: "F32", shape: [], data: new Float32Array([42]) },
    empty: { dtype: "F32", shape: [0, 3], data: new Float32Array(0) },
    "\u00e4.weight": { dtype: "F32", shape: [1], data: new Float32Array([0.5]) },
    half: { dtype: "F16", shape: [2, 2], data: new Uint16Array([0x3c00, 0xc000, 0x3800, 0x7bff]) },
    brain: { dtype: "BF16", shape: [3], data: new Uint16Array([0x3f80, 0xbfc0, 0x4040]) },
    count: { dtype: "I32", shape: [2], data: new Int32Array([7, -8]) },
    bias: { dtype: "I64", shape: [3], data: new BigInt64Array([-1n, 0n, 2n ** 40n]) },
    double: { dtype: "F64", shape: [1], data: new Float64Array([0.1]) },
    mask: { dtype: "BOOL", shape: [4], data: new Uint8Array([1, 0, 1, 1]) },
    bytes: { dtype: "U8", shape: [3], data: new Uint8Array([0, 127, 255]) },
    signed: { dtype: "I8", shape: [2], data: new Int8Array([-128, 127]) },
  };
}

Deno.test("SafetensorsFile reads the python-written golden fixture to the expected values", async () => {
  using st = await SafetensorsFile.open(FIXTURE);
  assert.deepEqual(st.metadata, { format: "pt" });
  // Layout order: descending dtype rank, then name bytes.
  assert.deepEqual(st.names, [
    "bias",
    "double",
    "embed.weight",
    "empty",
    "scalar",
    "\u00e4.weight",
    "count",
    "brain",
    "half",
    "signed",
    "bytes",
    "mask",
  ]);
  assert.deepEqual(st.info("embed.weight"), {
    dtype: "F32",
    shape: [2, 3],
    byteLength: 24,
    dataOffsets: [32, 56],
  });
  assert.deepEqual([...await st.readF32("embed.weight")], [0, 1, -2.5, 3.25, 1024, -0.125]);
  assert.deepEqual([...await st.readF32("half")], [1, -2, 0.5, 65504]);
  assert.deepEqual([...await st.readF32("brain")], [1, -1.5, 3]);
  assert.deepEqual([...await st.readF32("scalar")], [42]);
  assert.deepEqual([...await st.readF32("\u00e4.weight")], [0.5]);
  assert.deepEqual(await st.read("empty"), { dtype: "F32", shape: [0, 3], data: new Uint8Array(0) });
  assert.deepEqual([...new Int32Array((await st.read("count")).data.buffer)], [7, -8]);
  assert.deepEqual([...new BigInt64Array((await st.read("bias")).data.buffer)], [-1n, 0n, 2n ** 40n]);
  assert.deepEqual([...new Float64Array((await st.read("double")).data.buffer)], [0.1]);
  assert.deepEqual([...(await st.read("mask")).data], [1, 0, 1, 1]);
  assert.deepEqual([...(await st.read("bytes")).data], [0, 127, 255]);
  assert.deepEqual([...new Int8Array((await st.read("signed")).data.buffer)], [-128, 127]);
});

Deno.test("serializeSafetensors() and writeSafetensors() reproduce the golden fixture byte for byte", async () => {
  const golden = await Deno.readFile(FIXTURE);
  assert.deepEqual(serializeSafetensors(fixtureTensors(), { format: "pt" }), golden);
  // Insertion order must not matter, and a Map works like a record.
  const reversed = new Map(Object.entries(fixtureTensors()).reverse());
  assert.deepEqual(serializeSafetensors(reversed, { format: "pt" }), golden);
  await withTempDir(async (dir) => {
    await writeSafetensors(`${dir}/tiny.safetensors`, fixtureTensors(), { format: "pt" });
    assert.deepEqual(await Deno.readFile(`${dir}/tiny.safetensors`), golden);
  });
});

Deno.test("serializeSafetensors() writes compact JSON padded with spaces to 8 bytes", () => {
  const data = new Float32Array([0, 1, 2, 3, 4, 5]);
  const header = (b: Uint8Array) => {
    const n = Number(new DataView(b.buffer).getBigUint64(0, true));
    return { n, text: new TextDecoder().decode(b.subarray(8, 8 + n)) };
  };
  // 64-byte JSON: no padding needed.
  const a = serializeSafetensors({ "attn.0": { dtype: "F32", shape: [1, 2, 3], data } });
  assert.deepEqual(header(a), {
    n: 64,
    text: '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}',
  });
  assert.deepEqual(a.subarray(72), bytesOf(data));
  // 65-byte JSON: padded to 72 with 7 spaces.
  const b = serializeSafetensors({ attn0: { dtype: "F32", shape: [1, 1, 2, 3], data } });
  assert.deepEqual(header(b), {
    n: 72,
    text: '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}' + " ".repeat(7),
  });
  // No tensors: "{}" plus six spaces; metadata comes first, keys sorted.
  assert.deepEqual(
    serializeSafetensors({}),
    new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]),
  );
  assert.equal(
    header(serializeSafetensors({}, { z: "1", a: "2" })).text.trimEnd(),
    '{"__metadata__":{"a":"2","z":"1"}}',
  );
});

Deno.test("writeSafetensors() then SafetensorsFile round-trips every dtype, shape and metadata", async () => {
  const tensors: Record<string, TensorInput> = {};
  SAFETENSORS_DTYPES.forEach((dtype: SafetensorsDtype, i) => {
    const shape = [i % 3 + 1, 2, 3];
    const n = shape[0] * 6 * DTYPE_BYTES[dtype];
    const data = new Uint8Array(n).map((_, j) => dtype === "BOOL" ? j % 2 : (j * 31 + i) & 0xff);
    tensors[`t.${dtype.toLowerCase()}`] = { dtype, shape, data };
  });
  tensors["typed.f32"] = { dtype: "F32", shape: [2], data: new Float32Array([1.5, -2]) };
  tensors["typed.f16"] = { dtype: "F16", shape: [1], data: new Float16Array([0.5]) };
  tensors["typed.u64"] = { dtype: "U64", shape: [1], data: new BigUint64Array([2n ** 64n - 1n]) };
  tensors["typed.view"] = { dtype: "I16", shape: [2], data: new Int16Array([9, -3, 5, 7]).subarray(1, 3) };
  const metadata = { format: "pt", note: 'quotes " and \\ and \n and ü' };
  await withTempDir(async (dir) => {
    const path = `${dir}/all.safetensors`;
    await writeSafetensors(path, tensors, metadata);
    using st = await SafetensorsFile.open(path);
    assert.deepEqual(st.metadata, metadata);
    assert.deepEqual(new Set(st.names), new Set(Object.keys(tensors)));
    for (const [name, t] of Object.entries(tensors)) {
      const got = await st.read(name);
      assert.equal(got.dtype, t.dtype);
      assert.deepEqual(got.shape, t.shape);
      assert.deepEqual(got.data, bytesOf(t.data), name);
      // Every tensor starts aligned to its item size, as in the reference layout.
      assert.equal((st.dataStart + st.info(name).dataOffsets[0]) % DTYPE_BYTES[t.dtype], 0, name);
    }
    assert.deepEqual([...await st.readF32("typed.f16")], [0.5]);
    // The in-memory parser sees the same file.
    const parsed = parseSafetensors(await Deno.readFile(path), path);
    assert.deepEqual(parsed.metadata, metadata);
    assert.deepEqual(parsed.tensors.get("typed.f32")?.data, bytesOf(new Float32Array([1.5, -2])));
  });
});

Deno.test("SafetensorsFile reads only the requested byte range, lazily", async () => {
  await withTempDir(async (dir) => {
    const path = `${dir}/big.safetensors`;
    const big = new Float32Array(4 << 20).fill(3); // 16 MiB, laid out before "small" (same dtype, name order)
    await writeSafetensors(path, {
      a_big: { dtype: "F32", shape: [4 << 20], data: big },
      z_small: { dtype: "F32", shape: [2], data: new Float32Array([7, 8]) },
    });
    using st = await SafetensorsFile.open(path);
    assert.equal(st.byteLength, st.dataStart + big.byteLength + 8);
    // Overwrite the big tensor's bytes on disk after open: reading the small one must not touch them.
    const f = await Deno.open(path, { write: true });
    await f.seek(st.dataStart, Deno.SeekMode.Start);
    await f.write(new Uint8Array(1 << 20).fill(0xff));
    f.close();
    assert.deepEqual([...await st.readF32("z_small")], [7, 8]);
    assert.deepEqual(st.info("z_small").byteLength, 8);
    // Truncate the file into the big tensor: the small one was read already, the big one now fails.
    await Deno.truncate(path, st.dataStart + 100);
    await assert.rejects(st.read("a_big"), (e: Error) => {
      assert.ok(e instanceof FormatError);
      assert.match(e.message, /a_big.*truncated after opening/);
      return true;
    });
  });
});

Deno.test("SafetensorsFile.read() runs concurrent reads on one handle correctly", async () => {
  const tensors: Record<string, TensorInput> = {};
  for (let i = 0; i < 32; i++) {
    tensors[`w${i}`] = { dtype: "I32", shape: [100 + i], data: new Int32Array(100 + i).fill(i) };
  }
  await withTempDir(async (dir) => {
    await writeSafetensors(`${dir}/m.safetensors`, tensors);
    using st = await SafetensorsFile.open(`${dir}/m.safetensors`);
    const all = await Promise.all(Object.keys(tensors).map((n) => st.read(n)));
    all.forEach((t, i) => assert.deepEqual(t.data, bytesOf(tensors[`w${i}`].data)));
  });
});

Deno.test("SafetensorsFile reports unknown names, closed files, non-float readF32 and missing files", async () => {
  await assert.rejects(SafetensorsFile.open("/nonexistent/ferry.safetensors"), (err) => isNotFound(err));
  const st = await SafetensorsFile.open(FIXTURE);
  assert.equal(st.has("bias"), true);
  assert.equal(st.has("nope"), false);
  assert.throws(
    () => st.info("nope"),
    /Cannot find tensor "nope" in .*tiny\.safetensors: it holds 12 tensors/,
  );
  await assert.rejects(st.readF32("count"), /dtype I32 is not a float type/);
  st.close();
  st.close(); // idempotent
  assert.equal(st.closed, true);
  await assert.rejects(
    st.read("bias"),
    (e: Error) => e instanceof TypeError && /the file is closed/.test(e.message),
  );
});

Deno.test("writeSafetensors() rejects bad input with TypeError and leaves the old file untouched", async () => {
  const bad: [Record<string, TensorInput>, RegExp][] = [
    [
      { w: { dtype: "F32", shape: [3], data: new Float32Array(2) } },
      /shape \[3\] x F32 needs 12 bytes, received 8/,
    ],
    [
      { w: { dtype: "F16", shape: [1], data: new Float32Array(1) as never } },
      /a Float32Array cannot hold F16/,
    ],
    [{ w: { dtype: "F17" as SafetensorsDtype, shape: [1], data: new Uint8Array(1) } }, /unknown dtype "F17"/],
    [
      { w: { dtype: "U8", shape: [-1], data: new Uint8Array(1) } },
      /shape must be an array of non-negative integers/,
    ],
    [{ __metadata__: { dtype: "U8", shape: [1], data: new Uint8Array(1) } }, /reserved for metadata/],
    [{ w: { dtype: "BOOL", shape: [2], data: new Uint8Array([1, 2]) } }, /BOOL bytes must be 0 or 1/],
  ];
  await withTempDir(async (dir) => {
    const path = `${dir}/keep.safetensors`;
    await writeFileAtomic(path, "old");
    for (const [tensors, re] of bad) {
      await assert.rejects(
        writeSafetensors(path, tensors),
        (e: Error) => e instanceof TypeError && re.test(e.message),
      );
    }
    const meta = { step: 3 } as unknown as Record<string, string>;
    await assert.rejects(writeSafetensors(path, {}, meta), /metadata: value for "step" must be a string/);
    assert.equal(await Deno.readTextFile(path), "old");
    const left = [];
    for await (const e of Deno.readDir(dir)) left.push(e.name);
    assert.deepEqual(left, ["keep.safetensors"]); // no temporary files
  });
});

Deno.test("SafetensorsFile.close() lets in-flight reads finish, then rejects new ones", async () => {
  using st = await SafetensorsFile.open(FIXTURE);
  const values = st.readF32("embed.weight");
  const bias = st.read("bias");
  st.close();
  assert.deepEqual([...await values], [0, 1, -2.5, 3.25, 1024, -0.125]);
  assert.equal((await bias).data.length, 24);
  await assert.rejects(st.read("mask"), /the file is closed; open it again/);
});
