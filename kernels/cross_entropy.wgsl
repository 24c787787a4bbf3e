// cross_entropy.wgsl — mean token cross-entropy over rows of logits, and its gradient, f32.
//   Forward:  row_loss[r] = logsumexp(x[r, :]) - x[r, t[r]]  (0 where t[r] == ignore);
//             loss = Σ_r row_loss[r] / nValid  (0 when no row is valid).
//   Backward: dx[r, j] = (softmax(x[r, :])_j - [j == t[r]]) · dloss / nValid  (0 rows where ignored).
//   A target outside [0, V) other than `ignore` cannot throw in a kernel: its row gives NaN.
// Bindings (group 0), per entry point:
//   rows     0 x: array<f32> [R, V] read · 1 t: array<i32> [R] read · 2 row_loss: array<f32> [R] rw · 3 p
//   finish   0 row_loss_in: array<f32> [R] read · 1 t · 2 out: array<f32> [1] rw (the loss) · 3 p
//   coef     0 t_in: array<i32> [R] read · 1 dloss: array<f32> [1] read · 2 coef_out: array<f32> [1] rw · 3 p
//   backward 0 x · 1 t · 2 coef: array<f32> [1] read (dloss / nValid) · 3 dx: array<f32> [R, V] rw · 4 pb
//   p, pb : uniform Params {rows, v, ignore (i32), nan (f32 NaN, a runtime value WGSL cannot spell)}
// Workgroup: rows/backward use override LANES (a power of two) x ROWS (rows per workgroup), chosen by
//   src/ops/_rows.ts like softmax; finish/coef run one workgroup of 256 invocations (strided sums and
//   a tree). Numerics: max-subtracted logsumexp in f32; the mean adds f32 row losses pairwise per
//   lane, so against float64 the loss is within ~1e-6 relative for N·V up to millions.
// Dispatch: rows/backward (ceil(R / ROWS) split over x and y by grid1d, 1); finish/coef (1, 1, 1).
// Reference: src/ops/cross_entropy.ts (crossEntropyRef, crossEntropyBackwardRef).

override LANES: u32 = 1u;
override ROWS: u32 = 64u;

struct Params { rows: u32, v: u32, ignore: i32, nan: f32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> t: array<i32>;
@group(0) @binding(2) var<storage, read_write> row_loss: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@group(0) @binding(0) var<storage, read> row_loss_in: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@group(0) @binding(0) var<storage, read> t_in: array<i32>;
@group(0) @binding(1) var<storage, read> dloss: array<f32>;
@group(0) @binding(2) var<storage, read_write> coef_out: array<f32>;

@group(0) @binding(2) var<storage, read> coef: array<f32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<uniform> pb: Params;

var<workgroup> red_max: array<f32, 256>;
var<workgroup> red_sum: array<f32, 256>;
var<workgroup> red_cnt: array<f32, 256>;

const LOWEST: f32 = -3.40282347e38;

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

// Max and Σ exp(x - max) of row `row` (all lanes of the workgroup must call it).
fn row_stats(lid: u32, lane: u32, live: bool, base: u32, v: u32) -> vec2<f32> {
  var m = LOWEST;
  if (live) {
    for (var j = lane; j < v; j += LANES) { m = max(m, x[base + j]); }
  }
  m = row_max(lid, lane, m);
  var s = 0.0;
  if (live) {
    for (var j = lane; j < v; j += LANES) { s += exp(x[base + j] - m); }
  }
  return vec2(m, row_sum(lid, lane, s));
}

@compute @workgroup_size(LANES * ROWS)
fn rows(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * ROWS + lid / LANES;
  let lane = lid % LANES;
  var target_ = p.ignore;
  if (row < p.rows) { target_ = t[row]; }
  let live = target_ != p.ignore;
  let ms = row_stats(lid, lane, live, row * p.v, p.v);
  if (row >= p.rows || lane != 0u) { return; }
  if (!live) { row_loss[row] = 0.0; return; }
  if (target_ < 0 || u32(target_) >= p.v) { row_loss[row] = p.nan; return; }
  row_loss[row] = ms.x + log(ms.y) - x[row * p.v + u32(target_)];
}

@compute @workgroup_size(256)
fn finish(@builtin(local_invocation_index) lid: u32) {
  var s = 0.0;
  var n = 0.0;
  for (var r = lid; r < p.rows; r += 256u) {
    s += row_loss_in[r];
    if (t[r] != p.ignore) { n += 1.0; }
  }
  red_sum[lid] = s;
  red_cnt[lid] = n;
  for (var k = 128u; k > 0u; k >>= 1u) {
    workgroupBarrier();
    if (lid < k) {
      red_sum[lid] += red_sum[lid + k];
      red_cnt[lid] += red_cnt[lid + k];
    }
  }
  if (lid == 0u) { out[0] = select(0.0, red_sum[0] / red_cnt[0], red_cnt[0] > 0.0); }
}

@compute @workgroup_size(256)
fn coef_main(@builtin(local_invocation_index) lid: u32) {
  var n = 0.0;
  for (var r = lid; r < p.rows; r += 256u) {
    if (t_in[r] != p.ignore) { n += 1.0; }
  }
  red_cnt[lid] = n;
  for (var k = 128u; k > 0u; k >>= 1u) {
    workgroupBarrier();
    if (lid < k) { red_cnt[lid] += red_cnt[lid + k]; }
  }
  if (lid == 0u) { coef_out[0] = select(0.0, dloss[0] / red_cnt[0], red_cnt[0] > 0.0); }
}

@compute @workgroup_size(LANES * ROWS)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * ROWS + lid / LANES;
  let lane = lid % LANES;
  var target_ = pb.ignore;
  if (row < pb.rows) { target_ = t[row]; }
  let live = target_ != pb.ignore;
  let base = row * pb.v;
  let ms = row_stats(lid, lane, live, base, pb.v);
  if (row >= pb.rows) { return; }
  if (!live) {
    for (var j = lane; j < pb.v; j += LANES) { dx[base + j] = 0.0; }
    return;
  }
  let bad = target_ < 0 || u32(target_) >= pb.v;
  let c = select(coef[0] / ms.y, pb.nan, bad);
  let g = select(coef[0], pb.nan, bad);
  for (var j = lane; j < pb.v; j += LANES) {
    let hit = select(0.0, g, i32(j) == target_);
    dx[base + j] = exp(x[base + j] - ms.x) * c - hit;
  }
}
