// matmul.wgsl — y[z, M, N] = a[z, M, K] · b[z?, K, N]   (or · b[z?, N, K]ᵀ with transB), f32.
// Bindings (group 0):
//   0 a      : array<vec4<f32>> | array<f32>   read        [Z, M, K] row-major
//   1 b      : array<vec4<f32>> | array<f32>   read        [K, N] (nn) or [N, K] (nt); per batch when sb > 0
//   2 y      : array<vec4<f32>> | array<f32>   read_write  [Z, M, N]
//   3 p      : uniform Params {M, N, K, mBase, zBase, sa, sb, sy, sbk, sbn}
// Entry points:
//   nn4      b is [K, N]; needs K % 4 == 0 and N % 4 == 0. Each invocation: TM (<= 8) rows x 8
//            columns (2 vec4 per row of b).
//   nt4      b is [N, K]; needs K % 4 == 0. Each invocation: TM (<= 16) rows x 8 columns, dot
//            products along K, four vec4 (a 64-byte line) per row per step, then a K tail.
//   strided  any K, N, either layout (b[k, n] at k·sbk + n·sbn); scalar loads, TM <= 16 rows x
//            8 columns; about 4x slower (1023³: ~5 GFLOP/s).
// Workgroup: override WG = 8 invocations along N; override TM rows per invocation.
// Register blocking, no shared memory: on llvmpipe a load whose address differs across lanes
// is a loop over the lanes, so each invocation reuses every loaded value many times. Rows of a
// come from workgroup_id only, so their loads are uniform (one load for all lanes); lanes of a
// workgroup read neighbouring columns (nn4) or rows (nt4) of b. Edge tiles clamp load indices
// and guard stores. Measured on llvmpipe (2 cores), 1024³: nn4 TM=8 ~21 GFLOP/s, nt4 TM=16
// ~24 GFLOP/s (nt4 with TM=8 and one vec4 per step: 13; nn4 with TM=16: 15).
// Dispatch: (ceil(M / TM), ceil(N / (8 WG)), Z); the op splits larger grids with mBase / zBase.
// Reference: src/ops/matmul.ts (matmulRef).

override WG: u32 = 8u;
override TM: u32 = 8u;  // nn4: up to 8; nt4, strided: up to 16
const TMAX: u32 = 16u;
const TN: u32 = 8u;

struct Params {
  M: u32, N: u32, K: u32,
  mBase: u32,  // first row of this dispatch
  zBase: u32,  // first batch of this dispatch
  sa: u32,     // elements between batches of a (M·K)
  sb: u32,     // elements between batches of b (K·N, or 0 when b is shared)
  sy: u32,     // elements between batches of y (M·N)
  sbk: u32,    // strided: stride of b along K
  sbn: u32,    // strided: stride of b along N
}

@group(0) @binding(0) var<storage, read> a4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> b4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y4: array<vec4<f32>>;
@group(0) @binding(0) var<storage, read> a1: array<f32>;
@group(0) @binding(1) var<storage, read> b1: array<f32>;
@group(0) @binding(2) var<storage, read_write> y1: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn nn4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let z = p.zBase + wid.z;
  let m0 = p.mBase + wid.x * TM;
  let K4 = p.K / 4u;
  let N4 = p.N / 4u;
  let n4 = (wid.y * WG + lid) * 2u;
  let aBase = z * (p.sa / 4u);
  let bBase = z * (p.sb / 4u) + min(n4, N4 - 1u);
  let bOdd = min(n4 + 1u, N4 - 1u) - min(n4, N4 - 1u);
  var acc: array<array<vec4<f32>, 2>, TMAX>;
  for (var k = 0u; k < K4; k++) {
    let r = bBase + 4u * k * N4;
    let q0 = b4[r];
    let q1 = b4[r + bOdd];
    let q2 = b4[r + N4];
    let q3 = b4[r + N4 + bOdd];
    let q4 = b4[r + 2u * N4];
    let q5 = b4[r + 2u * N4 + bOdd];
    let q6 = b4[r + 3u * N4];
    let q7 = b4[r + 3u * N4 + bOdd];
    for (var i = 0u; i < TM; i++) {
      let av = a4[aBase + min(m0 + i, p.M - 1u) * K4 + k];
      acc[i][0] += av.x * q0 + av.y * q2 + av.z * q4 + av.w * q6;
      acc[i][1] += av.x * q1 + av.y * q3 + av.z * q5 + av.w * q7;
    }
  }
  let yBase = z * (p.sy / 4u);
  for (var i = 0u; i < TM; i++) {
    let m = m0 + i;
    if (m < p.M) {
      if (n4 < N4) { y4[yBase + m * N4 + n4] = acc[i][0]; }
      if (n4 + 1u < N4) { y4[yBase + m * N4 + n4 + 1u] = acc[i][1]; }
    }
  }
}

