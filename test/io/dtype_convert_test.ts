import assert from "node:assert/strict";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "../../src/io/dtype_convert.ts";

/** float32 bits -> value. */
const fromBits = (...bits: number[]) => new Float32Array(new Uint32Array(bits).buffer);
/** value -> float32 bits. */
const bitsOf = (a: Float32Array) => [...new Uint32Array(a.buffer, a.byteOffset, a.length)];

Deno.test("f16ToF32() widens exact values: zeros, normals, subnormals, inf, nan", () => {
  const h = new Uint16Array([0x0000, 0x8000, 0x3c00, 0xc000, 0x7bff, 0x0400, 0x0001, 0x03ff, 0x8001, 0x3555]);
  const out = f16ToF32(h);
  assert.ok(Object.is(out[0], 0) && Object.is(out[1], -0));
  assert.deepEqual([...out.slice(2)], [
    1,
    -2,
    65504,
    2 ** -14,
    2 ** -24,
    1023 * 2 ** -24,
    -(2 ** -24),
    0.333251953125,
  ]);
  const special = f16ToF32(new Uint16Array([0x7c00, 0xfc00, 0x7e00, 0xfe01]));
  assert.equal(special[0], Infinity);
  assert.equal(special[1], -Infinity);
  assert.ok(Number.isNaN(special[2]) && Number.isNaN(special[3]));
  assert.deepEqual(bitsOf(special.subarray(2)), [0x7fc00000, 0xffc02000]); // payload kept
});

Deno.test("f16ToF32() agrees with Float16Array on all 65536 bit patterns", () => {
  const all = new Uint16Array(65536).map((_, i) => i);
  const ours = f16ToF32(all);
  const ref = Float32Array.from(new Float16Array(all.buffer));
  for (let i = 0; i < 65536; i++) {
    if (Number.isNaN(ref[i])) assert.ok(Number.isNaN(ours[i]), `bits 0x${i.toString(16)}`);
    else assert.ok(Object.is(ours[i], ref[i]), `bits 0x${i.toString(16)}: ${ours[i]} != ${ref[i]}`);
  }
});

Deno.test("f32ToF16() rounds to nearest, ties to even, with overflow and underflow", () => {
  const cases: [number, number][] = [
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff], // largest finite half
    [65519, 0x7bff], // below the midpoint to 65536
    [65520, 0x7c00], // the midpoint: ties to even, which is Inf
    [1e10, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // tie between 0 and 2^-24: even is 0
    [3 * 2 ** -25, 0x0002], // tie between 1 and 2 subnormal units: even is 2
    [2 ** -26, 0x0000],
    [-(2 ** -26), 0x8000],
    [1023.5 * 2 ** -24, 0x0400], // tie between the largest subnormal and the smallest normal
    [2 ** -14, 0x0400],
    [1 + 2 ** -11, 0x3c00], // tie between 1 and 1+2^-10: even mantissa 0
    [1 + 3 * 2 ** -11, 0x3c02], // tie between mantissa 1 and 2: even is 2
    [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie rounds up
    [0.1, 0x2e66],
  ];
  const out = f32ToF16(new Float32Array(cases.map(([v]) => v)));
  cases.forEach(([v, bits], i) => assert.equal(out[i], bits, `${v} -> 0x${out[i].toString(16)}`));
  // Just above 2^-25 (the next float32) rounds up to the smallest subnormal.
  assert.equal(f32ToF16(fromBits(0x33000001))[0], 0x0001);
  assert.equal(f32ToF16([-0])[0], 0x8000);
  assert.deepEqual([...f32ToF16(fromBits(0x7fc00000, 0xff800001))], [0x7e00, 0xfe00]); // NaN stays NaN
});

Deno.test("f32ToF16() agrees with Float16Array on random and boundary float32 bit patterns", () => {
  let seed = 12345;
  const rand = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0);
  const bits = new Uint32Array(200_000).map(rand);
  // Dense sweep around the subnormal/normal and overflow boundaries.
  for (let i = 0; i < 4096; i++) bits[i] = 0x33000000 + i * 0x2000; // 2^-25 .. upward
  for (let i = 0; i < 4096; i++) bits[4096 + i] = 0x477fe000 + i * 0x10; // near 65504 .. 65536
  const f = new Float32Array(bits.buffer);
  const ours = f32ToF16(f);
  const ref = new Uint16Array(new Float16Array(f).buffer);
  for (let i = 0; i < bits.length; i++) {
    if (Number.isNaN(f[i])) assert.equal(ours[i] & 0x7e00, 0x7e00, "NaN must stay a quiet NaN");
    else assert.equal(ours[i], ref[i], `f32 bits 0x${bits[i].toString(16)}`);
  }
});

Deno.test("bf16ToF32() is the top half of float32", () => {
  const w = bf16ToF32(new Uint16Array([0x3f80, 0xbfc0, 0xff80, 0x0001, 0x8000, 0x7fc0]));
  assert.deepEqual(bitsOf(w), [0x3f800000, 0xbfc00000, 0xff800000, 0x00010000, 0x80000000, 0x7fc00000]);
  assert.equal(w[0], 1);
  assert.equal(w[1], -1.5);
  assert.equal(w[2], -Infinity);
  assert.ok(Number.isNaN(w[5]));
});

Deno.test("f32ToBf16() rounds to nearest, ties to even; NaN stays NaN", () => {
  const cases: [number, number][] = [
    [0x3f800000, 0x3f80], // 1
    [0x3f808000, 0x3f80], // tie: even 0x3f80
    [0x3f818000, 0x3f82], // tie: even 0x3f82
    [0x3f808001, 0x3f81], // just above the tie
    [0x3f807fff, 0x3f80], // just below the tie
    [0x7f7fffff, 0x7f80], // largest float32 rounds to Inf
    [0x7f800000, 0x7f80], // Inf
    [0xff800000, 0xff80], // -Inf
    [0x7f800001, 0x7fc0], // NaN with only low payload bits: quieted, not truncated to Inf
    [0xffc00000, 0xffc0], // -NaN keeps its sign
    [0x80000000, 0x8000], // -0
    [0x00008000, 0x0000], // subnormal tie: even 0
    [0x00018000, 0x0002], // subnormal tie: even 2
  ];
  const out = f32ToBf16(fromBits(...cases.map(([b]) => b)));
  cases.forEach(([b, want], i) =>
    assert.equal(out[i], want, `0x${b.toString(16)} -> 0x${out[i].toString(16)}`)
  );
  assert.deepEqual([...f32ToBf16([1, -1.5, 3])], [0x3f80, 0xbfc0, 0x4040]);
});

Deno.test("f32ToBf16() then bf16ToF32() is within half a bf16 ulp", () => {
  const x = new Float32Array([0.1, -3.14159, 123456.789, 1e-30, 7]);
  const back = bf16ToF32(f32ToBf16(x));
  x.forEach((v, i) => assert.ok(Math.abs(back[i] - v) <= Math.abs(v) * 2 ** -8, `${v} -> ${back[i]}`));
});
