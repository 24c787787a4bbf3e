// sparse_expert.wgsl — one FloE expert on the tokens routed to it, reading only the selected
// channels' gate and down rows (FloE Algorithm 1, ALGORITHMS.md A.3):
//   w_t    = Σ_k weights[t, k] · (selected[t, k] == expert)         (0: token not routed here)
//   keep_tf = |v[t, f]| > threshold                 (mode 0, threshold)
//          | rank of |v[t, f]| in row t < k         (mode 1, top-k; ties: the lower channel first)
//          | |v[t, f]| > thr[f]                     (mode 2, one threshold per channel)
//   a[t, f] = keep_tf && routed ? w_t · SiLU(gate[f, :] · x[t, :]) · v[t, f] : 0
//   y[t, c] = Σ_{f: a[t, f] != 0} a[t, f] · downT[f, c]
// v is the up projection's output up(x) [T, F]; gate [Fc, C] and downT [Fc, C] are channel-major
// (down stored transposed), so channel f is one contiguous C-long row of each. They may hold a chunk
// of the F channels, f0 .. f0 + Fc − 1 (a weight over the binding limit is split); the top-k rank is
// still taken over the whole row of v, so the chunks' outputs sum to the unsplit result.
// Bindings (group 0), entry point `select` (pass 1):
//   0 x     : array<f32>  read        [T, C]
//   1 v     : array<f32>  read        [T, F]
//   2 gate  : array<u32>  read        [Fc, C] f32 bits, or halves two per word when F16
//   3 sel   : array<i32>  read        [T, K] expert ids
//   4 w     : array<f32>  read        [T, K] routing weights
//   5 a     : array<f32>  read_write  [T, Fc] scratch
//   6 thr   : array<f32>  read        [F] per-channel thresholds (mode 2; any read-only buffer otherwise)
//   7 p     : uniform Params
// Entry point `down` (pass 2): 0 a [T, Fc] read, 1 downT [Fc, C] read (as gate), 2 y [T, C]
// read_write, 3 p.
// Override F16: gate and downT hold IEEE halves (the offload runtime's 16-bit streamed rows), widened
// with unpack2x16float (exact but for subnormal halves, which the device may flush to zero).
// Work split: select: one invocation per (t, f), flat over T·Fc; it returns before touching gate
// when the token is not routed here or the channel is not kept (top-k rank: one pass over the
// row's F values). down: one invocation per (t, c), flat over T·C; it walks the F entries of
// a[t, :] and loads downT[f, c] only where a != 0 (a kept channel whose product is exactly 0
// adds nothing either way). Neighbouring invocations read neighbouring c: coalesced rows.
// Dispatch: grid1d(ceil(T·Fc / WG)) then grid1d(ceil(T·C / WG)), flat index wid.x + wid.y·nwg.x.
// Reference: src/ops/sparse_expert.ts (sparseExpertRef).

override WG: u32 = 64u;
override F16: bool = false;

struct Params { T: u32, C: u32, F: u32, K: u32, expert: i32, mode: u32, k: u32, threshold: f32, Fc: u32, f0: u32 }

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> v: array<f32>;
@group(0) @binding(2) var<storage, read> gate: array<u32>;
@group(0) @binding(3) var<storage, read> sel: array<i32>;
@group(0) @binding(4) var<storage, read> rw: array<f32>;
@group(0) @binding(5) var<storage, read_write> a: array<f32>;
@group(0) @binding(6) var<storage, read> thr: array<f32>;
@group(0) @binding(7) var<uniform> p: Params;

fn gateAt(i: u32) -> f32 {
  if (F16) { return unpack2x16float(gate[i >> 1u])[i & 1u]; }
  return bitcast<f32>(gate[i]);
}

fn silu(z: f32) -> f32 {
  return z / (1.0 + exp(-z));
}

@compute @workgroup_size(WG)
fn select(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= p.T * p.Fc) { return; }
  let t = i / p.Fc;
  let fc = i % p.Fc;
  let f = p.f0 + fc;
  var routed = false;
  var wt = 0.0;
  for (var k = 0u; k < p.K; k++) {
    if (sel[t * p.K + k] == p.expert) {
      routed = true;
      wt += rw[t * p.K + k];
    }
  }
  let vf = v[t * p.F + f];
  let m = abs(vf);
  var keep = false;
  if (routed) {
    if (p.mode == 0u) {
      keep = m > p.threshold;
    } else if (p.mode == 2u) {
      keep = m > thr[f];
    } else {
      var rank = 0u;
      let row = t * p.F;
      for (var g = 0u; g < p.F; g++) {
        let mg = abs(v[row + g]);
        if (mg > m || (mg == m && g < f)) { rank++; }
      }
      keep = rank < p.k;
    }
  }
  if (!keep) {
    a[i] = 0.0;
    return;
  }
  var dot = 0.0;
  let gb = fc * p.C;
  let xb = t * p.C;
  for (var c = 0u; c < p.C; c++) {
    dot += gateAt(gb + c) * x[xb + c];
  }
  a[i] = wt * silu(dot) * vf;
}

@group(0) @binding(0) var<storage, read> a2: array<f32>;
@group(0) @binding(1) var<storage, read> downT: array<u32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<uniform> p2: Params;

fn downAt(i: u32) -> f32 {
  if (F16) { return unpack2x16float(downT[i >> 1u])[i & 1u]; }
  return bitcast<f32>(downT[i]);
}

@compute @workgroup_size(WG)
fn down(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * WG + lid;
  if (i >= p2.T * p2.C) { return; }
  let t = i / p2.C;
  let c = i % p2.C;
  var acc = 0.0;
  let ab = t * p2.Fc;
  for (var f = 0u; f < p2.Fc; f++) {
    let af = a2[ab + f];
    if (af != 0.0) {
      acc += af * downAt(f * p2.C + c);
    }
  }
  y[i] = acc;
}
