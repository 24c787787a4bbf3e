// attention.wgsl — causal grouped-query attention over a KV cache, online softmax in f32.
//   o[t, h, :] = Σ_{j ≤ pos+t} softmax_j(scale · q[t, h, :] · k[j, h / G, :]) · v[j, h / G, :]
// Bindings (group 0), entry `attend` (any D) / `attend4` (D % 4 == 0: vec4 loads of q, k, v):
//   0 q      : array<f32> | array<vec4<f32>>  read        [T, Hq, D] row-major
//   1 k      : array<f32> | array<vec4<f32>>  read        [S, Hkv, D]; only rows < pos + T are read
//   2 v      : array<f32> | array<vec4<f32>>  read        [S, Hkv, D]
//   3 o      : array<f32>                     read_write  [T, Hq, D]
//   4 p      : uniform Params {T, Hq, Hkv, D, pos, group = G, scale}
// Workgroup: override WG (8..256, a power of two) lanes per (t, block of GB query heads); `attend` has GB = 1.
// The GB heads of a block share one kv head, so each k and v load serves GB heads (the GQA saving).
// Keys are taken in chunks of CHUNK:
//   (1) lanes split the chunk's keys; each computes whole dot products (GB of them) into var<workgroup> sc;
//   (2) each head's chunk max comes from the per-lane maxima (red);
//   (3) lanes split the output columns (COLS ≤ MAXR per lane, in registers) and fold the chunk into the
//       running (m, l, acc) — flash-attention's online softmax: acc and l are rescaled by exp(m_old - m_new).
// Why this split: on llvmpipe a load whose address differs across lanes is a scalar loop, so per-key work
// (a whole dot product per lane, vec4 when it can) beats a barrier reduction per key. GB and COLS are
// overrides so the per-head / per-column loops unroll and the small arrays stay in registers.
// NOTE: naga does not re-zero a loop-local `var` without initializer on each pass; zero such arrays explicitly.
// Dispatch: (T·Hq/GB workgroups, split over x and y by grid1d). Reference: src/ops/attention.ts (attentionRef).

override WG: u32 = 32u;
override COLS: u32 = 1u;   // output columns (attend4: vec4 columns) per lane, ceil(columns / WG) ≤ MAXR
override GB: u32 = 1u;     // attend4: query heads per workgroup, a divisor of the group ≤ MAXG

const CHUNK: u32 = 256u;
const MAXR: u32 = 8u;
const MAXG: u32 = 8u;
const MAXACC: u32 = MAXG * MAXR;
const MAX_WG: u32 = 256u;
// Finite stand-in for -inf (WGSL has no infinity literals): exp(NEG - m) underflows to exactly 0.
const NEG: f32 = -3.0e38;

struct Params { T: u32, Hq: u32, Hkv: u32, D: u32, pos: u32, group: u32, scale: f32 }

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(0) var<storage, read> q4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> k4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> v4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> o: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

var<workgroup> sc: array<f32, CHUNK * MAXG>;   // scores of the chunk, per head of the block
var<workgroup> red: array<f32, MAX_WG * MAXG>;  // per-lane maxima, per head of the block

// Max over the lanes' partial maxima. Contains a barrier: call in uniform control flow only.
fn chunk_max(lid: u32, lm: f32) -> f32 {
  red[lid] = lm;
  workgroupBarrier();
  var cm = NEG;
  for (var i = 0u; i < WG; i++) { cm = max(cm, red[i]); }
  return cm;
}

@compute @workgroup_size(WG)
fn attend(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let th = wid.x + wid.y * nwg.x;            // flat (t, h)
  if (th >= p.T * p.Hq) { return; }
  let t = th / p.Hq;
  let kvh = (th % p.Hq) / p.group;
  let qb = th * p.D;
  let len = p.pos + t + 1u;                  // keys 0..pos+t (causal)
  var m = NEG;
  var l = 0.0;
  var acc: array<f32, MAXR>;
  for (var c0 = 0u; c0 < len; c0 += CHUNK) {
    let n = min(CHUNK, len - c0);
    var lm = NEG;
    for (var j = lid; j < n; j += WG) {
      let kb = ((c0 + j) * p.Hkv + kvh) * p.D;
      var s = 0.0;
      for (var d = 0u; d < p.D; d++) { s += q[qb + d] * k[kb + d]; }
      s *= p.scale;
      sc[j] = s;
      lm = max(lm, s);
    }
    let mn = max(m, chunk_max(lid, lm));
    let alpha = exp(m - mn);
    l *= alpha;
    for (var r = 0u; r < COLS; r++) { acc[r] *= alpha; }
    for (var j = 0u; j < n; j++) {
      let pj = exp(sc[j] - mn);
      l += pj;
      let vb = ((c0 + j) * p.Hkv + kvh) * p.D;
      for (var r = 0u; r < COLS; r++) {
        let d = lid + r * WG;
        if (d < p.D) { acc[r] += pj * v[vb + d]; }
      }
    }
    m = mn;
    workgroupBarrier();                      // sc and red are rewritten by the next chunk
  }
  let inv = 1.0 / l;
  for (var r = 0u; r < COLS; r++) {
    let d = lid + r * WG;
    if (d < p.D) { o[qb + d] = acc[r] * inv; }
  }
}

