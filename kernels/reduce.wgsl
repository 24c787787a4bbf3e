// reduce.wgsl — y[r] = (Σ_{j < c} x[r·c + j]) / div, f32: row sums over the last axis, and the
//   partial sums of sumAll (rows are chunks of a flat array; the last chunk may be short).
// Bindings (group 0):
//   0 x      : array<f32>   read        [N] viewed as [R, c]; row r covers x[r·c, min(r·c + c, N))
//   1 y      : array<f32>   read_write  [R]
//   2 p      : uniform Params {rows, c, n, div}   (div = 1 for sums, the count for means)
// Workgroup: override LANES (invocations per row, a power of two) x ROWS (rows per workgroup),
//   LANES * ROWS <= 256 (chosen by src/ops/_rows.ts).
// Numerics: each lane adds its strided elements in blocks of BLOCK = 32 (f32; the vec4 entry keeps
//   four such sums), adds the block totals into a second accumulator, and the lanes meet in a tree.
//   With n_l elements per lane the error is at most about (BLOCK + n_l / BLOCK + log2 LANES) ·
//   2^-24 · Σ|x|, against n · 2^-24 · Σ|x| for one running sum. No Kahan summation: on llvmpipe
//   the compiler folds the compensation term away (measured: 1 + 100000 × 1e-8 sums to exactly 1
//   with Kahan, as naively), since SPIR-V from WGSL carries no NoContraction/precise marking.
// Entry points: main (any c, n); main_vec4 (c % 4 == 0 and n % 4 == 0) binds x as a vec4 array and
//   keeps four accumulators per lane (a quarter of the loads, and each sum a quarter as long).
// Dispatch: (ceil(R / ROWS) split over x and y by grid1d, 1). Reference: src/ops/reduce.ts (sumRef).

override LANES: u32 = 1u;
override ROWS: u32 = 64u;

const BLOCK: u32 = 32u;

struct Params { rows: u32, c: u32, n: u32, div: f32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> y: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

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
  var acc = 0.0;
  if (live) {
    let start = row * p.c;
    let end = min(start + p.c, p.n);
    var blk = 0.0;
    var k = 0u;
    for (var j = start + lane; j < end; j += LANES) {
      blk += x[j];
      k++;
      if (k == BLOCK) { acc += blk; blk = 0.0; k = 0u; }
    }
    acc += blk;
  }
  let total = row_sum(lid, lane, acc);
  if (live && lane == 0u) { y[row] = total / p.div; }
}

@group(0) @binding(0) var<storage, read> x4: array<vec4<f32>>;

@compute @workgroup_size(LANES * ROWS)
fn main_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * nwg.x) * ROWS + lid / LANES;
  let lane = lid % LANES;
  let live = row < p.rows;
  var acc = vec4(0.0);
  if (live) {
    let start = row * (p.c / 4u);
    let end = min(start + p.c / 4u, p.n / 4u);
    var blk = vec4(0.0);
    var k = 0u;
    for (var j = start + lane; j < end; j += LANES) {
      blk += x4[j];
      k++;
      if (k == BLOCK) { acc += blk; blk = vec4(0.0); k = 0u; }
    }
    acc += blk;
  }
  let total = row_sum(lid, lane, (acc.x + acc.y) + (acc.z + acc.w));
  if (live && lane == 0u) { y[row] = total / p.div; }
}
