// qgemv.wgsl — y[O] = Ŵ[O, I] · x[I] straight from packed codes (QuantizedTensor layout,
// src/tensor/quantized_tensor.ts): codes are unpacked in registers, Ŵ never exists in memory.
// Two passes per call: a prep pass turns x into x' (x laid out per code slot, scaled, masked per group:
// a few KiB on axis 1), then a main pass streams the codes.
//
// Affine without a shift per code: code k of a word (bits b) is masked in place, w & (m << b·k) =
// q·2^(b·k), and converted with a signed int->float (exact: at most 30 bits); x' carries the 2^-(b·k)
// (exact power-of-two scaling; the top code of a full word is shifted down instead, since its masked
// value would overflow i32). So one AND, one convert and one FMA per code. The zero point leaves the
// inner loop: Σ_c (q_c − z)·s·x_c = s·(Σ_c q_c·x_c − z·Σ_c x_c), with Σ x per group from the prep.
// NF4: code -> value through the 16-entry codebook in the uniform parameters (a gather from a uniform
// buffer is straight-line code on llvmpipe; a `const` array indexed per lane is ~20x slower).
//
// Bindings (group 0), main entry points:
//   0 codes  : array<vec4<u32>> | array<u32>   read        [O, W] row-aligned packed codes
//   1 xp     : array<vec4<f32>>                read        x' from a prep entry
//   2 aux    : array<u32>                      read        rows*: meta [groups], pack2x16float(s, z) or
//                                                          f32 absmax bits; cols*: the x' buffer again
//                                                          (its partial sums, as f32 bits)
//   3 y      : array<f32>                      read_write  [O]
//   4 p      : uniform Params (with the NF4 codebook)
// Entry points (override SCHEME: 0 affine, 1 nf4; override BITS: 2, 3, 4, 8):
//   rows4 / rows1   groups along a row (axis 1); codes loaded as vec4 (W % 4 == 0, when the vec4s
//                   covering a group waste little) or one word at a time (any layout, e.g. 3-bit).
//   cols4 / cols1   groups along a column (axis 0): scales differ per column, so the prep folds them
//                   into x' per row group, xa[G, c] = s·x·2^-(b·k) (or absmax·x), with Σ z·s·x in
//                   partial sums; an invocation's R rows lie in one row group b = r mod (rows/g)
//                   (HQQ's axis-0 groups take rows rows/g apart), R divides g.
//   prep1           x' segments per column group j: the load units covering the group, x masked to
//                   the group's codes, then Σx per group at xoff.   (bindings: x, xo, pp)
//   prep0           xa per row group and partial Σ z·s·x per load unit.  (bindings: x, meta, xo, pp)
// Workgroup: override WG = 16 invocations; each computes R (override, <= 32) rows: consecutive (rows*),
// or R rows of one axis-0 group (cols*, see colRow).
// Why R is large: on llvmpipe every storage load whose address differs across lanes is a scalar loop
// over the 8 lanes with a bounds check per component (~25 instructions per lane for a vec4), and a
// load of x' is no cheaper because all lanes read the same address. Each x' float is reused for R
// rows, each code word for 8-16 codes, so loads per code fall from 1.25 (f32 GEMV) to ~0.1.
// No barriers. Loads past the last row clamp and their stores are skipped. No runtime branch in the
// hot loops either (llvmpipe runs both sides of a branch under a lane mask): SCHEME and BITS are
// overrides, and groups that straddle load units are handled by the prep's masks.
// Speed: `deno task bench:quant` times every scheme against the f32 GEMV in the same run; its committed
// results (bench/results/quant.json) are the README's packed-GEMV table (section "Compressors"), the
// one place the figures live. NF4 pays for the codebook gather (~3 instructions per lane per code), NF4
// with double quantisation also for the absmax decode pass. What limits now: cache misses on the
// per-lane code and metadata loads (each lane streams R rows; about a quarter of profile samples sit on
// the first component of those load loops) and the unpack ALU. Tried and slower than this layout: one
// u32 per row step with R = 4, vec4 words with R = 8, a column split (lanes share R rows and split
// their groups, one contiguous stream per row, reduction in workgroup memory), and loading all R code
// vectors before unpacking.
// Dispatch: ceil(O / (R WG)) workgroups, split over x and y (grid1d).
// Reference: src/ops/qgemv.ts (qgemvRef).

override WG: u32 = 16u;
override R: u32 = 32u;
override BITS: u32 = 4u;
override SCHEME: u32 = 0u;
const RMAX: u32 = 32u;

