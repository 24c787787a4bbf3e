// smooth_l1.wgsl — SmoothL1 (Huber with β) of d = a − b and its derivative, element by element, f32:
//   value: y = |d| < β ? 0.5·d²/β : |d| − 0.5·β           (entry point `value`)
//   grad:  y = clamp(d / β, −1, 1) · g                     (entry point `grad`; g the upstream gradient)
// Bindings (group 0): 0 a [N] read, 1 b [N] read, 2 g [N] read (grad; value binds any read buffer),
//   3 y [N] read_write, 4 p uniform {n, beta}.
// Workgroup: override WG = 64, one element per invocation.
// Dispatch: (ceil(N / WG) split over x and y by grid1d, 1), flat index wid.x + wid.y·nwg.x.
// Reference: src/ops/smooth_l1.ts (smoothL1Ref, smoothL1GradRef).

override WG: u32 = 64u;

struct Params { n: u32, beta: f32 }

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn index(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG + lid;
}

@compute @workgroup_size(WG)
fn value(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= p.n) { return; }
  let d = a[i] - b[i];
  let m = abs(d);
  if (m < p.beta) {
    y[i] = 0.5 * d * d / p.beta;
  } else {
    y[i] = m - 0.5 * p.beta;
  }
  _ = g[0];
}

@compute @workgroup_size(WG)
fn grad(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = index(wid, nwg, lid);
  if (i >= p.n) { return; }
  let d = a[i] - b[i];
  y[i] = clamp(d / p.beta, -1.0, 1.0) * g[i];
}
