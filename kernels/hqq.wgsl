// hqq.wgsl — HQQ zero-point optimisation (half-quadratic splitting, lp shrinkage) for a weight
//   W[rows, cols] in groups (layout: src/tensor/quantized_tensor.ts). One invocation per group:
//   min/max -> s = min((2^b-1)/(max-min), 2e4, 1024/max|w|), z_0 = -min·s (rounded at 4 bits); then
//   for it = 0, 1, ...: with z_it, q = clamp(round(w·s + z_it), 0, 2^b-1), e = w - (q - z_it)/s and
//   z_{it+1} = mean(q - (w - shrink_p(e))·s), shrink_p(e) = sign(e)·max(|e| - |e|^(p-1)·invBeta[it], 0),
//   1/beta_it computed on the host (beta_it = beta·kappa^it in float64, then rounded to f32).
// Entry point hqq_iterate, two modes (uniform p.mode):
//   0 (errors) evaluate z_0 .. z_iters and write, per iteration and workgroup, the f32 sum over the
//     workgroup's groups of Σ|e| (each group's sum in element order): errs[it, workgroup].
//   1 (final)  apply p.iters updates (the iteration the host kept) and write
//     meta[g] = f16(1/s) | f16(z) << 16; rtn.wgsl affine_pack then recomputes the codes from them.
// Why two dispatches and not a readback per iteration: hqq stops when the mean |W - W_r| over the
//   WHOLE tensor stops improving, so the stop needs every group. The iterates do not depend on where
//   it stops, so running them all (mode 0), choosing the stop on the host from one readback of
//   (iters + 1) · ceil(groups / WG) floats, and re-running up to the kept iterate (mode 1, the same
//   pipeline, so bit-identical iterates) gives exactly the early-stopped result with two submits
//   and no per-iteration history in memory (a history of z would cost (iters + 1) · groups floats).
// Bindings (group 0):
//   0 w      : array<f32> read        [rows, cols] row-major
//   1 invBeta: array<f32> read        [max(iters, 1)]
//   2 errs   : array<f32> read_write  [iters + 1, ceil(groups / WG)] (mode 0)
//   3 meta   : array<u32> read_write  [groups] (mode 1)
//   4 p      : uniform Params
// Numerics: f32 throughout, round() ties to even (torch.round); pow is WGSL's (about 1e-6 relative
//   here), divisions 2.5 ULP, so iterates agree with the TypeScript reference to a few ULP; f16
//   rounding on the bit patterns (kernels/f16.wgsl, prepended by hqq.ts), not pack2x16float.
// Workgroup: override WG = 64 (one group per invocation; mode 0 sums the workgroup in shared memory,
//   invocations past the last group add 0 so every barrier is reached uniformly).
// Dispatch: ceil(groups / WG) workgroups split over x and y (grid1d).
// Reference: src/compressors/quant/hqq.ts (hqqRef).

override WG: u32 = 64u;

struct Params {
  rows: u32, cols: u32, groupSize: u32, axis: u32,
  bits: u32, groups: u32, iters: u32, lpNorm: f32,
  mode: u32, pad0: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<storage, read> w: array<f32>;
@group(0) @binding(1) var<storage, read> invBeta: array<f32>;
@group(0) @binding(2) var<storage, read_write> errs: array<f32>;
@group(0) @binding(3) var<storage, read_write> metaOut: array<u32>;
@group(0) @binding(4) var<uniform> p: Params;

var<workgroup> red: array<f32, WG>;

@compute @workgroup_size(WG)
fn hqq_iterate(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
  let wg = wid.x + wid.y * nwg.x;
  let g = wg * WG + lid;
  let inRange = g < p.groups;
  let gc = min(g, p.groups - 1u); // inactive invocations read a valid group and contribute 0
  var start = gc * p.groupSize;
  var stride = 1u;
  if (p.axis == 0u) {
    start = gc; // HQQ's reshape(g, -1): flat gc + t·N/g
    stride = (p.rows / p.groupSize) * p.cols;
  }
  var mn = w[start];
  var mx = mn;
  for (var j = 1u; j < p.groupSize; j++) {
    let v = w[start + j * stride];
    mn = min(mn, v);
    mx = max(mx, v);
  }
  let maxq = f32((1u << p.bits) - 1u);
  var s = 2e4;
  if (mx > mn) { s = min(maxq / (mx - mn), 2e4); }
  let maxAbs = max(abs(mn), abs(mx));
  if (maxAbs > 0.0) { s = min(s, 1024.0 / maxAbs); }
  var z = -mn * s;
  if (p.bits == 4u) { z = round(z); }
  let pm1 = p.lpNorm - 1.0;
  let gs = f32(p.groupSize);
  let evaluate = p.mode == 0u;
  let last = select(p.iters, p.iters + 1u, evaluate); // mode 1: updates only, no final evaluation
  for (var it = 0u; it < last; it++) {
    let update = it < p.iters;
    let ib = invBeta[min(it, max(p.iters, 1u) - 1u)];
    var err = 0.0;
    var acc = 0.0;
    for (var j = 0u; j < p.groupSize; j++) {
      let v = w[start + j * stride];
      let q = clamp(round(v * s + z), 0.0, maxq);
      let e = v - (q - z) / s;
      let a = abs(e);
      err += a;
      if (update) {
        var we = 0.0;
        if (a > 0.0) { we = sign(e) * max(a - ib * pow(a, pm1), 0.0); }
        acc += q - (v - we) * s;
      }
    }
    if (evaluate) {
      red[lid] = select(0.0, err, inRange);
      workgroupBarrier();
      if (lid == 0u) {
        var t = 0.0;
        for (var k = 0u; k < WG; k++) { t += red[k]; }
        errs[it * nwg.x * nwg.y + wg] = t;
      }
      workgroupBarrier();
    }
    if (update) { z = acc / gs; }
  }
  if (!evaluate && inRange) {
    metaOut[g] = f32_to_f16_bits(1.0 / s) | (f32_to_f16_bits(z) << 16u);
  }
}
