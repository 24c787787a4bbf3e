// f16.wgsl — f16 <-> f32 on bit patterns, for kernels that store f16 metadata in u32 words.
// Not a kernel: src/ops/kernel.ts exports it as F16_WGSL, which src/compressors/quant/rtn.ts and
// hqq.ts prepend to kernels/rtn.wgsl and kernels/hqq.wgsl. Rounding is to nearest, ties to even, with subnormals kept (as Math.f16round),
// instead of pack2x16float / unpack2x16float, whose rounding and subnormal handling WGSL leaves to
// the device. kernels/cast.wgsl decodes f16 the same way for the cast op.

fn f16_bits_to_f32(h: u32) -> f32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0x1fu) { return bitcast<f32>(sign | 0x7f800000u | (m << 13u)); }
  if (e != 0u) { return bitcast<f32>(sign | ((e + 112u) << 23u) | (m << 13u)); }
  if (m == 0u) { return bitcast<f32>(sign); }
  let b = firstLeadingBit(m);
  return bitcast<f32>(sign | ((b + 103u) << 23u) | ((m << (23u - b)) & 0x7fffffu));
}

fn f32_to_f16_bits(v: f32) -> u32 {
  let x = bitcast<u32>(v);
  let sign = (x >> 16u) & 0x8000u;
  let exp = (x >> 23u) & 0xffu;
  let mant = x & 0x7fffffu;
  if (exp == 0xffu) { return select(sign | 0x7c00u, sign | 0x7e00u | (mant >> 13u), mant != 0u); }
  let e = i32(exp) - 112;
  if (e >= 31) { return sign | 0x7c00u; }
  if (e >= 1) {
    let rem = mant & 0x1fffu;
    let h = sign | (u32(e) << 10u) | (mant >> 13u);
    return select(h, h + 1u, rem > 0x1000u || (rem == 0x1000u && (h & 1u) != 0u));
  }
  let shift = u32(14 - e);
  if (shift >= 25u) { return sign; }
  let full = mant | 0x800000u;
  let m = full >> shift;
  let rem = full & ((1u << shift) - 1u);
  let half = 1u << (shift - 1u);
  return sign | select(m, m + 1u, rem > half || (rem == half && (m & 1u) != 0u));
}
