// silu_mul_backward.wgsl — gradients of the SwiGLU gate y = silu(a) ⊙ b in one pass, f32:
//   s = σ(a), da = dy ⊙ b ⊙ s ⊙ (1 + a ⊙ (1 − s)), db = dy ⊙ a ⊙ s.
// Bindings (group 0):
//   0 a  : array<f32>  read        [N]
//   1 b  : array<f32>  read        [N]
//   2 dy : array<f32>  read        [N]
//   3 da : array<f32>  read_write  [N]
//   4 db : array<f32>  read_write  [N]
//   5 p  : uniform Params {n}
// Workgroup: override WG = 64; 4 elements per invocation, strided by the grid so loads stay coalesced.
// Dispatch: (ceil(N / (4 WG)) split over x and y by grid1d, 1). Reference: src/ops/silu_mul_backward.ts.

override WG: u32 = 64u;

struct Params { n: u32 }

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> dy: array<f32>;
@group(0) @binding(3) var<storage, read_write> da: array<f32>;
@group(0) @binding(4) var<storage, read_write> db: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

const PER_THREAD: u32 = 4u;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i0 = (wid.x + wid.y * nwg.x) * WG * PER_THREAD + lid;
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = i0 + k * WG;
    if (i < p.n) {
      let x = a[i];
      let s = 1.0 / (1.0 + exp(-x));
      let g = dy[i];
      da[i] = g * b[i] * s * (1.0 + x * (1.0 - s));
      db[i] = g * x * s;
    }
  }
}
