// permute.wgsl — y = x with its three axes reordered: y[i0, i1, i2] = x at i0·s0 + i1·s1 + i2·s2, moving
//   raw 32-bit words (entry `main`) or 16-byte vec4 words (entry `main4`, when the last axis stays last
//   and its extent is a multiple of 4; the op then counts the axis in vec4 units).
// Bindings (group 0):
//   0 x      : array<u32> | array<vec4<u32>>  read        [A0, A1, A2] row-major; only the words the
//                                                          strides reach are read (a leading slice)
//   1 y      : array<u32> | array<vec4<u32>>  read_write  [B0, B1, B2] = A permuted; words ≥ total untouched
//   2 p      : uniform Params {B1, B2, s0, s1, s2 (strides in x of y's axes), total = B0·B1·B2}
// Workgroup: override WG (64); each invocation writes PER_THREAD = 4 outputs strided by WG, so a
//   workgroup's writes are contiguous (reads follow the strides; no shared-memory tiling).
// Dispatch: (ceil(total / (4 WG)) split over x and y by grid1d, 1). Reference: src/ops/permute.ts.

override WG: u32 = 64u;

const PER_THREAD: u32 = 4u;

struct Params { B1: u32, B2: u32, s0: u32, s1: u32, s2: u32, total: u32 }

@group(0) @binding(0) var<storage, read> x: array<u32>;
@group(0) @binding(1) var<storage, read_write> y: array<u32>;
@group(0) @binding(0) var<storage, read> x4: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> y4: array<vec4<u32>>;
@group(0) @binding(2) var<uniform> p: Params;

fn source(o: u32) -> u32 {                   // index in x of output word o
  let i2 = o % p.B2;
  let r = o / p.B2;
  return (r / p.B1) * p.s0 + (r % p.B1) * p.s1 + i2 * p.s2;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let start = (wid.x + wid.y * nwg.x) * WG * PER_THREAD + lid;
  for (var i = 0u; i < PER_THREAD; i++) {
    let o = start + i * WG;
    if (o >= p.total) { return; }
    y[o] = x[source(o)];
  }
}

@compute @workgroup_size(WG)
fn main4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let start = (wid.x + wid.y * nwg.x) * WG * PER_THREAD + lid;
  for (var i = 0u; i < PER_THREAD; i++) {
    let o = start + i * WG;
    if (o >= p.total) { return; }
    y4[o] = x4[source(o)];
  }
}
