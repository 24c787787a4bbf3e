import assert from "node:assert/strict";
import { Tensor } from "../../src/tensor/tensor.ts";
import { cast, castRef, castToBf16, castToF16 } from "../../src/ops/cast.ts";
import { randn, testOnDevices } from "../_helpers.ts";

const bitsOf = (a: Float32Array) => new Uint32Array(a.buffer, a.byteOffset, a.length);
const isNaN32 = (b: number) => (b & 0x7fffffff) >>> 0 > 0x7f800000;

// Every 16-bit pattern plus one more, so the length is odd (65537 halves: the last word is half padding).
const ALL16 = Uint16Array.from({ length: 65537 }, (_, i) => i & 0xffff);

// f32 bit patterns that stress narrowing: zeros, infinities, NaNs with payloads, f32 subnormals and
// extremes, the f16 limits and their rounding boundaries, ties to even, and the bf16 overflow edge.
const SPECIAL_F32 = new Uint32Array([
  0x00000000,
  0x80000000,
  0x7f800000,
  0xff800000,
  0x7fc00000,
  0xffc00001,
  0x7f800001,
  0x7fbfffff,
  0x00000001,
  0x807fffff,
  0x00800000,
  0x7f7fffff,
  0xff7fffff,
  0x477fe000,
  0x477fefff,
  0x477ff000,
  0x47800000,
  0x33800000,
  0x33000000,
  0x33000001,
  0x387fc000,
  0x38800000,
  0x3f801000,
  0x3f803000,
  0x3f808000,
  0x3f818000,
  0x7f7f8000,
  0x7f7f7fff,
  0x3f800001,
  0x3f7fffff,
  0xb3c00000,
  0x3a800800,
]);

testOnDevices("cast() widens every f16 and bf16 pattern to f32 bit-exactly", async (dev) => {
  const f16 = new Float16Array(ALL16.buffer);
  for (const dtype of ["f16", "bf16"] as const) {
    using x = Tensor.fromArray(dev, ALL16, [ALL16.length], { dtype });
    using y = cast(x, "f32");
    const got = bitsOf(await y.toArray());
    const want = new Float32Array(ALL16.length);
    castRef(ALL16, dtype, want, "f32");
    assert.deepEqual(got, bitsOf(want), `${dtype} -> f32 vs castRef`);
    // castRef against independent conversions: Float16Array, and bf16 as the top half of an f32.
    for (let i = 0; i < ALL16.length; i++) {
      const h = ALL16[i];
      const exact = dtype === "f16"
        ? Math.fround(f16[i])
        : new Float32Array(new Uint32Array([h << 16]).buffer)[0];
      if (Number.isNaN(exact)) assert.ok(isNaN32(got[i]), `${dtype} 0x${h.toString(16)} stays NaN`);
      else assert.ok(Object.is(want[i], exact), `${dtype} 0x${h.toString(16)}: ${want[i]} != ${exact}`);
    }
  }
});

testOnDevices("cast() narrows f32 to f16 and bf16 with round-to-nearest-even, bit-exactly", async (dev) => {
  const values = new Float32Array(SPECIAL_F32.length + 4099);
  bitsOf(values).set(SPECIAL_F32);
  values.set(randn(4099, 7, 1e3), SPECIAL_F32.length); // odd total length
  using x = Tensor.fromArray(dev, values);
  for (const [dtype, op] of [["f16", castToF16], ["bf16", castToBf16]] as const) {
    using y = op(x);
    assert.equal(y.dtype, dtype);
    const got = await y.toArray();
    const want = new Uint16Array(values.length);
    castRef(values, "f32", want, dtype);
    assert.deepEqual(got, want, `f32 -> ${dtype} vs castRef`);
  }
  // castRef against Float16Array (one rounding from the exact f32 value; NaN payloads aside).
  const want = new Uint16Array(values.length);
  castRef(values, "f32", want, "f16");
  const f16 = new Uint16Array(Float16Array.from(values).buffer);
  for (let i = 0; i < values.length; i++) {
    if (Number.isNaN(values[i])) assert.equal(want[i] & 0x7e00, 0x7e00, `quiet NaN at ${i}`);
    else assert.equal(want[i], f16[i], `f16 of ${values[i]} (0x${bitsOf(values)[i].toString(16)})`);
  }
  // bf16 spot checks: ties to even, NaN stays NaN (never inf), overflow to inf.
  const bf = new Uint16Array(SPECIAL_F32.length);
  castRef(new Float32Array(SPECIAL_F32.buffer), "f32", bf, "bf16");
  const expectBf: Record<number, number> = {
    0x7f800001: 0x7fc0, // signalling NaN -> quiet NaN, not inf
    0x3f808000: 0x3f80, // tie -> even (down)
    0x3f818000: 0x3f82, // tie -> even (up)
    0x7f7f8000: 0x7f80, // tie past the largest bf16 -> inf
    0x7f7f7fff: 0x7f7f,
    0x00000001: 0x0000, // f32 subnormal -> +0
  };
  SPECIAL_F32.forEach((b, i) => {
    if (b in expectBf) assert.equal(bf[i], expectBf[b], `bf16 of 0x${b.toString(16)}`);
  });
});

testOnDevices("cast() converts f16 <-> bf16 through f32 and copies same-dtype tensors", async (dev) => {
  using h = Tensor.fromArray(dev, ALL16.subarray(0, 4099), [4099], { dtype: "f16" });
  using b = cast(h, "bf16");
  const wide = new Float32Array(4099);
  castRef(ALL16.subarray(0, 4099), "f16", wide, "f32");
  const want = new Uint16Array(4099);
  castRef(wide, "f32", want, "bf16");
  assert.deepEqual(await b.toArray(), want);
  using same = cast(h, "f16");
  assert.notEqual(same.storage, h.storage);
  assert.deepEqual(await same.toArray(), ALL16.subarray(0, 4099));
  const x = randn(7, 1);
  using tx = Tensor.fromArray(dev, x, [7, 1]);
  using f = cast(tx, "f32");
  assert.deepEqual(f.shape, [7, 1]);
  assert.deepEqual(await f.toArray(), x);
});

testOnDevices("cast() rejects integer tensors and unknown target dtypes", (dev) => {
  using i = Tensor.zeros(dev, [3], { dtype: "i32" });
  using x = Tensor.zeros(dev, [3]);
  assert.throws(() => cast(i, "f32"), /Cannot run cast: x must be f32 or f16 or bf16: received i32/);
  assert.throws(
    () => cast(x, "i32" as "f32"),
    /Cannot run cast: dtype must be one of f32, f16, bf16: received i32/,
  );
});
