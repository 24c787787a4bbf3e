// gemv.wgsl — y[O] = W[O, I] · x[I], f32, W row-major [out, in] as HF stores Linear weights.
// Bindings (group 0):
//   0 w      : array<vec4<f32>> | array<f32>   read        [O, I] row-major
//   1 x      : array<vec4<f32>> | array<f32>   read        [I]
//   2 y      : array<f32>                      read_write  [O]
//   3 p      : uniform Params {rows = O, cols = I}
// Entry points: rows4 (I % 4 == 0, vec4 loads) and rows1 (any I, scalar loads, about 4x slower).
// Workgroup: override WG = 16 invocations; each computes R (override, 1..8, default 4)
// consecutive rows. Loads of x depend on the loop counter only (the same address for all lanes),
// but llvmpipe (Mesa 22.3) still compiles every storage load to a per-lane loop, so they cost as much
// as the W loads; kernels/qgemv.wgsl reuses each x value over more rows for that reason. Each W load
// is per lane, so rows4 reads a whole 64-byte line of each row per step. No barriers: llvmpipe runs
// barrier reductions slowly. Measured on llvmpipe (2 cores), 4096 x 4096: rows4 R=4 7.5-7.8 GB/s of
// W in bench/kernels.ts and bench/quant.ts (earlier runs on a quieter machine reached 12; one vec4
// per step: 10.5; R=1: 3.2; W in an rgba32float texture: 9.8); rows1 ~3.5 GB/s.
// Dispatch: ceil(O / (R WG)) workgroups, split over x and y (grid1d). Rows past O clamp
// their loads and skip the store. Reference: src/ops/gemv.ts (gemvRef).

override WG: u32 = 16u;
override R: u32 = 4u;
const RMAX: u32 = 8u;

struct Params { rows: u32, cols: u32 }

@group(0) @binding(0) var<storage, read> w4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(0) var<storage, read> w1: array<f32>;
@group(0) @binding(1) var<storage, read> x1: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

fn firstRow(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return ((wid.x + wid.y * nwg.x) * WG + lid) * R;
}

@compute @workgroup_size(WG)
fn rows4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let r0 = firstRow(wid, nwg, lid);
  let I4 = p.cols / 4u;
  var acc: array<f32, RMAX>;
  // Four vec4 (one 64-byte line) per row per step, then the tail one vec4 at a time.
  let I16 = I4 - I4 % 4u;
  for (var k = 0u; k < I16; k += 4u) {
    let x0 = x4[k];
    let x1_ = x4[k + 1u];
    let x2 = x4[k + 2u];
    let x3 = x4[k + 3u];
    for (var r = 0u; r < R; r++) {
      let o = min(r0 + r, p.rows - 1u) * I4 + k;
      acc[r] += dot(w4[o], x0) + dot(w4[o + 1u], x1_) + dot(w4[o + 2u], x2) + dot(w4[o + 3u], x3);
    }
  }
  for (var k = I16; k < I4; k++) {
    let xv = x4[k];
    for (var r = 0u; r < R; r++) { acc[r] += dot(w4[min(r0 + r, p.rows - 1u) * I4 + k], xv); }
  }
  for (var r = 0u; r < R; r++) {
    if (r0 + r < p.rows) { y[r0 + r] = acc[r]; }
  }
}

@compute @workgroup_size(WG)
fn rows1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let r0 = firstRow(wid, nwg, lid);
  var acc: array<f32, RMAX>;
  for (var k = 0u; k < p.cols; k++) {
    let xv = x1[k];
    for (var r = 0u; r < R; r++) { acc[r] += w1[min(r0 + r, p.rows - 1u) * p.cols + k] * xv; }
  }
  for (var r = 0u; r < R; r++) {
    if (r0 + r < p.rows) { y[r0 + r] = acc[r]; }
  }
}
