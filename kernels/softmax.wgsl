// softmax.wgsl — y[r, :] = exp(x[r, :] - max_r) / Σ exp(x[r, :] - max_r), f32, over the last axis.
// Bindings (group 0):
//   0 x      : array<f32>   read        [R, C] row-major (R = product of the leading dims)
//   1 y      : array<f32>   read_write  [R, C]
//   2 p      : uniform Params {rows, c}
// Workgroup: override LANES (invocations per row, a power of two) x ROWS (rows per workgroup),
//   LANES * ROWS <= 256 (chosen by src/ops/_rows.ts). Three strided passes per row: the max, the
//   sum of exp(x - max), then the write; LANES > 1 combines lanes through workgroup-memory trees.
//   A row of only -inf gives NaN, as in PyTorch (0 / 0).
// Entry points: main (any C); main_vec4 (C % 4 == 0) binds x, y as vec4 arrays (a quarter of the
//   load instructions, which is what llvmpipe pays for).
// Dispatch: (ceil(R / ROWS) split over x and y by grid1d, 1). Reference: src/ops/softmax.ts (softmaxRef).

override LANES: u32 = 1u;
override ROWS: u32 = 64u;

struct Params { rows: u32, c: u32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

// Separate arrays so the second reduction cannot overwrite the first before every lane read it.
var<workgroup> red_max: array<f32, 256>;
var<workgroup> red_sum: array<f32, 256>;

const LOWEST: f32 = -3.40282347e38;

// Max of v over the LANES lanes of one row; every invocation of the workgroup must call it.
fn row_max(lid: u32, lane: u32, v: f32) -> f32 {
  if (LANES == 1u) { return v; }
  red_max[lid] = v;
  for (var s = LANES / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lane < s) { red_max[lid] = max(red_max[lid], red_max[lid + s]); }
  }
  workgroupBarrier();
  return red_max[lid - lane];
}

// Sum of v over the LANES lanes of one row; every invocation of the workgroup must call it.
fn row_sum(lid: u32, lane: u32, v: f32) -> f32 {
  if (LANES == 1u) { return v; }
  red_sum[lid] = v;
  for (var s = LANES / 2u; s > 0u; s >>= 1u) {
    workgroupBarrier();
    if (lane < s) { red_sum[lid] += red_sum[lid + s]; }
  }
  workgroupBarrier();
  return red_sum[lid - lane];
}

@compute @workgroup_size(LANES * ROWS)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * ROWS + lid / LANES;
  let lane = lid % LANES;
  let live = row < p.rows;
  let base = row * p.c;
  var m = LOWEST;
  if (live) {
    for (var j = lane; j < p.c; j += LANES) { m = max(m, x[base + j]); }
  }
  m = row_max(lid, lane, m);
  var s = 0.0;
  if (live) {
    for (var j = lane; j < p.c; j += LANES) { s += exp(x[base + j] - m); }
  }
  s = row_sum(lid, lane, s);
  if (!live) { return; }
  for (var j = lane; j < p.c; j += LANES) { y[base + j] = exp(x[base + j] - m) / s; }
}

@group(0) @binding(0) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> y4: array<vec4<f32>>;

@compute @workgroup_size(LANES * ROWS)
fn main_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * ROWS + lid / LANES;
  let lane = lid % LANES;
  let live = row < p.rows;
  let c4 = p.c / 4u;
  let base = row * c4;
  var m4 = vec4(LOWEST);
  if (live) {
    for (var j = lane; j < c4; j += LANES) { m4 = max(m4, x4[base + j]); }
  }
  let m = row_max(lid, lane, max(max(m4.x, m4.y), max(m4.z, m4.w)));
  var s4 = vec4(0.0);
  if (live) {
    for (var j = lane; j < c4; j += LANES) { s4 += exp(x4[base + j] - m); }
  }
  let s = row_sum(lid, lane, (s4.x + s4.y) + (s4.z + s4.w));
  if (!live) { return; }
  for (var j = lane; j < c4; j += LANES) { y4[base + j] = exp(x4[base + j] - m) / s; }
}
