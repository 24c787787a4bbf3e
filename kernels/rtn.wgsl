// rtn.wgsl — affine group quantisation of a weight W[rows, cols] (layout: src/tensor/quantized_tensor.ts):
//   rtn_meta     per group: min/max -> step = f16((max - min) / (2^b - 1)), zero = f16(-min / step)
//   affine_pack  per u32 word of codes: q = clamp(round(w / step + zero), 0, 2^b - 1) from the STORED
//                (f16) step and zero, packed codesPerWord(bits) to a word, first code in the low bits.
// affine_pack is also HQQ's last stage (src/compressors/quant/hqq.ts), after hqq.wgsl chose the zeros.
// Bindings (group 0):
//   rtn_meta:    0 w    : array<f32> read        [rows, cols] row-major
//                1 meta : array<u32> read_write  [groups] f16 pair per group: low half step, high half zero
//                2 p    : uniform Params
//   affine_pack: 0 w    : array<f32> read        [rows, cols]
//                1 meta : array<u32> read        [groups]
//                2 codes: array<u32> read_write  [rows, wordsPerRow]
//                3 p    : uniform Params
// Groups: axis 1 -> g consecutive elements of a row (group gi covers flat [gi·g, gi·g + g));
//   axis 0 -> HQQ's reshape(g, -1): group gi covers flat gi + t·N/g, t < g (rows rows/g apart in a column).
// Numerics: f16 rounding is done on the bit patterns (kernels/f16.wgsl, prepended by rtn.ts:
//   round to nearest, ties to even, subnormals kept), not with pack2x16float, whose rounding WGSL
//   leaves to the device; so meta matches the TypeScript reference except where the f32 division
//   (2.5 ULP in WGSL) lands on the other side of an f16 rounding boundary. round() is ties-to-even,
//   as torch.round. The step floor max|w| / 1024 keeps |zero| <= 1024 (see rtn.ts).
// Workgroup: override WG = 64 invocations, one group (rtn_meta) or one code word (affine_pack) each.
// Dispatch: ceil(groups / WG) or ceil(rows · wordsPerRow / WG) workgroups, split over x and y
//   (grid1d). Reference: src/compressors/quant/rtn.ts (rtnMetaRef, affineCodesRef).

override WG: u32 = 64u;

struct Params {
  rows: u32, cols: u32, groupSize: u32, axis: u32,
  bits: u32, groups: u32, wordsPerRow: u32, perWord: u32,
}

@group(0) @binding(0) var<storage, read> w: array<f32>;
@group(0) @binding(1) var<storage, read_write> metaOut: array<u32>;
@group(0) @binding(2) var<uniform> pm: Params;
@group(0) @binding(1) var<storage, read> metaIn: array<u32>;
@group(0) @binding(2) var<storage, read_write> codes: array<u32>;
@group(0) @binding(3) var<uniform> pp: Params;

// Flat index of element j of group gi, and the stride between consecutive elements.
fn group_start(p: Params, gi: u32) -> u32 {
  if (p.axis == 1u) { return gi * p.groupSize; }
  return gi; // axis 0, HQQ's reshape(g, -1): group gi holds flat gi, gi + N/g, gi + 2N/g, ...
}

fn group_stride(p: Params) -> u32 {
  return select((p.rows / p.groupSize) * p.cols, 1u, p.axis == 1u);
}

fn flat_id(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid;
}

@compute @workgroup_size(WG)
fn rtn_meta(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let gi = flat_id(wid, nwg, lid);
  if (gi >= pm.groups) { return; }
  let start = group_start(pm, gi);
  let stride = group_stride(pm);
  var mn = w[start];
  var mx = mn;
  for (var j = 1u; j < pm.groupSize; j++) {
    let v = w[start + j * stride];
    mn = min(mn, v);
    mx = max(mx, v);
  }
  let maxq = f32((1u << pm.bits) - 1u);
  let step = max((mx - mn) / maxq, max(abs(mn), abs(mx)) / 1024.0);
  var sBits = f32_to_f16_bits(step);
  if (sBits == 0u) { sBits = 1u; } // all-zero (or f16-underflowing) group: the smallest f16 step, 2^-24
  let zBits = f32_to_f16_bits(-mn / f16_bits_to_f32(sBits));
  metaOut[gi] = sBits | (zBits << 16u);
}

@compute @workgroup_size(WG)
fn affine_pack(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let idx = flat_id(wid, nwg, lid);
  if (idx >= pp.rows * pp.wordsPerRow) { return; }
  let r = idx / pp.wordsPerRow;
  let c0 = (idx % pp.wordsPerRow) * pp.perWord;
  let maxq = f32((1u << pp.bits) - 1u);
  var word = 0u;
  for (var k = 0u; k < pp.perWord; k++) {
    let c = c0 + k;
    if (c >= pp.cols) { break; }
    var gi: u32;
    if (pp.axis == 1u) { gi = r * (pp.cols / pp.groupSize) + c / pp.groupSize; }
    else { gi = (r % (pp.rows / pp.groupSize)) * pp.cols + c; }
    let m = metaIn[gi];
    let s = f16_bits_to_f32(m & 0xffffu);
    let z = f16_bits_to_f32(m >> 16u);
    let q = clamp(round(w[r * pp.cols + c] / s + z), 0.0, maxq);
    word |= u32(q) << (k * pp.bits);
  }
  codes[idx] = word;
}
