// attention_probs.wgsl — the row-wise middle of attention's matmul route (src/ops/attention_matmul.ts):
//   causal masked softmax of the scores and, for the backward (grad = 1), dS. Rows are [Hkv, T·G]
//   (row r of kv head h is query t = r / G, head h·G + r % G), each of n = pos + T key columns; key j
//   is visible when j ≤ pos + t. In place, f32:
//   s  <- P = softmax_j(scale · s) over visible j, 0 elsewhere
//   dp <- dS = scale · P ⊙ (dp − Δ), Δ = Σ_j P·dp (0 where masked), only when grad = 1
// Bindings (group 0); entry `probs` (any n) or `probs4` (n % 4 == 0: vec4 arrays, a quarter of the load
//   instructions):
//   0 s  : array<f32> | array<vec4<f32>>  read_write  [Hkv, T·G, n] scores Q·Kᵀ (unscaled)
//   1 dp : array<f32> | array<vec4<f32>>  read_write  [Hkv, T·G, n] dY·Vᵀ (grad = 0: any other buffer, untouched)
//   2 p  : uniform Params {rows = T·Hq, TG = T·G, G, n (vec4 units in probs4), pos, scale, grad}
// Workgroup: override ROWS invocations, one row each (whole-row passes in registers, no barriers: on
//   llvmpipe a barrier tree per row costs more than lanes walking their own rows). Passes: max, Σ exp,
//   then P (and Δ), then dS. Dispatch: (ceil(rows / ROWS) split over x and y by grid1d, 1).
// Reference: attentionProbsRef in src/ops/attention_matmul.ts.

override ROWS: u32 = 64u;

// Finite stand-in for -inf (WGSL has no infinity literals): exp(NEG - m) underflows to exactly 0.
const NEG: f32 = -3.0e38;

struct Params { rows: u32, TG: u32, G: u32, n: u32, pos: u32, scale: f32, grad: u32 }

@group(0) @binding(0) var<storage, read_write> s: array<f32>;
@group(0) @binding(1) var<storage, read_write> dp: array<f32>;
@group(0) @binding(0) var<storage, read_write> s4: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dp4: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> p: Params;

fn row_of(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 { return (wid.x + wid.y * nwg.x) * ROWS + lid; }

fn visible(row: u32) -> u32 { return p.pos + (row % p.TG) / p.G + 1u; } // keys 0..pos+t

// Softmax in place of the row starting at b whose first len keys are visible (scalar layout).
fn softmax_row(b: u32, len: u32) {
  var m = NEG;
  for (var j = 0u; j < len; j++) { m = max(m, p.scale * s[b + j]); }
  var l = 0.0;
  for (var j = 0u; j < len; j++) { l += exp(p.scale * s[b + j] - m); }
  let inv = 1.0 / l;
  for (var j = 0u; j < len; j++) { s[b + j] = exp(p.scale * s[b + j] - m) * inv; }
  for (var j = len; j < p.n; j++) { s[b + j] = 0.0; }
}

@compute @workgroup_size(ROWS)
fn probs(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let row = row_of(wid, nwg, lid);
  if (row >= p.rows) { return; }
  let b = row * p.n;
  let len = visible(row);
  softmax_row(b, len);
  if (p.grad == 0u) { return; }
  var delta = 0.0;
  for (var j = 0u; j < len; j++) { delta += s[b + j] * dp[b + j]; }
  for (var j = 0u; j < len; j++) { dp[b + j] = p.scale * s[b + j] * (dp[b + j] - delta); }
  for (var j = len; j < p.n; j++) { dp[b + j] = 0.0; }
}

// vec4 layout: row b4 = row · n4; column block c holds keys 4c..4c+3, masked lanes forced to NEG / 0.
fn scores4(b4: u32, c: u32, len: u32) -> vec4<f32> {
  let keep = vec4(4u * c) + vec4(0u, 1u, 2u, 3u) < vec4(len);
  return select(vec4(NEG), p.scale * s4[b4 + c], keep);
}

fn softmax_row4(b4: u32, len: u32) -> u32 {  // returns the number of blocks touching visible keys
  let nb = (len + 3u) / 4u;
  var m4 = vec4(NEG);
  for (var c = 0u; c < nb; c++) { m4 = max(m4, scores4(b4, c, len)); }
  let m = max(max(m4.x, m4.y), max(m4.z, m4.w));
  var l4 = vec4(0.0);
  for (var c = 0u; c < nb; c++) { l4 += exp(scores4(b4, c, len) - m); }
  let inv = 1.0 / (l4.x + l4.y + l4.z + l4.w);
  for (var c = 0u; c < nb; c++) { s4[b4 + c] = exp(scores4(b4, c, len) - m) * inv; }
  for (var c = nb; c < p.n; c++) { s4[b4 + c] = vec4(0.0); }
  return nb;
}

@compute @workgroup_size(ROWS)
fn probs4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
          @builtin(local_invocation_index) lid: u32) {
  let row = row_of(wid, nwg, lid);
  if (row >= p.rows) { return; }
  let b4 = row * p.n;
  let nb = softmax_row4(b4, visible(row));
  if (p.grad == 0u) { return; }
  var d4 = vec4(0.0);
  for (var c = 0u; c < nb; c++) { d4 += s4[b4 + c] * dp4[b4 + c]; } // masked P are 0
  let delta = d4.x + d4.y + d4.z + d4.w;
  for (var c = 0u; c < nb; c++) { dp4[b4 + c] = p.scale * s4[b4 + c] * (dp4[b4 + c] - delta); }
  for (var c = nb; c < p.n; c++) { dp4[b4 + c] = vec4(0.0); }
}
