// rope_backward.wgsl — backward of rotary position embedding (HF `rotate_half` convention), f32: the
//   transpose of the forward rotation, i.e. a rotation by −angle. For i < R/2, angle = pos[t] · θ^(-2i/R):
//     dx[t,h,i]       = dy[t,h,i] cos + dy[t,h,i+R/2] sin
//     dx[t,h,i+R/2]   = dy[t,h,i+R/2] cos − dy[t,h,i] sin
//   and dx[t,h,j] = dy[t,h,j] for R <= j < D (partial rotary).
// Bindings (group 0):
//   0 dy     : array<f32>        read        [T, H, D]
//   1 pos    : array<i32>        read        [T] positions (unread when use_pos = 0: then bound to freq)
//   2 freq   : array<vec2<f32>>  read        [R/2] turns per position, (hi, lo): f = θ^(-2i/R) / 2π
//   3 dx     : array<f32>        read_write  [T, H, D]
//   4 p      : uniform Params {t, h, d, r, start, use_pos}   pos[t] = start + t when use_pos = 0
// Numerics: the angle is computed exactly as in kernels/rope.wgsl (exact reduction to turns with a
//   12-bit split of f and of |pos|), so cos and sin are bit-identical to the forward's and this is
//   the exact transpose of the forward's f32 rotation.
// Workgroup: override WG = 64; invocation g handles column g % (D − R/2) of token g / (D − R/2) for
//   every head: a rotated pair (i < R/2, one sin/cos for all heads) or a pass-through dim.
// Dispatch: (ceil(T·(D − R/2) / WG) split over x and y by grid1d, 1).
// Reference: src/ops/rope_backward.ts (ropeBackwardRef).

override WG: u32 = 64u;

struct Params { t: u32, h: u32, d: u32, r: u32, start: i32, use_pos: u32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<storage, read> dy: array<f32>;
@group(0) @binding(1) var<storage, read> pos: array<i32>;
@group(0) @binding(2) var<storage, read> freq: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

const TWO_PI: f32 = 6.283185307179586;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = (wid.x + wid.y * nwg.x) * WG + lid;
  let half = p.r / 2u;
  let cols = p.d - half;
  if (g >= p.t * cols) { return; }
  let t = g / cols;
  let i = g - t * cols;
  let stride = p.h * p.d;
  let row0 = t * stride;
  if (i >= half) {
    let j = i + half; // pass-through dim, R <= j < D
    for (var h = 0u; h < p.h; h++) { dx[row0 + h * p.d + j] = dy[row0 + h * p.d + j]; }
    return;
  }
  var ps: i32;
  if (p.use_pos != 0u) { ps = pos[t]; } else { ps = p.start + i32(t); }
  let a = u32(abs(ps));
  let f = freq[i];
  let turns = fract(f32(a & 0xfff000u) * f.x) + fract(f32(a & 0xfffu) * f.x) + f32(a) * f.y;
  var angle = (turns - round(turns)) * TWO_PI;
  if (ps < 0) { angle = -angle; }
  let c = cos(angle);
  let s = sin(angle);
  for (var h = 0u; h < p.h; h++) {
    let k = row0 + h * p.d + i;
    let g1 = dy[k];
    let g2 = dy[k + half];
    dx[k] = g1 * c + g2 * s;
    dx[k + half] = g2 * c - g1 * s;
  }
}