struct Params {
  rows: u32,
  cols: u32,
  W: u32,     // words per row
  G: u32,     // rows*: column groups per row; cols*: rows per group (g)
  g: u32,     // rows*: group size
  span: u32,  // load units (vec4 or words) per x' segment: per column group (rows*), per row (cols*)
  xoff: u32,  // f32 index of Σx per group (rows*) or of the partial sums (cols*) in xp
  _pad: u32,
  nf4: array<vec4<f32>, 4>,
}

@group(0) @binding(0) var<storage, read> codes4: array<vec4<u32>>;
@group(0) @binding(0) var<storage, read> codes1: array<u32>;
@group(0) @binding(1) var<storage, read> xp: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> aux: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

// Codes per word and vec4 of x' per word.
fn codesPerWord() -> u32 {
  switch BITS {
    case 2u: { return 16u; }
    case 3u: { return 10u; }
    case 8u: { return 4u; }
    default: { return 8u; }
  }
}
fn vecsPerWord() -> u32 { return (codesPerWord() + 3u) / 4u; }

fn firstRow(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return ((wid.x + wid.y * nwg.x) * WG + lid) * R;
}

// cols*: row k of invocation inv. Row group b = r mod (rows/g) (HQQ's axis 0 groups rows rows/g
// apart), so an invocation takes R rows of one group: b + (chunk·R + k)·(rows/g), chunk = inv / (rows/g).
fn colRow(inv: u32, k: u32) -> u32 {
  let RG = p.rows / p.G;
  return inv % RG + ((inv / RG) * R + k) * RG;
}

fn i2f(v: vec4<u32>) -> vec4<f32> { return vec4<f32>(bitcast<vec4<i32>>(v)); }

// Σ_k code_k · x'[o + k/4][k%4] over the codes of word w (affine: masked in place, see the header).
fn dotWord(w: u32, x: ptr<function, array<vec4<f32>, 16>>, o: u32) -> f32 {
  var t: vec4<f32>;
  if (SCHEME == 1u) {
    let a = vec4<u32>(w, w >> 4u, w >> 8u, w >> 12u) & vec4<u32>(15u);
    let b = vec4<u32>(w >> 16u, w >> 20u, w >> 24u, w >> 28u) & vec4<u32>(15u);
    let fa = vec4<f32>(p.nf4[a.x >> 2u][a.x & 3u], p.nf4[a.y >> 2u][a.y & 3u], p.nf4[a.z >> 2u][a.z & 3u], p.nf4[a.w >> 2u][a.w & 3u]);
    let fb = vec4<f32>(p.nf4[b.x >> 2u][b.x & 3u], p.nf4[b.y >> 2u][b.y & 3u], p.nf4[b.z >> 2u][b.z & 3u], p.nf4[b.w >> 2u][b.w & 3u]);
    t = fma(fa, (*x)[o], fb * (*x)[o + 1u]);
  } else {
    let v = vec4<u32>(w);
    switch BITS {
      case 2u: {
        let a = i2f(v & vec4<u32>(0x3u, 0xCu, 0x30u, 0xC0u));
        let b = i2f(v & vec4<u32>(0x300u, 0xC00u, 0x3000u, 0xC000u));
        let c = i2f(v & vec4<u32>(0x30000u, 0xC0000u, 0x300000u, 0xC00000u));
        let d = i2f(vec4<u32>(w & 0x3000000u, w & 0xC000000u, w & 0x30000000u, w >> 30u));
        t = fma(a, (*x)[o], fma(b, (*x)[o + 1u], fma(c, (*x)[o + 2u], d * (*x)[o + 3u])));
      }
      case 3u: {
        let a = i2f(v & vec4<u32>(0x7u, 0x38u, 0x1C0u, 0xE00u));
        let b = i2f(v & vec4<u32>(0x7000u, 0x38000u, 0x1C0000u, 0xE00000u));
        let c = vec2<f32>(bitcast<vec2<i32>>(vec2<u32>(w & 0x7000000u, w & 0x38000000u)));
        t = fma(a, (*x)[o], b * (*x)[o + 1u]) + vec4<f32>(c * (*x)[o + 2u].xy, 0.0, 0.0);
      }
      case 8u: {
        t = i2f(vec4<u32>(w & 0xFFu, w & 0xFF00u, w & 0xFF0000u, w >> 24u)) * (*x)[o];
      }
      default: {
        let a = i2f(v & vec4<u32>(0xFu, 0xF0u, 0xF00u, 0xF000u));
        let b = i2f(vec4<u32>(w & 0xF0000u, w & 0xF00000u, w & 0xF000000u, w >> 28u));
        t = fma(a, (*x)[o], b * (*x)[o + 1u]);
      }
    }
  }
  return (t.x + t.y) + (t.z + t.w);
}

