// rmsnorm_backward.wgsl — gradients of y = w ⊙ x·r, r = 1/sqrt(mean(x²) + eps), f32, over the last axis
//   (HF LlamaRMSNorm):  dx[r, i] = r·w[i]·dy[r, i] − x[r, i]·r³/C · Σ_j dy[r, j]·w[j]·x[r, j]
//                       dw[i]    = Σ_rows dy[r, i]·x[r, i]·r
// Three entry points, run in order; no atomics, every sum in a fixed order (deterministic):
//   dx / dx_vec4 — one row per LANES lanes (as rmsnorm.wgsl); writes dx and rstd[r] = r.
//     0 x    : array<f32> | array<vec4<f32>>  read        [R, C] row-major
//     1 w    : array<f32> | array<vec4<f32>>  read        [C]
//     2 dy   : array<f32> | array<vec4<f32>>  read        [R, C]
//     3 dx   : array<f32> | array<vec4<f32>>  read_write  [R, C]
//     4 rstd : array<f32>                     read_write  [R]
//     5 p    : uniform Params {rows, c, eps, rpb}
//     Workgroup: override LANES x ROWS (<= 256, chosen by src/ops/_rows.ts); the two row sums
//     (Σx², Σ dy·w·x) meet in one vec2 workgroup-memory tree when LANES > 1.
//     Dispatch: (ceil(R / ROWS) split over x and y by grid1d, 1).
//   dw_part / dw_part_vec4 — partial column sums over blocks of rpb rows.
//     0 x  1 dy : read [R, C];  2 rstd : read [R];  3 part : read_write [ceil(R / rpb), C];  4 p
//     Workgroup: override WG; invocation g sums column (or vec4 column) g % cols over row block
//     g / cols. Dispatch: (ceil(cols · blocks / WG) split by grid1d, 1). When there is one block,
//     part is dw itself and dw_sum is skipped.
//   dw_sum / dw_sum_vec4 — dw[i] = Σ_b part[b, i], blocks in order.
//     0 part : read [blocks, C];  1 dw : read_write [C];  2 p {rows = blocks, c}
//     Dispatch: (ceil(cols / WG) split by grid1d, 1).
// Vec4 entries need C % 4 == 0 (a quarter of the load instructions, what llvmpipe pays for).
// Reference: src/ops/rmsnorm_backward.ts (rmsNormBackwardRef).

override LANES: u32 = 1u;
override ROWS: u32 = 64u;
override WG: u32 = 64u;

struct Params { rows: u32, c: u32, eps: f32, rpb: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

var<workgroup> red: array<vec2<f32>, 256>;

// Sum of v over the LANES lanes of one row; every invocation of the workgroup must call it.
fn row_sum2(lid: u32, lane: u32, v: vec2<f32>) -> vec2<f32> {
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
fn dx_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * ROWS + lid / LANES;
  let lane = lid % LANES;
  let live = row < p.rows;
  let base = row * p.c;
  var acc = vec2(0.0);
  if (live) {
    for (var j = lane; j < p.c; j += LANES) {
      let xv = x[base + j];
      acc += vec2(xv * xv, dy[base + j] * w[j] * xv);
    }
  }
  let tot = row_sum2(lid, lane, acc);
  if (!live) { return; }
  let r = 1.0 / sqrt(tot.x / f32(p.c) + p.eps);
  let k = r * r * r * tot.y / f32(p.c);
  if (lane == 0u) { rstd[row] = r; }
  for (var j = lane; j < p.c; j += LANES) { dx[base + j] = r * w[j] * dy[base + j] - k * x[base + j]; }
}

@group(0) @binding(0) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> w4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> dy4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> dx4: array<vec4<f32>>;

@compute @workgroup_size(LANES * ROWS)
fn dx_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * ROWS + lid / LANES;
  let lane = lid % LANES;
  let live = row < p.rows;
  let c4 = p.c / 4u;
  let base = row * c4;
  var ss = vec4(0.0);
  var sd = vec4(0.0);
  if (live) {
    for (var j = lane; j < c4; j += LANES) {
      let xv = x4[base + j];
      ss += xv * xv;
      sd += dy4[base + j] * w4[j] * xv;
    }
  }
  let tot = row_sum2(lid, lane, vec2((ss.x + ss.y) + (ss.z + ss.w), (sd.x + sd.y) + (sd.z + sd.w)));
  if (!live) { return; }
  let r = 1.0 / sqrt(tot.x / f32(p.c) + p.eps);
  let k = r * r * r * tot.y / f32(p.c);
  if (lane == 0u) { rstd[row] = r; }
  for (var j = lane; j < c4; j += LANES) { dx4[base + j] = r * w4[j] * dy4[base + j] - k * x4[base + j]; }
}

// ---- dweight: partial sums over row blocks, then a sum over blocks

@group(0) @binding(0) var<storage, read> px: array<f32>;
@group(0) @binding(1) var<storage, read> pdy: array<f32>;
@group(0) @binding(2) var<storage, read> prstd: array<f32>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;
@group(0) @binding(4) var<uniform> pp: Params;

@compute @workgroup_size(WG)
fn dw_part(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let g = (wid.x + wid.y * nwg.x) * WG + lid;
  let blocks = (pp.rows + pp.rpb - 1u) / pp.rpb;
  if (g >= pp.c * blocks) { return; }
  let b = g / pp.c;
  let col = g - b * pp.c;
  let r1 = min(pp.rows, (b + 1u) * pp.rpb);
  var acc = 0.0;
  for (var r = b * pp.rpb; r < r1; r++) { acc += pdy[r * pp.c + col] * px[r * pp.c + col] * prstd[r]; }
  part[b * pp.c + col] = acc;
}

@group(0) @binding(0) var<storage, read> px4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> pdy4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> part4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn dw_part_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let g = (wid.x + wid.y * nwg.x) * WG + lid;
  let c4 = pp.c / 4u;
  let blocks = (pp.rows + pp.rpb - 1u) / pp.rpb;
  if (g >= c4 * blocks) { return; }
  let b = g / c4;
  let col = g - b * c4;
  let r1 = min(pp.rows, (b + 1u) * pp.rpb);
  var acc = vec4(0.0);
  for (var r = b * pp.rpb; r < r1; r++) { acc += pdy4[r * c4 + col] * px4[r * c4 + col] * prstd[r]; }
  part4[b * c4 + col] = acc;
}

@group(0) @binding(0) var<storage, read> sp: array<f32>;
@group(0) @binding(1) var<storage, read_write> dw: array<f32>;
@group(0) @binding(2) var<uniform> ps: Params;

@compute @workgroup_size(WG)
fn dw_sum(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let col = (wid.x + wid.y * nwg.x) * WG + lid;
  if (col >= ps.c) { return; }
  var acc = 0.0;
  for (var b = 0u; b < ps.rows; b++) { acc += sp[b * ps.c + col]; }
  dw[col] = acc;
}

@group(0) @binding(0) var<storage, read> sp4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dw4: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn dw_sum_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let col = (wid.x + wid.y * nwg.x) * WG + lid;
  let c4 = ps.c / 4u;
  if (col >= c4) { return; }
  var acc = vec4(0.0);
  for (var b = 0u; b < ps.rows; b++) { acc += sp4[b * c4 + col]; }
  dw4[col] = acc;
}
