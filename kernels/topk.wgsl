// topk.wgsl — the k largest entries of each row, sorted descending, with their indices.
//   Order: by value descending, ties by lower index first (a total order on NaN-free rows).
// Bindings (group 0):
//   0 x       : array<f32>  read        [R, E] row-major
//   1 values  : array<f32>  read_write  [R, K]
//   2 indices : array<i32>  read_write  [R, K]
//   3 p       : uniform Params {R, E, K}
// Workgroup: override WG = 64; one invocation per row does K selection passes over the row, each picking
// the best entry strictly after the previous pick in the order above: O(K·E) reads, no scratch memory,
// so any E and K work. Routing (E ≤ 128, K ≤ 8) is a few hundred reads per row.
// Dispatch: (ceil(R / WG) workgroups, split over x and y by grid1d). Reference: src/ops/topk.ts (topkRef).

override WG: u32 = 64u;

struct Params { R: u32, E: u32, K: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> values: array<f32>;
@group(0) @binding(2) var<storage, read_write> indices: array<i32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * WG + lid;
  if (row >= p.R) { return; }
  let xb = row * p.E;
  let ob = row * p.K;
  var pv = 0.0;      // previous pick (value, index); pi < 0 before the first pass
  var pi = -1i;
  for (var s = 0u; s < p.K; s++) {
    var bv = 0.0;
    var bi = -1i;
    for (var e = 0u; e < p.E; e++) {
      let xv = x[xb + e];
      let ie = i32(e);
      let after = pi < 0 || xv < pv || (xv == pv && ie > pi);
      // Scanning upward, a tie with the current best keeps the lower index.
      if (after && (bi < 0 || xv > bv)) {
        bv = xv;
        bi = ie;
      }
    }
    values[ob + s] = bv;
    indices[ob + s] = bi;
    pv = bv;
    pi = bi;
  }
}
