// attention_backward.wgsl — gradients of causal grouped-query attention (kernels/attention.wgsl), f32.
//   Forward: s[t,h,j] = scale · q[t,h,:]·k[j,h/G,:] for j ≤ pos+t, P = softmax_j(s), o = Σ_j P·v[j,h/G,:].
//   Backward (probabilities recomputed, nothing saved): dP[t,h,j] = dy[t,h,:]·v[j,h/G,:],
//   Δ[t,h] = Σ_j P·dP, dS = P·(dP − Δ);  dq[t,h,:] = scale·Σ_j dS·k[j],
//   dk[j,kvh,:] = scale·Σ_{t, h in group kvh} dS·q[t,h,:],  dv[j,kvh,:] = Σ_{t, h in group} P·dy[t,h,:].
// Two entry points, run in order; no atomics and every sum in a fixed order (deterministic):
//   dq_main — one workgroup per (t, h): (1) lanes split the keys, each keeps an online (max, sum)
//     of exp; lanes merge to lse = log Σ_j exp(s_j); (2) lanes split the keys again for Δ;
//     (3) keys in chunks of CHUNK: lanes write dS of their keys to var<workgroup> sc, then split the
//     columns (COLS ≤ MAXR per lane, in registers) and accumulate dS·k. Writes dq and stats = (lse, Δ).
//     0 q  : array<f32>  read        [T, Hq, D]
//     1 k  : array<f32>  read        [S, Hkv, D]; rows ≥ pos + T are never read
//     2 v  : array<f32>  read        [S, Hkv, D]
//     3 dy : array<f32>  read        [T, Hq, D]
//     4 dq : array<f32>  read_write  [T, Hq, D]
//     5 stats_out : array<vec2<f32>> read_write [T, Hq] (lse, Δ)
//     6 p  : uniform Params {T, Hq, Hkv, D, pos, group = G, scale, S}
//     Dispatch: (T·Hq workgroups split over x and y by grid1d).
//   dkv_main — one workgroup per (j, kvh): the (t, h) pairs that see key j (t ≥ j − pos, h in the
//     group) in chunks of CHUNK: lanes write P and dS of their pairs to sc / sp, then split the
//     columns and accumulate dS·q and P·dy. Rows j ≥ pos + T get zeros.
//     0 q  1 k  2 v  3 dy : as above;  4 stats_in : array<vec2<f32>> read [T, Hq]
//     5 dk : array<f32> read_write [S, Hkv, D];  6 dv : array<f32> read_write [S, Hkv, D];  7 p
//     Dispatch: (S·Hkv workgroups split over x and y by grid1d).
// Workgroup: override WG (8..256, a power of two) lanes; COLS = ceil(D / WG) ≤ MAXR.
// Why this split: as in attention.wgsl, on llvmpipe a whole dot product per lane beats a barrier
// reduction per key; recomputing s (three times for dq, once for dk/dv) costs less than storing P.
// Reference: src/ops/attention_backward.ts (attentionBackwardRef).

override WG: u32 = 32u;
override COLS: u32 = 1u;

const CHUNK: u32 = 256u;
const MAXR: u32 = 8u;
const MAX_WG: u32 = 256u;
// Finite stand-in for -inf (WGSL has no infinity literals): exp(NEG - m) underflows to exactly 0.
const NEG: f32 = -3.0e38;

struct Params { T: u32, Hq: u32, Hkv: u32, D: u32, pos: u32, group: u32, scale: f32, S: u32 }

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read> dy: array<f32>;
@group(0) @binding(4) var<storage, read_write> dq: array<f32>;
@group(0) @binding(5) var<storage, read_write> stats_out: array<vec2<f32>>;
@group(0) @binding(6) var<uniform> p: Params;

var<workgroup> sc: array<f32, CHUNK>;       // dS of the chunk's keys (dq) or pairs (dkv)
var<workgroup> sp: array<f32, CHUNK>;       // P of the chunk's pairs (dkv)
var<workgroup> red_m: array<f32, MAX_WG>;   // per-lane maxima
var<workgroup> red_l: array<f32, MAX_WG>;   // per-lane sums

fn dot_rows(a: u32, b: u32) -> f32 {          // q[a..a+D] · k[b..b+D]
  var s = 0.0;
  for (var d = 0u; d < p.D; d++) { s += q[a + d] * k[b + d]; }
  return s;
}

fn dot_dv(a: u32, b: u32) -> f32 {            // dy[a..a+D] · v[b..b+D]
  var s = 0.0;
  for (var d = 0u; d < p.D; d++) { s += dy[a + d] * v[b + d]; }
  return s;
}

// Sum of the lanes' red_l in lane order. Contains barriers: call in uniform control flow only.
fn lane_sum(lid: u32, x: f32) -> f32 {
  red_l[lid] = x;
  workgroupBarrier();
  var s = 0.0;
  for (var i = 0u; i < WG; i++) { s += red_l[i]; }
  workgroupBarrier();
  return s;
}

