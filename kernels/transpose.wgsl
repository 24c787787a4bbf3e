// transpose.wgsl — y[z, c, r] = x[z, r, c]: swaps the last two axes of a batch of row-major matrices,
//   moving raw 32-bit words (f32, i32, u32 alike).
// Bindings (group 0):
//   0 x      : array<u32>   read        [B, R, C] row-major
//   1 y      : array<u32>   read_write  [B, C, R]
//   2 p      : uniform Params {rows R, cols C, batch B, total = B·R·C}
// Workgroup: override WG = 64; each invocation writes PER_THREAD = 4 outputs, strided by WG so the
//   writes of a workgroup stay contiguous (the reads are strided by R; no shared-memory tiling, this
//   is the v1 naive kernel, enough for the backward passes' transposes of activations).
// Dispatch: (ceil(total / (4 WG)) split over x and y by grid1d, 1). Reference: src/ops/transpose.ts.

override WG: u32 = 64u;

const PER_THREAD: u32 = 4u;

struct Params { rows: u32, cols: u32, batch: u32, total: u32 }

@group(0) @binding(0) var<storage, read> x: array<u32>;
@group(0) @binding(1) var<storage, read_write> y: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let start = (wid.x + wid.y * nwg.x) * WG * PER_THREAD + lid;
  let plane = p.rows * p.cols;
  for (var k = 0u; k < PER_THREAD; k++) {
    let o = start + k * WG; // output index in [B, C, R]
    if (o >= p.total) { return; }
    let z = o / plane;
    let rem = o - z * plane;
    let c = rem / p.rows;
    let r = rem - c * p.rows;
    y[o] = x[z * plane + r * p.cols + c];
  }
}
