// qmatmul.wgsl — y[T, O] = x[T, I] · Ŵ[O, I]ᵀ with Ŵ given as packed codes and group metadata
// (QuantizedTensor layout, src/tensor/quantized_tensor.ts): the Linear forward for prefill.
// Bindings (group 0):
//   0 codes  : array<u32>                      read        [O, W] row-aligned packed codes
//   1 x      : array<vec4<f32>> | array<f32>   read        [T, I] row-major
//   2 gmeta  : array<u32>                      read        [groups] pack2x16float(scale, zero) (affine)
//                                                          or f32 absmax bits (nf4, decoded if double-quantised)
//   3 y      : array<f32>                      read_write  [T, O]
//   4 p      : uniform Params {T, rows = O, cols = I, W, g, axis, tBase, _, nf4: 16 x f32}
// Entry points (override SCHEME: 0 affine, 1 nf4; override BITS: 2, 3, 4, 8):
//   vec4     x read as vec4 (I % 4 == 0 and 4 | codes per word: 2, 4, 8 bits)
//   scalar   x read one float at a time (3-bit words start at column 10k; odd I)
// Workgroup: override WG = 8 invocations along O; each computes TM (override, <= 16) tokens x TN = 8
// rows of Ŵ. Register blocking as in matmul.wgsl's nt4, no shared memory: per code word, each
// invocation dequantises one word of each of its 8 rows in registers, (q − zero)·scale or
// NF4[q]·absmax exactly as dequantizeRef does, then multiplies it into TM token rows of x. Tokens
// come from workgroup_id only, so every lane of a workgroup reads the same x (on llvmpipe a storage
// load is a loop over the 8 lanes whatever the address: the x loads, amortised over 8 lanes x 8 rows,
// dominate; unpacking is amortised over TM tokens). Groups along a row (axis 1) with n | g: one
// metadata load per row per word; otherwise (words straddling groups, or axis 0) override PERCODE:
// one per code.
// Measured on llvmpipe (LLVM 15, 2 cores), T = 16, 4096 x 4096, g = 64, axis 1, against
// matmul(x, W, { transB: true }) in the same run (31.4 ms, 17 GFLOP/s): 4-bit 34.5 ms (0.91x),
// 2-bit 44 ms (0.72x), NF4 38 ms (0.82x), NF4 + double quant 39 ms (0.80x); prefill is compute-bound,
// so packing buys memory, not time. A first version with the straddle test and the tail mask as
// runtime branches and selects ran 3x slower than f32 (llvmpipe executes both sides of a branch).
// Dispatch: (ceil(T / TM), ceil(O / (8 WG)), 1); the op splits larger T with tBase.
// Reference: src/ops/qmatmul.ts (qmatmulRef).

override WG: u32 = 8u;
override TM: u32 = 16u;
override BITS: u32 = 4u;
override SCHEME: u32 = 0u;
override PERCODE: bool = false; // metadata per code: groups along columns, or words straddling groups
const TMAX: u32 = 16u;
const TN: u32 = 8u;

struct Params { T: u32, rows: u32, cols: u32, W: u32, g: u32, axis: u32, tBase: u32, _pad: u32, nf4: array<vec4<f32>, 4> }

@group(0) @binding(0) var<storage, read> codes: array<u32>;
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> x1: array<f32>;
@group(0) @binding(2) var<storage, read> gmeta: array<u32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;

fn codesPerWord() -> u32 {
  switch BITS {
    case 2u: { return 16u; }
    case 3u: { return 10u; }
    case 8u: { return 4u; }
    default: { return 8u; }
  }
}
fn vecsPerWord() -> u32 { return (codesPerWord() + 3u) / 4u; }

// Metadata word -> (scale, zero) for affine, (absmax, 0) for nf4.
fn scaleZero(m: u32) -> vec2<f32> {
  if (SCHEME == 1u) { return vec2<f32>(bitcast<f32>(m), 0.0); }
  return unpack2x16float(m);
}

fn groupOf(row: u32, c: u32) -> u32 {
  if (p.axis == 1u) { return row * (p.cols / p.g) + c / p.g; }
  return (row % (p.rows / p.g)) * p.cols + c; // HQQ's reshape(g, -1)
}

// Codes 4v..4v+3 of word w (garbage past the word's codes: masked by the caller).
fn codesOf(w: u32, v: u32) -> vec4<u32> {
  let shift = min((vec4<u32>(4u * v) + vec4<u32>(0u, 1u, 2u, 3u)) * BITS, vec4<u32>(31u));
  return (vec4<u32>(w) >> shift) & vec4<u32>((1u << BITS) - 1u);
}

// (q − zero)·scale or NF4[q]·absmax for four codes, each with its own (scale, zero) in s, z.
fn values(q: vec4<u32>, s: vec4<f32>, z: vec4<f32>) -> vec4<f32> {
  if (SCHEME == 1u) {
    let t = vec4<f32>(p.nf4[q.x >> 2u][q.x & 3u], p.nf4[q.y >> 2u][q.y & 3u], p.nf4[q.z >> 2u][q.z & 3u], p.nf4[q.w >> 2u][q.w & 3u]);
    return t * s;
  }
  return (vec4<f32>(q) - z) * s;
}

