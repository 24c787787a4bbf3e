// embedding.wgsl — y[i, :] = table[ids[i], :], widened to f32: a row gather.
// Bindings (group 0):
//   0 table  : array<u32>   read        [V, C]: f32 as raw bits, or f16 / bf16 two per word
//                                       (element e in the low half of word e/2 when e is even)
//   1 ids    : array<u32>   read        [N] token ids (i32 tensors bound as their bits)
//   2 y      : array<f32>   read_write  [N, C]
//   3 p      : uniform Params {n, c, v, kind}   kind: 0 f32, 1 f16, 2 bf16
// Out-of-range ids (id >= V, or a negative i32, whose bits read as >= 2^31) write a row of zeros:
//   a kernel cannot throw, and zeros never index out of bounds. The CPU path throws instead.
// Workgroup: override WG = 64; each invocation writes PER_THREAD = 4 outputs, strided by WG.
// Dispatch: (ceil(N·C / (4 WG)) split over x and y by grid1d, 1).
// Reference: src/ops/embedding.ts (embeddingRef).

override WG: u32 = 64u;
const PER_THREAD: u32 = 4u;

struct Params { n: u32, c: u32, v: u32, kind: u32 }

@group(0) @binding(0) var<storage, read> table: array<u32>;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

// Same integer widening as cast.wgsl (exact, subnormals kept).
fn f16_bits_to_f32(h: u32) -> u32 {
  let sign = (h & 0x8000u) << 16u;
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  if (e == 0x1fu) { return sign | 0x7f800000u | (m << 13u); }
  if (e != 0u) { return sign | ((e + 112u) << 23u) | (m << 13u); }
  if (m == 0u) { return sign; }
  let b = firstLeadingBit(m);
  return sign | ((b + 103u) << 23u) | ((m << (23u - b)) & 0x7fffffu);
}

fn load(e: u32) -> f32 {
  if (p.kind == 0u) { return bitcast<f32>(table[e]); }
  let half = (table[e >> 1u] >> ((e & 1u) * 16u)) & 0xffffu;
  if (p.kind == 1u) { return bitcast<f32>(f16_bits_to_f32(half)); }
  return bitcast<f32>(half << 16u);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i0 = (wid.x + wid.y * nwg.x) * WG * PER_THREAD + lid;
  let total = p.n * p.c;
  for (var k = 0u; k < PER_THREAD; k++) {
    let o = i0 + k * WG;
    if (o < total) {
      let row = o / p.c;
      let id = ids[row];
      var v = 0.0;
      if (id < p.v) { v = load(id * p.c + (o - row * p.c)); }
      y[o] = v;
    }
  }
}