fn dotVec(cw: vec4<u32>, x: ptr<function, array<vec4<f32>, 16>>) -> f32 {
  let V = vecsPerWord();
  return (dotWord(cw.x, x, 0u) + dotWord(cw.y, x, V)) + (dotWord(cw.z, x, 2u * V) + dotWord(cw.w, x, 3u * V));
}

// y_r += s·(acc_r − z·Σx_j) (affine) or absmax·acc_r (nf4) for group j of each row.
fn foldGroup(r0: u32, j: u32, acc: ptr<function, array<f32, RMAX>>, out: ptr<function, array<f32, RMAX>>) {
  let X = xp[p.xoff / 4u + j / 4u][j % 4u]; // Σx of group j (affine)
  for (var r = 0u; r < R; r++) {
    let m = aux[min(r0 + r, p.rows - 1u) * p.G + j];
    if (SCHEME == 1u) {
      (*out)[r] += bitcast<f32>(m) * (*acc)[r];
    } else {
      let sz = unpack2x16float(m);
      (*out)[r] += sz.x * ((*acc)[r] - sz.y * X);
    }
  }
}

@compute @workgroup_size(WG)
fn rows4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let r0 = firstRow(wid, nwg, lid);
  let S = 4u * vecsPerWord(); // vec4 of x' per load unit
  let W4 = p.W / 4u;
  var out: array<f32, RMAX>;
  for (var r = 0u; r < R; r++) { out[r] = 0.0; }
  for (var j = 0u; j < p.G; j++) {
    let u0 = ((j * p.g) / codesPerWord()) / 4u;
    var acc: array<f32, RMAX>;
    for (var r = 0u; r < R; r++) { acc[r] = 0.0; } // (naga hoists loop-local vars: zero explicitly)
    for (var i = 0u; i < p.span; i++) {
      var xv: array<vec4<f32>, 16>;
      let xo = (j * p.span + i) * S;
      for (var v = 0u; v < S; v++) { xv[v] = xp[xo + v]; }
      let k = min(u0 + i, W4 - 1u);
      for (var r = 0u; r < R; r++) {
        acc[r] += dotVec(codes4[min(r0 + r, p.rows - 1u) * W4 + k], &xv);
      }
    }
    foldGroup(r0, j, &acc, &out);
  }
  for (var r = 0u; r < R; r++) {
    if (r0 + r < p.rows) { y[r0 + r] = out[r]; }
  }
}

@compute @workgroup_size(WG)
fn rows1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let r0 = firstRow(wid, nwg, lid);
  let V = vecsPerWord();
  var out: array<f32, RMAX>;
  for (var r = 0u; r < R; r++) { out[r] = 0.0; }
  for (var j = 0u; j < p.G; j++) {
    let u0 = (j * p.g) / codesPerWord();
    var acc: array<f32, RMAX>;
    for (var r = 0u; r < R; r++) { acc[r] = 0.0; }
    for (var i = 0u; i < p.span; i++) {
      var xv: array<vec4<f32>, 16>;
      let xo = (j * p.span + i) * V;
      for (var v = 0u; v < V; v++) { xv[v] = xp[xo + v]; }
      let k = min(u0 + i, p.W - 1u);
      for (var r = 0u; r < R; r++) {
        acc[r] += dotWord(codes1[min(r0 + r, p.rows - 1u) * p.W + k], &xv, 0u);
      }
    }
    foldGroup(r0, j, &acc, &out);
  }
  for (var r = 0u; r < R; r++) {
    if (r0 + r < p.rows) { y[r0 + r] = out[r]; }
  }
}

@compute @workgroup_size(WG)
fn cols4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let inv = (wid.x + wid.y * nwg.x) * WG + lid;
  let S = 4u * vecsPerWord();
  let W4 = p.W / 4u;
  let grp = inv % (p.rows / p.G);
  var acc: array<f32, RMAX>;
  for (var r = 0u; r < R; r++) { acc[r] = 0.0; }
  var b = 0.0;
  for (var i = 0u; i < W4; i++) {
    var xv: array<vec4<f32>, 16>;
    let xo = (grp * W4 + i) * S;
    for (var v = 0u; v < S; v++) { xv[v] = xp[xo + v]; }
    b += bitcast<f32>(aux[p.xoff + grp * W4 + i]);
    for (var r = 0u; r < R; r++) { acc[r] += dotVec(codes4[min(colRow(inv, r), p.rows - 1u) * W4 + i], &xv); }
  }
  for (var r = 0u; r < R; r++) {
    if (colRow(inv, r) < p.rows) { y[colRow(inv, r)] = acc[r] - b; }
  }
}

