// rope.wgsl — rotary position embedding, HF `rotate_half` convention, f32:
//   for i < R/2, angle = pos[t] · θ^(-2i/R):
//     y[t,h,i]       = x[t,h,i] cos − x[t,h,i+R/2] sin
//     y[t,h,i+R/2]   = x[t,h,i+R/2] cos + x[t,h,i] sin
//   and y[t,h,j] = x[t,h,j] for R <= j < D (partial rotary).
// Bindings (group 0):
//   0 x      : array<f32>        read        [T, H, D]
//   1 pos    : array<i32>        read        [T] positions (unread when use_pos = 0: then bound to freq)
//   2 freq   : array<vec2<f32>>  read        [R/2] turns per position, (hi, lo): f = θ^(-2i/R) / 2π
//   3 y      : array<f32>        read_write  [T, H, D]
//   4 p      : uniform Params {t, h, d, r, start, use_pos}   pos[t] = start + t when use_pos = 0
// Numerics: angles are reduced to turns exactly. The host splits f (in float64) into hi, with 12
//   significant bits, and lo = f − hi; |pos| < 2^24 is split into its high and low 12 bits, so
//   pos_hi·hi and pos_lo·hi are exact f32 products and their fractional parts are exact. Only
//   pos·lo (≈ 2^-12 of the angle) and the final sum round, leaving ~2e-7 turns (~1.5e-6 rad) of
//   error at any position, where the plain f32 product pos·inv_freq (as in HF) is off by ~5e-4 rad
//   at pos 8000. sin/cos then see an angle in [−π, π], where they are accurate.
// Workgroup: override WG = 64; invocation g handles column g % (D − R/2) of token g / (D − R/2) for
//   every head: a rotated pair (i < R/2, one sin/cos for all heads) or a pass-through dim.
// Dispatch: (ceil(T·(D − R/2) / WG) split over x and y by grid1d, 1).
// Reference: src/ops/rope.ts (ropeRef).

override WG: u32 = 64u;

struct Params { t: u32, h: u32, d: u32, r: u32, start: i32, use_pos: u32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> pos: array<i32>;
@group(0) @binding(2) var<storage, read> freq: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
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
    for (var h = 0u; h < p.h; h++) { y[row0 + h * p.d + j] = x[row0 + h * p.d + j]; }
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
    let x1 = x[k];
    let x2 = x[k + half];
    y[k] = x1 * c - x2 * s;
    y[k + half] = x2 * c + x1 * s;
  }
}
