// gather.wgsl — row and column gathers and row scatters (replace / accumulate) driven by an index tensor.
// Bindings (group 0) per entry point; indices are i32 and an out-of-range index (< 0 or ≥ the extent)
// is skipped: a gathered row/column stays zero, a scattered row is not written.
//   gather_rows   0 x: array<u32> [R, C]   1 idx: array<i32> [n]   2 y: array<u32> [n, C]   3 p {R, C, n}
//   gather_cols   0 x: array<u32> [R, C]   1 idx: array<i32> [n]   2 y: array<u32> [R, n]   3 p {R, C, n}
//   scatter_rows  0 dst: array<f32> [R, C]  1 idx [n]  2 src: array<f32> [n, C]  3 w: array<f32> [n]
//                 4 y: array<f32> [R, C]   5 p {R, C, n, mode, weighted}
// Gathers move raw 32-bit words, so f32, i32 and u32 data all work. One invocation per output element,
// 4 elements each strided by WG (coalesced); dispatch ceil(count / (4 WG)) groups split by grid1d.
// scatter_rows: one workgroup per destination row r; lanes own columns c ≡ lid (mod WG). The workgroup
// scans idx in order and, for each i with idx[i] == r, replaces (mode 0: the last match wins) or adds
// (mode 1: w[i] · src[i] when weighted, in ascending i) — deterministic with repeated indices and no
// atomics, at the cost of n index reads per destination row. Dispatch: R groups split by grid1d.
// Reference: src/ops/gather.ts (gatherRowsRef, gatherColsRef, scatterRowsRef).

override WG: u32 = 64u;
const PER_THREAD: u32 = 4u;

struct GatherParams { R: u32, C: u32, n: u32 }
struct ScatterParams { R: u32, C: u32, n: u32, mode: u32, weighted: u32 }

@group(0) @binding(0) var<storage, read> x: array<u32>;
@group(0) @binding(1) var<storage, read> idx: array<i32>;
@group(0) @binding(2) var<storage, read_write> y: array<u32>;
@group(0) @binding(3) var<uniform> gp: GatherParams;

@group(0) @binding(0) var<storage, read> dst: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read_write> ys: array<f32>;
@group(0) @binding(5) var<uniform> sp: ScatterParams;

fn first(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG * PER_THREAD + lid;
}

@compute @workgroup_size(WG)
fn gather_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let e0 = first(wid, nwg, lid);
  for (var k = 0u; k < PER_THREAD; k++) {
    let e = e0 + k * WG;
    if (e < gp.n * gp.C) {
      let r = idx[e / gp.C];
      if (r >= 0 && u32(r) < gp.R) { y[e] = x[u32(r) * gp.C + e % gp.C]; }
    }
  }
}

@compute @workgroup_size(WG)
fn gather_cols(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let e0 = first(wid, nwg, lid);
  for (var k = 0u; k < PER_THREAD; k++) {
    let e = e0 + k * WG;
    if (e < gp.R * gp.n) {
      let c = idx[e % gp.n];
      if (c >= 0 && u32(c) < gp.C) { y[e] = x[(e / gp.n) * gp.C + u32(c)]; }
    }
  }
}

@compute @workgroup_size(WG)
fn scatter_rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let r = wid.x + wid.y * nwg.x;
  if (r >= sp.R) { return; }
  let rb = r * sp.C;
  for (var c = lid; c < sp.C; c += WG) { ys[rb + c] = dst[rb + c]; }
  for (var i = 0u; i < sp.n; i++) {
    if (idx[i] != i32(r)) { continue; }
    let sb = i * sp.C;
    if (sp.mode == 0u) {
      for (var c = lid; c < sp.C; c += WG) { ys[rb + c] = src[sb + c]; }
    } else if (sp.weighted == 1u) {
      let wi = w[i];
      for (var c = lid; c < sp.C; c += WG) { ys[rb + c] += wi * src[sb + c]; }
    } else {
      for (var c = lid; c < sp.C; c += WG) { ys[rb + c] += src[sb + c]; }
    }
  }
}
