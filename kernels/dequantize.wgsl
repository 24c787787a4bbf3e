// dequantize.wgsl — Ŵ[rows, cols] f32 from packed codes and group metadata (QuantizedTensor layout,
// src/tensor/quantized_tensor.ts); and the NF4 double-quantised absmax decode.
// Bindings (group 0), entry points affine and nf4:
//   0 codes  : array<u32>   read        [rows, W] row-aligned, n codes per word, first code lowest
//   1 gmeta  : array<u32>   read        [groups] affine: pack2x16float(scale, zero); nf4: f32 bits
//   2 out    : array<f32>   read_write  [rows, cols]
//   3 p      : uniform Params {rows, cols, W, n, bits, g, axis, _, nf4: 16 x f32}
// Entry point decodeAbsmax (nf4 with double quantisation): absmax[g] = DYNAMIC8[code_g] · meta2[g / 256] + offset
//   0 mcodes : array<u32>   read        [ceil(groups / 4)] 8-bit codes, four per word
//   1 meta2  : array<f32>   read        [ceil(groups / 256)]
//   2 dyn8   : array<f32>   read        [256] the DYNAMIC8 codebook
//   3 absmax : array<f32>   read_write  [groups]
//   4 pa     : uniform {groups, offset, zero = 0}
// Workgroup: override WG = 64; affine/nf4: one invocation per word of a row (writes up to n values);
// decodeAbsmax: one per group. Dispatch: ceil(items / WG) workgroups split over x and y (grid1d).
// Arithmetic is the reference's, f32 for f32: (q − zero)·scale, NF4[q]·absmax and the absmax decode
// round where dequantizeRef / nf4AbsmaxRef round, so the output equals the reference bit for bit.
// Not a hot path: packed ops (qgemv, qmatmul) dequantise in registers instead.
// Reference: src/ops/dequantize_ref.ts (dequantizeRef, nf4AbsmaxRef).

override WG: u32 = 64u;

struct Params { rows: u32, cols: u32, W: u32, n: u32, bits: u32, g: u32, axis: u32, _pad: u32, nf4: array<vec4<f32>, 4> }
struct AbsmaxParams { groups: u32, offset: f32, zero: u32 } // zero: always 0, see decodeAbsmax

@group(0) @binding(0) var<storage, read> codes: array<u32>;
@group(0) @binding(1) var<storage, read> gmeta: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@group(0) @binding(0) var<storage, read> mcodes: array<u32>;
@group(0) @binding(1) var<storage, read> meta2: array<f32>;
@group(0) @binding(2) var<storage, read> dyn8: array<f32>;
@group(0) @binding(3) var<storage, read_write> absmax: array<f32>;
@group(0) @binding(4) var<uniform> pa: AbsmaxParams;

fn flatId(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid;
}

fn groupOf(r: u32, c: u32) -> u32 {
  if (p.axis == 1u) { return r * (p.cols / p.g) + c / p.g; }
  return (r % (p.rows / p.g)) * p.cols + c; // HQQ's reshape(g, -1)
}

@compute @workgroup_size(WG)
fn affine(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let t = flatId(wid, nwg, lid);
  if (t >= p.rows * p.W) { return; }
  let r = t / p.W;
  let c0 = (t % p.W) * p.n;
  let w = codes[t];
  let mask = (1u << p.bits) - 1u;
  for (var s = 0u; s < p.n && c0 + s < p.cols; s++) {
    let q = f32((w >> (s * p.bits)) & mask);
    let sz = unpack2x16float(gmeta[groupOf(r, c0 + s)]);
    out[r * p.cols + c0 + s] = (q - sz.y) * sz.x;
  }
}

@compute @workgroup_size(WG)
fn nf4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
  let t = flatId(wid, nwg, lid);
  if (t >= p.rows * p.W) { return; }
  let r = t / p.W;
  let c0 = (t % p.W) * 8u;
  let w = codes[t];
  for (var s = 0u; s < 8u && c0 + s < p.cols; s++) {
    let q = (w >> (4u * s)) & 15u;
    out[r * p.cols + c0 + s] = p.nf4[q >> 2u][q & 3u] * bitcast<f32>(gmeta[groupOf(r, c0 + s)]);
  }
}

@compute @workgroup_size(WG)
fn decodeAbsmax(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let g = flatId(wid, nwg, lid);
  if (g >= pa.groups) { return; }
  let code = (mcodes[g >> 2u] >> ((g & 3u) * 8u)) & 255u;
  // Round the product before the add, as the reference does: an XOR with a runtime zero keeps a
  // compiler from fusing the two into an FMA (which would differ by many ulps where the sum cancels).
  let prod = bitcast<f32>(bitcast<u32>(dyn8[code] * meta2[g >> 8u]) ^ pa.zero);
  absmax[g] = prod + pa.offset;
}