// Word k of `row` dequantised into wv[o..o+V). Codes past the row's end are left as they come
// (padding dequantises to −zero·scale): the caller zeroes their x. Without PERCODE the whole word lies
// in one group, so one metadata load serves every code. PERCODE is an override, not a runtime test:
// llvmpipe runs both sides of a branch under a lane mask, so per-code loads in a branch would cost on
// every word.
fn dequantWord(row: u32, k: u32, wv: ptr<function, array<vec4<f32>, 32>>, o: u32) {
  let n = codesPerWord();
  let w = codes[row * p.W + k];
  let c0 = k * n;
  if (!PERCODE) {
    let sz = scaleZero(gmeta[groupOf(row, c0)]);
    for (var v = 0u; v < vecsPerWord(); v++) {
      (*wv)[o + v] = values(codesOf(w, v), vec4<f32>(sz.x), vec4<f32>(sz.y));
    }
  } else {
    for (var v = 0u; v < vecsPerWord(); v++) {
      let c = min(vec4<u32>(c0 + 4u * v) + vec4<u32>(0u, 1u, 2u, 3u), vec4<u32>(p.cols - 1u));
      let a = scaleZero(gmeta[groupOf(row, c.x)]);
      let b = scaleZero(gmeta[groupOf(row, c.y)]);
      let d = scaleZero(gmeta[groupOf(row, c.z)]);
      let e = scaleZero(gmeta[groupOf(row, c.w)]);
      (*wv)[o + v] = values(codesOf(w, v), vec4<f32>(a.x, b.x, d.x, e.x), vec4<f32>(a.y, b.y, d.y, e.y));
    }
  }
}

// x[token, k·n + 4v .. + 4) from the vec4 binding; `tail`: the word runs past cols (lanes zeroed).
fn xVec4(token: u32, k: u32, v: u32, tail: bool) -> vec4<f32> {
  let c = k * codesPerWord() + 4u * v;
  let xv = x4[min((token * p.cols + c) / 4u, arrayLength(&x4) - 1u)];
  if (!tail) { return xv; }
  return select(vec4<f32>(), xv, vec4<u32>(c) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(p.cols));
}

// The same from the scalar binding (slots past the word's codes, or past cols, are zero).
fn xScalar(token: u32, k: u32, v: u32, tail: bool) -> vec4<f32> {
  var out = vec4<f32>();
  for (var i = 0u; i < 4u; i++) {
    let s = 4u * v + i;
    let c = k * codesPerWord() + s;
    if (s < codesPerWord() && (!tail || c < p.cols)) { out[i] = x1[token * p.cols + c]; }
  }
  return out;
}

// acc[i][j] += Σ_v dot(wv[j][v], xv[v]) for the TN rows of one token.
fn multiply(i: u32, wv: ptr<function, array<vec4<f32>, 32>>, xv: ptr<function, array<vec4<f32>, 4>>,
            acc: ptr<function, array<array<f32, TN>, TMAX>>) {
  let V = vecsPerWord();
  for (var j = 0u; j < TN; j++) {
    var s = 0.0;
    for (var v = 0u; v < V; v++) { s += dot((*wv)[j * V + v], (*xv)[v]); }
    (*acc)[i][j] += s;
  }
}

fn dequantRows(r0: u32, k: u32, wv: ptr<function, array<vec4<f32>, 32>>) {
  for (var j = 0u; j < TN; j++) { dequantWord(min(r0 + j, p.rows - 1u), k, wv, j * vecsPerWord()); }
}

fn store(t0: u32, r0: u32, acc: ptr<function, array<array<f32, TN>, TMAX>>) {
  for (var i = 0u; i < TM; i++) {
    for (var j = 0u; j < TN; j++) {
      if (t0 + i < p.T && r0 + j < p.rows) { y[(t0 + i) * p.rows + r0 + j] = (*acc)[i][j]; }
    }
  }
}

// The last word of a row may run past cols: xVec4 / xScalar zero its x lanes (per token, not per row).
@compute @workgroup_size(WG)
fn vec4x(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t0 = p.tBase + wid.x * TM;
  let r0 = (wid.y * WG + lid) * TN;
  let full = p.cols / codesPerWord();
  var acc: array<array<f32, TN>, TMAX>;
  var wv: array<vec4<f32>, 32>; // [TN][V] dequantised words
  for (var k = 0u; k < p.W; k++) {
    let tail = k == full;
    dequantRows(r0, k, &wv);
    for (var i = 0u; i < TM; i++) {
      let token = min(t0 + i, p.T - 1u);
      var xv: array<vec4<f32>, 4>;
      for (var v = 0u; v < vecsPerWord(); v++) { xv[v] = xVec4(token, k, v, tail); }
      multiply(i, &wv, &xv, &acc);
    }
  }
  store(t0, r0, &acc);
}

@compute @workgroup_size(WG)
fn scalar(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t0 = p.tBase + wid.x * TM;
  let r0 = (wid.y * WG + lid) * TN;
  let full = p.cols / codesPerWord();
  var acc: array<array<f32, TN>, TMAX>;
  var wv: array<vec4<f32>, 32>;
  for (var k = 0u; k < p.W; k++) {
    let tail = k == full;
    dequantRows(r0, k, &wv);
    for (var i = 0u; i < TM; i++) {
      let token = min(t0 + i, p.T - 1u);
      var xv: array<vec4<f32>, 4>;
      for (var v = 0u; v < vecsPerWord(); v++) { xv[v] = xScalar(token, k, v, tail); }
      multiply(i, &wv, &xv, &acc);
    }
  }
  store(t0, r0, &acc);
}
