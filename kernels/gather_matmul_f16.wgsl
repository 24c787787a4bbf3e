// gather_matmul_f16.wgsl — y[t, k, :] = w[idx[t, k]] · x[t, kx, :] with w stored as IEEE half
// (two per u32 word, the low half first), x and y f32: kernels/gather_matmul.wgsl for weights kept
// at 16 bits on the device (the offload runtime's expert slots and streamed rows). With the
// override DIRECT, idx is not read and every pair uses matrix 0: `gemv` of an f16 [N, C] matrix.
// Bindings (group 0):
//   0 w      : array<vec4<u32>> | array<u32>   read        [E, N, C] halves, row-major
//   1 x      : array<vec4<f32>> | array<f32>   read        [T, Kx, C], Kx = 1 or K
//   2 idx    : array<i32>                      read        [T, K] expert ids (any buffer when DIRECT)
//   3 y      : array<f32>                      read_write  [T, K, N]
//   4 p      : uniform Params {T, K, Kx, N, C, E, blocks}
// Entry points: rows8 (C % 8 == 0: one vec4<u32> load is 8 halves of a row) and rows1 (any C,
// one half at a time, rows may start mid-word).
// Halves widen with unpack2x16float, exact for normal and zero values; WGSL leaves subnormal
// halves (|w| < 6.1e-5) to the device, which may flush them to zero (the reference widens them
// exactly; the difference is below the f32 sum's own rounding for weights of usual size).
// Work split, dispatch and the out-of-range id rule: as kernels/gather_matmul.wgsl.
// Reference: src/ops/gather_matmul.ts (gatherMatmulRef on the widened matrices).

override WG: u32 = 16u;
override R: u32 = 4u;
override DIRECT: bool = false;
const RMAX: u32 = 8u;

struct Params { T: u32, K: u32, Kx: u32, N: u32, C: u32, E: u32, blocks: u32 }

@group(0) @binding(0) var<storage, read> w8: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(0) var<storage, read> w1: array<u32>;
@group(0) @binding(1) var<storage, read> x1: array<f32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

struct Job { pair: u32, n0: u32, e: i32, xRow: u32 }

fn job(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> Job {
  let g = wid.x + wid.y * nwg.x;
  let pair = g / p.blocks;
  var j: Job;
  j.pair = pair;
  j.n0 = ((g % p.blocks) * WG + lid) * R;
  j.e = -1;
  if (pair < p.T * p.K) {
    if (DIRECT) { j.e = 0; } else { j.e = idx[pair]; }
    j.xRow = (pair / p.K) * p.Kx + min(pair % p.K, p.Kx - 1u);
  }
  return j;
}

fn usable(j: Job) -> bool {
  if (j.pair >= p.T * p.K) { return false; }
  if (j.e < 0 || u32(j.e) >= p.E) {
    for (var r = 0u; r < R; r++) {
      if (j.n0 + r < p.N) { y[j.pair * p.N + j.n0 + r] = 0.0; }
    }
    return false;
  }
  return true;
}

// dot of 8 halves (one vec4<u32>) with two vec4 of x.
fn dot8(w: vec4<u32>, xa: vec4<f32>, xb: vec4<f32>) -> f32 {
  let a = vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
  let b = vec4<f32>(unpack2x16float(w.z), unpack2x16float(w.w));
  return dot(a, xa) + dot(b, xb);
}

@compute @workgroup_size(WG)
fn rows8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let j = job(wid, nwg, lid);
  if (!usable(j)) { return; }
  let C8 = p.C / 8u;
  let wBase = u32(j.e) * p.N * C8;
  let xBase = j.xRow * (p.C / 4u);
  var acc: array<f32, RMAX>;
  // Two vec4<u32> (16 halves, one 64-byte line of x) per row per step, then the tail.
  let C16 = C8 - C8 % 2u;
  for (var c = 0u; c < C16; c += 2u) {
    let x0 = x4[xBase + 2u * c];
    let x1_ = x4[xBase + 2u * c + 1u];
    let x2 = x4[xBase + 2u * c + 2u];
    let x3 = x4[xBase + 2u * c + 3u];
    for (var r = 0u; r < R; r++) {
      let o = wBase + min(j.n0 + r, p.N - 1u) * C8 + c;
      acc[r] += dot8(w8[o], x0, x1_) + dot8(w8[o + 1u], x2, x3);
    }
  }
  for (var c = C16; c < C8; c++) {
    let x0 = x4[xBase + 2u * c];
    let x1_ = x4[xBase + 2u * c + 1u];
    for (var r = 0u; r < R; r++) { acc[r] += dot8(w8[wBase + min(j.n0 + r, p.N - 1u) * C8 + c], x0, x1_); }
  }
  for (var r = 0u; r < R; r++) {
    if (j.n0 + r < p.N) { y[j.pair * p.N + j.n0 + r] = acc[r]; }
  }
}

// Half number `i` of w (element index over [E, N, C]).
fn half(i: u32) -> f32 {
  return unpack2x16float(w1[i >> 1u])[i & 1u];
}

@compute @workgroup_size(WG)
fn rows1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let j = job(wid, nwg, lid);
  if (!usable(j)) { return; }
  let wBase = u32(j.e) * p.N * p.C;
  let xBase = j.xRow * p.C;
  var acc: array<f32, RMAX>;
  for (var c = 0u; c < p.C; c++) {
    let xv = x1[xBase + c];
    for (var r = 0u; r < R; r++) { acc[r] += half(wBase + min(j.n0 + r, p.N - 1u) * p.C + c) * xv; }
  }
  for (var r = 0u; r < R; r++) {
    if (j.n0 + r < p.N) { y[j.pair * p.N + j.n0 + r] = acc[r]; }
  }
}
