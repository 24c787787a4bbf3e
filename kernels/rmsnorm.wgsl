// rmsnorm.wgsl — y[r, :] = x[r, :] / sqrt(mean(x[r, :]²) + eps) * w, f32, over the last axis
//   (HF LlamaRMSNorm: the weight multiplies after normalisation).
// Bindings (group 0):
//   0 x      : array<f32>   read        [R, C] row-major (R = product of the leading dims)
//   1 w      : array<f32>   read        [C]
//   2 y      : array<f32>   read_write  [R, C]
//   3 p      : uniform Params {rows, c, eps}
// Workgroup: override LANES (invocations per row, a power of two) x ROWS (rows per workgroup),
//   LANES * ROWS <= 256. Each lane sums x² over the columns lane, lane + LANES, … of its row; the
//   LANES partial sums meet in a workgroup-memory tree (no barriers at all when LANES = 1, which
//   is what llvmpipe prefers: see src/ops/_rows.ts). A second strided pass writes y.
// Entry points: main (any C); main_vec4 (C % 4 == 0) binds x, w, y as vec4 arrays: llvmpipe pays per
//   load instruction, so a quarter of the loads runs ~2.3x faster ([512, 4096]: 4.6 vs 11 ms).
// Dispatch: (ceil(R / ROWS) split over x and y by grid1d, 1). Reference: src/ops/rmsnorm.ts (rmsNormRef).

override LANES: u32 = 1u;
override ROWS: u32 = 64u;

struct Params { rows: u32, c: u32, eps: f32, pad: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
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
    for (var j = lane; j < p.c; j += LANES) { let v = x[base + j]; acc += v * v; }
  }
  let total = row_sum(lid, lane, acc);
  if (!live) { return; }
  // 1/sqrt rather than inverseSqrt: inverseSqrt may be a low-precision estimate.
  let inv = 1.0 / sqrt(total / f32(p.c) + p.eps);
  for (var j = lane; j < p.c; j += LANES) { y[base + j] = (x[base + j] * inv) * w[j]; }
}

@group(0) @binding(0) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y4: array<vec4<f32>>;

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
    for (var j = lane; j < c4; j += LANES) { let v = x4[base + j]; acc += v * v; }
  }
  let total = row_sum(lid, lane, (acc.x + acc.y) + (acc.z + acc.w));
  if (!live) { return; }
  let inv = 1.0 / sqrt(total / f32(p.c) + p.eps);
  for (var j = lane; j < c4; j += LANES) { y4[base + j] = (x4[base + j] * inv) * w4[j]; }
}
