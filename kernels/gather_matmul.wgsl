// gather_matmul.wgsl — y[t, k, :] = w[idx[t, k]] · x[t, kx, :] (kx = 0 when Kx == 1, else k), f32:
// the sparse-MoE expert projection with the routing read on the device. Each expert matrix is
// [N, C] row-major as HF stores a Linear weight [out, in].
// Bindings (group 0):
//   0 w      : array<vec4<f32>> | array<f32>   read        [E, N, C] row-major (f32 entry points)
//              array<vec4<u32>> | array<u32>   read        [E, N, C] halves (halves8 / halves1)
//   1 x      : array<vec4<f32>> | array<f32>   read        [T, Kx, C], Kx = 1 or K
//   2 idx    : array<i32>                      read        [T, K] expert ids (any buffer when DIRECT)
//   3 y      : array<f32>                      read_write  [T, K, N]
//   4 p      : uniform Params {T, K, Kx, N, C, E, blocks}
// Entry points: rows4 (C % 4 == 0, vec4 loads) and rows1 (any C, scalar loads); for w stored as
// IEEE halves (two per u32 word, the low half first: the offload runtime's 16-bit slots), halves8
// (C % 8 == 0: one vec4<u32> load is 8 halves of a row) and halves1 (any C; rows may start
// mid-word). Halves widen with unpack2x16float, exact for normal and zero values; WGSL leaves
// subnormal halves (|w| < 6.1e-5) to the device, which may flush them (the reference widens them
// exactly). With the override DIRECT, idx is not read and every pair uses matrix 0: `gemv`.
// An expert id outside 0..E-1 (negative, or >= E; a u32 id >= 2^31 reads as negative) is not
// read from: its output rows are zero.
// Work split: the GEMV pattern (kernels/gemv.wgsl) once per (t, k) pair. A workgroup handles one
// pair and R·WG consecutive output rows; each invocation R (override, 1..8) rows n. The pair
// comes from workgroup_id, so idx[pair] and every x load (indexed by the pair and the loop
// counter only) are uniform: one load for all lanes. w loads are per lane (one row each); rows4
// reads four vec4 (a 64-byte line) of each row per step, then a tail one vec4 at a time. No
// shared memory, no barriers. Rows past N clamp their loads and skip the store.
// Dispatch: T·K·blocks workgroups with blocks = ceil(N / (R WG)), flat index
// g = wid.x + wid.y · num_workgroups.x (grid1d splits over x and y): pair = g / blocks,
// block = g % blocks; groups past T·K·blocks (grid1d rounding) return at once.
// Reference: src/ops/gather_matmul.ts (gatherMatmulRef).

override WG: u32 = 16u;
override R: u32 = 4u;
override DIRECT: bool = false;
const RMAX: u32 = 8u;

struct Params { T: u32, K: u32, Kx: u32, N: u32, C: u32, E: u32, blocks: u32 }

@group(0) @binding(0) var<storage, read> w4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(0) var<storage, read> w1: array<f32>;
@group(0) @binding(1) var<storage, read> x1: array<f32>;
@group(0) @binding(0) var<storage, read> wh8: array<vec4<u32>>;
@group(0) @binding(0) var<storage, read> wh1: array<u32>;
@group(0) @binding(2) var<storage, read> idx: array<i32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

// What one invocation computes: the (t, k) pair, its first output row, the expert and the x row.
struct Job { pair: u32, n0: u32, e: i32, xRow: u32 }

fn job(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> Job {
  let g = wid.x + wid.y * nwg.x;
  let pair = g / p.blocks;
  let n0 = ((g % p.blocks) * WG + lid) * R;
  var j: Job;
  j.pair = pair;
  j.n0 = n0;
  j.e = -1;
  if (pair < p.T * p.K) {
    if (DIRECT) { j.e = 0; } else { j.e = idx[pair]; }
    // t · Kx + (Kx == 1 ? 0 : k)
    j.xRow = (pair / p.K) * p.Kx + min(pair % p.K, p.Kx - 1u);
  }
  return j;
}

// The invocation's R output rows of its pair (rows past N are skipped).
fn store(j: Job, acc: array<f32, RMAX>) {
  for (var r = 0u; r < R; r++) {
    if (j.n0 + r < p.N) { y[j.pair * p.N + j.n0 + r] = acc[r]; }
  }
}

// Zeros for an out-of-range expert id; false when the pair is past the end or the id is bad.
fn usable(j: Job) -> bool {
  if (j.pair >= p.T * p.K) { return false; }
  if (j.e < 0 || u32(j.e) >= p.E) {
    store(j, array<f32, RMAX>());
    return false;
  }
  return true;
}

@compute @workgroup_size(WG)
fn rows4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let j = job(wid, nwg, lid);
  if (!usable(j)) { return; }
  let C4 = p.C / 4u;
  let wBase = u32(j.e) * p.N * C4;
  let xBase = j.xRow * C4;
  var acc: array<f32, RMAX>;
  // Four vec4 (one 64-byte line) per row per step, then the tail one vec4 at a time.
  let C16 = C4 - C4 % 4u;
  for (var c = 0u; c < C16; c += 4u) {
    let x0 = x4[xBase + c];
    let x1_ = x4[xBase + c + 1u];
    let x2 = x4[xBase + c + 2u];
    let x3 = x4[xBase + c + 3u];
    for (var r = 0u; r < R; r++) {
      let o = wBase + min(j.n0 + r, p.N - 1u) * C4 + c;
      acc[r] += dot(w4[o], x0) + dot(w4[o + 1u], x1_) + dot(w4[o + 2u], x2) + dot(w4[o + 3u], x3);
    }
  }
  for (var c = C16; c < C4; c++) {
    let xv = x4[xBase + c];
    for (var r = 0u; r < R; r++) { acc[r] += dot(w4[wBase + min(j.n0 + r, p.N - 1u) * C4 + c], xv); }
  }
  store(j, acc);
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
    for (var r = 0u; r < R; r++) { acc[r] += w1[wBase + min(j.n0 + r, p.N - 1u) * p.C + c] * xv; }
  }
  store(j, acc);
}

// dot of 8 halves (one vec4<u32>) with two vec4 of x.
fn dot8(w: vec4<u32>, xa: vec4<f32>, xb: vec4<f32>) -> f32 {
  let a = vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
  let b = vec4<f32>(unpack2x16float(w.z), unpack2x16float(w.w));
  return dot(a, xa) + dot(b, xb);
}

@compute @workgroup_size(WG)
fn halves8(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
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
      acc[r] += dot8(wh8[o], x0, x1_) + dot8(wh8[o + 1u], x2, x3);
    }
  }
  for (var c = C16; c < C8; c++) {
    let x0 = x4[xBase + 2u * c];
    let x1_ = x4[xBase + 2u * c + 1u];
    for (var r = 0u; r < R; r++) { acc[r] += dot8(wh8[wBase + min(j.n0 + r, p.N - 1u) * C8 + c], x0, x1_); }
  }
  store(j, acc);
}

// Half number `i` of w (element index over [E, N, C]).
fn half(i: u32) -> f32 {
  return unpack2x16float(wh1[i >> 1u])[i & 1u];
}

@compute @workgroup_size(WG)
fn halves1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
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
  store(j, acc);
}
