// cast.wgsl — float format conversions between f32 and the 16-bit storage formats f16 and bf16.
// Bindings (group 0):
//   0 src    : array<u32>   read        16-bit source: [ceil(N/2)] words, element 2w in the low half
//                                       of word w, 2w+1 in the high half; f32 source: [N] raw bits
//   1 dst    : array<u32>   read_write  f32 destination: [N] raw bits; 16-bit: [ceil(N/2)] words
//   2 p      : uniform Params {n}
// Entry points: f16_to_f32, bf16_to_f32 (widen, exact), f32_to_f16, f32_to_bf16 (narrow, round to
//   nearest, ties to even; overflow to ±inf; NaN stays a quiet NaN with its sign).
// Everything is integer arithmetic on the bit patterns, so results are bit-exact on any adapter:
//   unpack2x16float / pack2x16float would be shorter, but WGSL lets them flush f16 subnormals and
//   leaves the rounding of pack2x16float (and its result for out-of-range values) to the device.
// Workgroup: override WG = 64; each invocation handles PER_THREAD = 4 words (8 elements), strided.
// Dispatch: (ceil(ceil(N/2) / (4 WG)) split over x and y by grid1d, 1). Reference: src/ops/cast.ts (castRef).

override WG: u32 = 64u;
const PER_THREAD: u32 = 4u;

struct Params { n: u32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;

fn f16_bits_to_f32(h: u32) -> u32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0x1fu) { return sign | 0x7f800000u | (m << 13u); } // inf / NaN, payload kept
  if (e != 0u) { return sign | ((e + 112u) << 23u) | (m << 13u); } // normal: rebias 15 -> 127
  if (m == 0u) { return sign; }
  // Subnormal m · 2^-24 with its leading bit at b: a normal f32 with exponent b - 24.
  let b = firstLeadingBit(m);
  return sign | ((b + 103u) << 23u) | ((m << (23u - b)) & 0x7fffffu);
}

fn f32_bits_to_f16(x: u32) -> u32 {
  let sign = (x >> 16u) & 0x8000u;
  let exp = (x >> 23u) & 0xffu;
  let mant = x & 0x7fffffu;
  if (exp == 0xffu) { return select(sign | 0x7c00u, sign | 0x7e00u | (mant >> 13u), mant != 0u); }
  let e = i32(exp) - 112; // half exponent field
  if (e >= 31) { return sign | 0x7c00u; }
  if (e >= 1) {
    // Drop 13 bits; a carry out of the mantissa bumps the exponent (0x7bff + 1 is inf, as it should).
    let rem = mant & 0x1fffu;
    let h = sign | (u32(e) << 10u) | (mant >> 13u);
    return select(h, h + 1u, rem > 0x1000u || (rem == 0x1000u && (h & 1u) != 0u));
  }
  let shift = u32(14 - e); // subnormal half (or zero): value = (full >> shift) · 2^-24
  if (shift >= 25u) { return sign; }
  let full = mant | 0x800000u;
  let m = full >> shift;
  let rem = full & ((1u << shift) - 1u);
  let half = 1u << (shift - 1u);
  return sign | select(m, m + 1u, rem > half || (rem == half && (m & 1u) != 0u));
}

fn f32_bits_to_bf16(x: u32) -> u32 {
  if ((x & 0x7fffffffu) > 0x7f800000u) { return (x >> 16u) | 0x40u; } // NaN: quiet, never inf
  return (x + 0x7fffu + ((x >> 16u) & 1u)) >> 16u; // ties to even; may carry to inf
}

fn word0(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG * PER_THREAD + lid;
}

@compute @workgroup_size(WG)
fn f16_to_f32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let w0 = word0(wid, nwg, lid);
  for (var k = 0u; k < PER_THREAD; k++) {
    let w = w0 + k * WG;
    if (2u * w < p.n) {
      let v = src[w];
      dst[2u * w] = f16_bits_to_f32(v & 0xffffu);
      if (2u * w + 1u < p.n) { dst[2u * w + 1u] = f16_bits_to_f32(v >> 16u); }
    }
  }
}

@compute @workgroup_size(WG)
fn bf16_to_f32(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let w0 = word0(wid, nwg, lid);
  for (var k = 0u; k < PER_THREAD; k++) {
    let w = w0 + k * WG;
    if (2u * w < p.n) {
      let v = src[w];
      dst[2u * w] = v << 16u;
      if (2u * w + 1u < p.n) { dst[2u * w + 1u] = v & 0xffff0000u; }
    }
  }
}

@compute @workgroup_size(WG)
fn f32_to_f16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
  let w0 = word0(wid, nwg, lid);
  for (var k = 0u; k < PER_THREAD; k++) {
    let w = w0 + k * WG;
    if (2u * w < p.n) {
      var hi = 0u; // the padding half of an odd-length tensor stays 0
      if (2u * w + 1u < p.n) { hi = f32_bits_to_f16(src[2u * w + 1u]); }
      dst[w] = f32_bits_to_f16(src[2u * w]) | (hi << 16u);
    }
  }
}

@compute @workgroup_size(WG)
fn f32_to_bf16(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let w0 = word0(wid, nwg, lid);
  for (var k = 0u; k < PER_THREAD; k++) {
    let w = w0 + k * WG;
    if (2u * w < p.n) {
      var hi = 0u;
      if (2u * w + 1u < p.n) { hi = f32_bits_to_bf16(src[2u * w + 1u]); }
      dst[w] = f32_bits_to_bf16(src[2u * w]) | (hi << 16u);
    }
  }
}