@compute @workgroup_size(WG)
fn attend4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
  let blocks = p.Hq / GB;                    // head blocks per token
  let tb = wid.x + wid.y * nwg.x;            // flat (t, head block)
  if (tb >= p.T * blocks) { return; }
  let t = tb / blocks;
  let h0 = (tb % blocks) * GB;               // GB divides the group: all GB heads read kv head kvh
  let kvh = h0 / p.group;
  let d4 = p.D / 4u;
  let qb = (t * p.Hq + h0) * d4;
  let len = p.pos + t + 1u;
  var m: array<f32, MAXG>;
  var l: array<f32, MAXG>;
  var acc: array<vec4<f32>, MAXACC>;         // acc[g * MAXR + r]: head h0 + g, vec4 column lid + r·WG
  for (var g = 0u; g < GB; g++) { m[g] = NEG; }
  for (var c0 = 0u; c0 < len; c0 += CHUNK) {
    let n = min(CHUNK, len - c0);
    var lm: array<f32, MAXG>;
    for (var g = 0u; g < GB; g++) { lm[g] = NEG; }
    for (var j = lid; j < n; j += WG) {
      let kb = ((c0 + j) * p.Hkv + kvh) * d4;
      var s: array<f32, MAXG>;
      for (var g = 0u; g < GB; g++) { s[g] = 0.0; } // explicit: a loop-local var is not re-zeroed each pass by naga
      for (var c = 0u; c < d4; c++) {
        let kk = k4[kb + c];                 // one key load serves all GB query heads
        for (var g = 0u; g < GB; g++) { s[g] += dot(q4[qb + g * d4 + c], kk); }
      }
      for (var g = 0u; g < GB; g++) {
        let sg = s[g] * p.scale;
        sc[g * CHUNK + j] = sg;
        lm[g] = max(lm[g], sg);
      }
    }
    for (var g = 0u; g < GB; g++) { red[g * WG + lid] = lm[g]; }
    workgroupBarrier();
    for (var g = 0u; g < GB; g++) {
      var cm = NEG;
      for (var i = 0u; i < WG; i++) { cm = max(cm, red[g * WG + i]); }
      let mn = max(m[g], cm);
      let alpha = exp(m[g] - mn);
      l[g] *= alpha;
      m[g] = mn;
      for (var r = 0u; r < COLS; r++) { acc[g * MAXR + r] *= alpha; }
    }
    for (var j = 0u; j < n; j++) {
      var pj: array<f32, MAXG>;
      for (var g = 0u; g < GB; g++) {
        pj[g] = exp(sc[g * CHUNK + j] - m[g]);
        l[g] += pj[g];
      }
      let vb = ((c0 + j) * p.Hkv + kvh) * d4;
      for (var r = 0u; r < COLS; r++) {
        let c = lid + r * WG;
        if (c < d4) {
          let vv = v4[vb + c];               // one value load serves all GB query heads
          for (var g = 0u; g < GB; g++) { acc[g * MAXR + r] += pj[g] * vv; }
        }
      }
    }
    workgroupBarrier();
  }
  for (var g = 0u; g < GB; g++) {
    let inv = 1.0 / l[g];
    for (var r = 0u; r < COLS; r++) {
      let c = lid + r * WG;
      if (c < d4) {
        let y = acc[g * MAXR + r] * inv;
        let e = (qb + g * d4 + c) * 4u;
        o[e] = y.x;
        o[e + 1u] = y.y;
        o[e + 2u] = y.z;
        o[e + 3u] = y.w;
      }
    }
  }
}
