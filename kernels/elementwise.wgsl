// elementwise.wgsl — y = f(a) or y = f(a, b), element by element, f32.
// Bindings (group 0):
//   0 a      : array<f32>   read        [N]
//   1 b      : array<f32>   read        [NB] (binary ops; NB divides N, b broadcasts as b[i % NB])
//   1|2 y    : array<f32>   read_write  [N]
//   last p   : uniform Params {n, nb, alpha, beta}
// Unary entry points (silu, sigmoid, gelu, gelu_tanh, scale) bind a, y, p; binary ones (add, mul, silu_mul) a, b, y, p.
// Workgroup: override WG = 64; each invocation handles 4 elements, strided by the grid so loads stay coalesced.
// Dispatch: (ceil(N / (4 WG)) split over x and y by grid1d, 1). Reference: src/ops/elementwise.ts (*Ref).

override WG: u32 = 64u;

struct Params { n: u32, nb: u32, alpha: f32, beta: f32 }

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@group(0) @binding(1) var<storage, read_write> yu: array<f32>;
@group(0) @binding(2) var<uniform> pu: Params;

const PER_THREAD: u32 = 4u;

fn base(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG * PER_THREAD + lid;
}

fn erf_approx(x: f32) -> f32 {
  // Abramowitz & Stegun 7.1.26, |error| < 1.5e-7.
  let s = sign(x);
  let z = abs(x);
  let t = 1.0 / (1.0 + 0.3275911 * z);
  let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return s * (1.0 - poly * exp(-z * z));
}

fn silu_f(x: f32) -> f32 { return x / (1.0 + exp(-x)); }

fn gelu_tanh_f(x: f32) -> f32 {
  let inner = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  return 0.5 * x * (1.0 + tanh(clamp(inner, -15.0, 15.0)));
}

@compute @workgroup_size(WG)
fn add(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
  let i0 = base(wid, nwg, lid);
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = i0 + k * WG;
    if (i < p.n) { y[i] = a[i] + b[i % p.nb]; }
  }
}

@compute @workgroup_size(WG)
fn mul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
       @builtin(local_invocation_index) lid: u32) {
  let i0 = base(wid, nwg, lid);
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = i0 + k * WG;
    if (i < p.n) { y[i] = a[i] * b[i % p.nb]; }
  }
}

@compute @workgroup_size(WG)
fn silu_mul(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let i0 = base(wid, nwg, lid);
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = i0 + k * WG;
    if (i < p.n) { y[i] = silu_f(a[i]) * b[i % p.nb]; }
  }
}

@compute @workgroup_size(WG)
fn scale(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let i0 = base(wid, nwg, lid);
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = i0 + k * WG;
    if (i < pu.n) { yu[i] = a[i] * pu.alpha + pu.beta; }
  }
}

@compute @workgroup_size(WG)
fn silu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i0 = base(wid, nwg, lid);
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = i0 + k * WG;
    if (i < pu.n) { yu[i] = silu_f(a[i]); }
  }
}

@compute @workgroup_size(WG)
fn sigmoid(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let i0 = base(wid, nwg, lid);
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = i0 + k * WG;
    if (i < pu.n) { yu[i] = 1.0 / (1.0 + exp(-a[i])); }
  }
}

@compute @workgroup_size(WG)
fn gelu(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i0 = base(wid, nwg, lid);
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = i0 + k * WG;
    if (i < pu.n) { let x = a[i]; yu[i] = 0.5 * x * (1.0 + erf_approx(x * 0.7071067811865476)); }
  }
}

@compute @workgroup_size(WG)
fn gelu_tanh(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
  let i0 = base(wid, nwg, lid);
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = i0 + k * WG;
    if (i < pu.n) { yu[i] = gelu_tanh_f(a[i]); }
  }
}
