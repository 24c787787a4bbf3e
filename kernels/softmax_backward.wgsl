// softmax_backward.wgsl — dx[r, :] = y[r, :] ⊙ (dy[r, :] − Σ_j dy[r, j]·y[r, j]), f32, over the last
//   axis (the vector-Jacobian product of softmax, from its output y).
// Bindings (group 0):
//   0 y      : array<f32>   read        [R, C] row-major softmax output (R = product of the leading dims)
//   1 dy     : array<f32>   read        [R, C]
//   2 dx     : array<f32>   read_write  [R, C]
//   3 p      : uniform Params {rows, c}
// Workgroup: override LANES (invocations per row, a power of two) x ROWS (rows per workgroup),
//   LANES * ROWS <= 256 (chosen by src/ops/_rows.ts). Two strided passes per row: the dot product
//   (LANES > 1 combines lanes through a workgroup-memory tree), then the write.
// Entry points: main (any C); main_vec4 (C % 4 == 0) binds y, dy, dx as vec4 arrays (a quarter of
//   the load instructions, which is what llvmpipe pays for).
// Dispatch: (ceil(R / ROWS) split over x and y by grid1d, 1).
// Reference: src/ops/softmax_backward.ts (softmaxBackwardRef).

override LANES: u32 = 1u;
override ROWS: u32 = 64u;

struct Params { rows: u32, c: u32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<storage, read> y: array<f32>;
@group(0) @binding(1) var<storage, read> dy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

var<workgroup> red: array<f32, 256>;

// Sum of v over the LANES lanes of one row; every invocation of the workgroup must call it.
fn row_sum(lid: u32, lane: u32, v: f32) -> f32 {
  if (LANES == 1u) { return v; }
  red[lid] = v;
  for (var s = LANES / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lane < s) { red[lid] += red[lid + s]; }
  }
  workgroupBarrier();
  return red[lid - lane];
}

@compute @workgroup_size(LANES * ROWS)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * ROWS + lid / LANES;
  let lane = lid % LANES;
  let live = row < p.rows;
  let base = row * p.c;
  var acc = 0.0;
  if (live) {
    for (var j = lane; j < p.c; j += LANES) { acc += dy[base + j] * y[base + j]; }
  }
  let s = row_sum(lid, lane, acc);
  if (!live) { return; }
  for (var j = lane; j < p.c; j += LANES) { dx[base + j] = y[base + j] * (dy[base + j] - s); }
}

@group(0) @binding(0) var<storage, read> y4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> dy4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dx4: array<vec4<f32>>;

@compute @workgroup_size(LANES * ROWS)
fn main_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * ROWS + lid / LANES;
  let lane = lid % LANES;
  let live = row < p.rows;
  let c4 = p.c / 4u;
  let base = row * c4;
  var acc = vec4(0.0);
  if (live) {
    for (var j = lane; j < c4; j += LANES) { acc += dy4[base + j] * y4[base + j]; }
  }
  let s = row_sum(lid, lane, (acc.x + acc.y) + (acc.z + acc.w));
  if (!live) { return; }
  for (var j = lane; j < c4; j += LANES) { dx4[base + j] = y4[base + j] * (dy4[base + j] - s); }
}