@compute @workgroup_size(WG)
fn dq_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let th = wid.x + wid.y * nwg.x;            // flat (t, h)
  if (th >= p.T * p.Hq) { return; }
  let t = th / p.Hq;
  let kvh = (th % p.Hq) / p.group;
  let qb = th * p.D;
  let len = p.pos + t + 1u;                  // keys 0..pos+t (causal)
  // (1) log-sum-exp of the scores
  var m = NEG;
  var l = 0.0;
  for (var j = lid; j < len; j += WG) {
    let s = p.scale * dot_rows(qb, (j * p.Hkv + kvh) * p.D);
    if (s > m) { l = l * exp(m - s) + 1.0; m = s; } else { l += exp(s - m); }
  }
  red_m[lid] = m;
  workgroupBarrier();
  var mx = NEG;
  for (var i = 0u; i < WG; i++) { mx = max(mx, red_m[i]); }
  let lse = mx + log(lane_sum(lid, l * exp(m - mx)));
  // (2) Δ = Σ_j P_j·(dy·v_j)
  var dl = 0.0;
  for (var j = lid; j < len; j += WG) {
    let kb = (j * p.Hkv + kvh) * p.D;
    dl += exp(p.scale * dot_rows(qb, kb) - lse) * dot_dv(qb, kb);
  }
  let delta = lane_sum(lid, dl);
  // (3) dq = scale·Σ_j dS_j·k_j
  var acc: array<f32, MAXR>;
  for (var r = 0u; r < MAXR; r++) { acc[r] = 0.0; }
  for (var c0 = 0u; c0 < len; c0 += CHUNK) {
    let n = min(CHUNK, len - c0);
    for (var j = lid; j < n; j += WG) {
      let kb = ((c0 + j) * p.Hkv + kvh) * p.D;
      let pj = exp(p.scale * dot_rows(qb, kb) - lse);
      sc[j] = pj * (dot_dv(qb, kb) - delta);
    }
    workgroupBarrier();
    for (var j = 0u; j < n; j++) {
      let ds = sc[j];
      let kb = ((c0 + j) * p.Hkv + kvh) * p.D;
      for (var r = 0u; r < COLS; r++) {
        let d = lid + r * WG;
        if (d < p.D) { acc[r] += ds * k[kb + d]; }
      }
    }
    workgroupBarrier();                      // sc is rewritten by the next chunk
  }
  for (var r = 0u; r < COLS; r++) {
    let d = lid + r * WG;
    if (d < p.D) { dq[qb + d] = p.scale * acc[r]; }
  }
  if (lid == 0u) { stats_out[th] = vec2(lse, delta); }
}

@group(0) @binding(4) var<storage, read> stats_in: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read_write> dk: array<f32>;
@group(0) @binding(6) var<storage, read_write> dv: array<f32>;
@group(0) @binding(7) var<uniform> pk: Params;

@compute @workgroup_size(WG)
fn dkv_main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
  let jh = wid.x + wid.y * nwg.x;            // flat (j, kvh)
  if (jh >= pk.S * pk.Hkv) { return; }
  let j = jh / pk.Hkv;
  let kvh = jh % pk.Hkv;
  let kb = jh * pk.D;
  var t0 = 0u;                               // first query that sees key j: pos + t ≥ j
  if (j > pk.pos) { t0 = j - pk.pos; }
  var n = 0u;                                // (t, h) pairs: t in t0..T-1, h in the group
  if (t0 < pk.T) { n = (pk.T - t0) * pk.group; }
  var ak: array<f32, MAXR>;
  var av: array<f32, MAXR>;
  for (var r = 0u; r < MAXR; r++) { ak[r] = 0.0; av[r] = 0.0; }
  for (var c0 = 0u; c0 < n; c0 += CHUNK) {
    let m = min(CHUNK, n - c0);
    for (var i = lid; i < m; i += WG) {
      let pair = c0 + i;
      let th = (t0 + pair / pk.group) * pk.Hq + kvh * pk.group + pair % pk.group;
      let st = stats_in[th];
      var s = 0.0;
      var dp = 0.0;
      for (var d = 0u; d < pk.D; d++) {
        s += q[th * pk.D + d] * k[kb + d];
        dp += dy[th * pk.D + d] * v[kb + d];
      }
      let pj = exp(pk.scale * s - st.x);
      sp[i] = pj;
      sc[i] = pj * (dp - st.y);
    }
    workgroupBarrier();
    for (var i = 0u; i < m; i++) {
      let pair = c0 + i;
      let qb = ((t0 + pair / pk.group) * pk.Hq + kvh * pk.group + pair % pk.group) * pk.D;
      let pj = sp[i];
      let ds = sc[i];
      for (var r = 0u; r < COLS; r++) {
        let d = lid + r * WG;
        if (d < pk.D) {
          av[r] += pj * dy[qb + d];
          ak[r] += ds * q[qb + d];
        }
      }
    }
    workgroupBarrier();
  }
  for (var r = 0u; r < COLS; r++) {
    let d = lid + r * WG;
    if (d < pk.D) {
      dk[kb + d] = pk.scale * ak[r];
      dv[kb + d] = av[r];
    }
  }
}