@compute @workgroup_size(WG)
fn cols1(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let inv = (wid.x + wid.y * nwg.x) * WG + lid;
  let V = vecsPerWord();
  let grp = inv % (p.rows / p.G);
  var acc: array<f32, RMAX>;
  for (var r = 0u; r < R; r++) { acc[r] = 0.0; }
  var b = 0.0;
  for (var i = 0u; i < p.W; i++) {
    var xv: array<vec4<f32>, 16>;
    let xo = (grp * p.W + i) * V;
    for (var v = 0u; v < V; v++) { xv[v] = xp[xo + v]; }
    b += bitcast<f32>(aux[p.xoff + grp * p.W + i]);
    for (var r = 0u; r < R; r++) { acc[r] += dotWord(codes1[min(colRow(inv, r), p.rows - 1u) * p.W + i], &xv, 0u); }
  }
  for (var r = 0u; r < R; r++) {
    if (colRow(inv, r) < p.rows) { y[colRow(inv, r)] = acc[r] - b; }
  }
}

// ---------------------------------------------------------------------------------------
// Prep passes: x -> x'. One invocation per x' float (prep1) or per load unit (prep0).

struct PrepParams {
  cols: u32,
  n: u32,       // codes per word
  bits: u32,
  g: u32,       // group size
  G: u32,       // prep1: column groups; prep0: row groups
  span: u32,    // prep1: words per segment; prep0: words per row (W)
  L: u32,       // words per load unit (4 or 1)
  slots: u32,   // x' floats per word (4 · vec4 per word)
  affine: u32,  // 1: scale slots by 2^-(bits·k) (and prep0: fold scale and zero); 0: nf4
  xoff: u32,    // f32 index of the sums
}

@group(0) @binding(0) var<storage, read> xin: array<f32>;
@group(0) @binding(1) var<storage, read_write> xout: array<f32>;
@group(0) @binding(2) var<uniform> pp: PrepParams;
@group(0) @binding(1) var<storage, read> pmeta: array<u32>;
@group(0) @binding(2) var<storage, read_write> xout0: array<f32>;
@group(0) @binding(3) var<uniform> pp0: PrepParams;

// 2^-(bits·k) for code slot k, or 1 for the shifted top code of a full word (bits 2, 4, 8).
fn slotScale(k: u32, bits: u32, n: u32) -> f32 {
  if (bits != 3u && k == n - 1u) { return 1.0; }
  return ldexp(1.0, -i32(bits * k));
}

@compute @workgroup_size(64)
fn prep1(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * 64u;
  let E = pp.G * pp.span * pp.slots;
  if (t < E) {
    let k = t % pp.slots;
    let i = (t / pp.slots) % pp.span;
    let j = t / (pp.slots * pp.span);
    let c = (((j * pp.g) / pp.n) / pp.L * pp.L + i) * pp.n + k;
    var v = 0.0;
    if (k < pp.n && c >= j * pp.g && c < (j + 1u) * pp.g) {
      v = xin[c];
      if (pp.affine != 0u) { v *= slotScale(k, pp.bits, pp.n); }
    }
    xout[t] = v;
  } else if (t < E + pp.G) {
    let j = t - E;
    var s = 0.0;
    for (var c = j * pp.g; c < (j + 1u) * pp.g; c++) { s += xin[c]; }
    xout[pp.xoff + j] = s;
  }
}

@compute @workgroup_size(64)
fn prep0(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * 64u;
  let units = pp0.span / pp0.L;
  if (t >= pp0.G * units) { return; }
  let grp = t / units;
  let w0 = (t % units) * pp0.L;
  var part = 0.0;
  for (var k = 0u; k < pp0.L * pp0.slots; k++) {
    let slot = k % pp0.slots;
    let c = (w0 + k / pp0.slots) * pp0.n + slot;
    var v = 0.0;
    if (slot < pp0.n && c < pp0.cols) {
      let m = pmeta[grp * pp0.cols + c];
      let xc = xin[c];
      if (pp0.affine != 0u) {
        let sz = unpack2x16float(m);
        v = xc * sz.x * slotScale(slot, pp0.bits, pp0.n);
        part += sz.y * (sz.x * xc);
      } else {
        v = xc * bitcast<f32>(m);
      }
    }
    xout0[(grp * pp0.span + w0) * pp0.slots + k] = v;
  }
  xout0[pp0.xoff + t] = part;
}