@compute @workgroup_size(WG)
fn nt4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let z = p.zBase + wid.z;
  let m0 = p.mBase + wid.x * TM;
  let K4 = p.K / 4u;
  let n0 = (wid.y * WG + lid) * TN;
  let aBase = z * (p.sa / 4u);
  let bBase = z * (p.sb / 4u);
  var acc: array<array<f32, TN>, TMAX>;
  // Four vec4 (one 64-byte line) per row of b per step: fewer, wider per-lane loads.
  let K16 = K4 - K4 % 4u;
  for (var k = 0u; k < K16; k += 4u) {
    var b0: array<vec4<f32>, TN>;
    var b1: array<vec4<f32>, TN>;
    var b2: array<vec4<f32>, TN>;
    var b3: array<vec4<f32>, TN>;
    for (var j = 0u; j < TN; j++) {
      let r = bBase + min(n0 + j, p.N - 1u) * K4 + k;
      b0[j] = b4[r];
      b1[j] = b4[r + 1u];
      b2[j] = b4[r + 2u];
      b3[j] = b4[r + 3u];
    }
    for (var i = 0u; i < TM; i++) {
      let r = aBase + min(m0 + i, p.M - 1u) * K4 + k;
      let a0 = a4[r];
      let a1_ = a4[r + 1u];
      let a2 = a4[r + 2u];
      let a3 = a4[r + 3u];
      for (var j = 0u; j < TN; j++) {
        acc[i][j] += dot(a0, b0[j]) + dot(a1_, b1[j]) + dot(a2, b2[j]) + dot(a3, b3[j]);
      }
    }
  }
  for (var k = K16; k < K4; k++) {
    var bv: array<vec4<f32>, TN>;
    for (var j = 0u; j < TN; j++) { bv[j] = b4[bBase + min(n0 + j, p.N - 1u) * K4 + k]; }
    for (var i = 0u; i < TM; i++) {
      let av = a4[aBase + min(m0 + i, p.M - 1u) * K4 + k];
      for (var j = 0u; j < TN; j++) { acc[i][j] += dot(av, bv[j]); }
    }
  }
  store(z, m0, n0, &acc);
}

@compute @workgroup_size(WG)
fn strided(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let z = p.zBase + wid.z;
  let m0 = p.mBase + wid.x * TM;
  let n0 = (wid.y * WG + lid) * TN;
  let aBase = z * p.sa;
  let bBase = z * p.sb;
  var acc: array<array<f32, TN>, TMAX>;
  for (var k = 0u; k < p.K; k++) {
    var bv: array<f32, TN>;
    for (var j = 0u; j < TN; j++) { bv[j] = b1[bBase + k * p.sbk + min(n0 + j, p.N - 1u) * p.sbn]; }
    for (var i = 0u; i < TM; i++) {
      let av = a1[aBase + min(m0 + i, p.M - 1u) * p.K + k];
      for (var j = 0u; j < TN; j++) { acc[i][j] += av * bv[j]; }
    }
  }
  store(z, m0, n0, &acc);
}

fn store(z: u32, m0: u32, n0: u32, acc: ptr<function, array<array<f32, TN>, TMAX>>) {
  let yBase = z * p.sy;
  for (var i = 0u; i < TM; i++) {
    for (var j = 0u; j < TN; j++) {
      if (m0 + i < p.M && n0 + j < p.N) { y1[yBase + (m0 + i) * p.N + n0 + j] = (*acc)[i][j]; }
    }
  }
}
