// adamw.wgsl — one AdamW step (decoupled weight decay, bias-corrected Adam), f32, and y += alpha·x.
// PyTorch torch.optim.AdamW order (https://arxiv.org/abs/1711.05101, Algorithm 2):
//   g  = grad · gscale                  (gscale folds clip_grad_norm's coefficient in; 1 when unused)
//   p  = p · decay                      (decay = 1 − lr·weight_decay)
//   m  = m + (g − m)·(1 − β1)           (torch's exp_avg.lerp_)
//   v  = v·β2 + (1 − β2)·g²
//   p  = p − step_size · m / (sqrt(v) / bc2_sqrt + eps)
// with step_size = lr / (1 − β1^t) and bc2_sqrt = sqrt(1 − β2^t), computed on the host in float64.
// Entry points and bindings (group 0):
//   adamw (out of place)        0 p: read [N]  1 g: read [N]  2 m: read [N]  3 v: read [N]
//                               4 p_out: rw [N]  5 m_out: rw [N]  6 v_out: rw [N]  7 params: uniform Params
//   adamw_inplace               0 p: rw [N]  1 g: read [N]  2 m: rw [N]  3 v: rw [N]  4 params: uniform Params
//   axpy_inplace (y += α·x)     0 y: rw [N]  1 x: read [N]  2 params: uniform Params (n, alpha = lr)
// Workgroup: override WG = 64; each invocation handles 4 elements strided by WG so loads stay coalesced.
// Dispatch: (ceil(N / (4 WG)) split over x and y by grid1d, 1). Reference: src/ops/adamw.ts (adamwRef).

override WG: u32 = 64u;
const PER_THREAD: u32 = 4u;

struct Params {
  n: u32,
  lr: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  decay: f32,
  step_size: f32,
  bc2_sqrt: f32,
  gscale: f32,
}

// adamw
@group(0) @binding(0) var<storage, read> p_in: array<f32>;
@group(0) @binding(1) var<storage, read> g_in: array<f32>;
@group(0) @binding(2) var<storage, read> m_in: array<f32>;
@group(0) @binding(3) var<storage, read> v_in: array<f32>;
@group(0) @binding(4) var<storage, read_write> p_out: array<f32>;
@group(0) @binding(5) var<storage, read_write> m_out: array<f32>;
@group(0) @binding(6) var<storage, read_write> v_out: array<f32>;
@group(0) @binding(7) var<uniform> prm: Params;

// adamw_inplace
@group(0) @binding(0) var<storage, read_write> p_rw: array<f32>;
@group(0) @binding(2) var<storage, read_write> m_rw: array<f32>;
@group(0) @binding(3) var<storage, read_write> v_rw: array<f32>;
@group(0) @binding(4) var<uniform> prm_ip: Params;

// axpy_inplace
@group(0) @binding(1) var<storage, read> x_ax: array<f32>;
@group(0) @binding(2) var<uniform> prm_ax: Params;

fn base(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) -> u32 {
  return (wid.x + wid.y * nwg.x) * WG * PER_THREAD + lid;
}

// Returns (p, m, v) after one step for a single element.
fn update(p0: f32, g0: f32, m0: f32, v0: f32, q: Params) -> vec3<f32> {
  let g = g0 * q.gscale;
  let p = p0 * q.decay;
  let m = m0 + (g - m0) * (1.0 - q.beta1);
  let v = v0 * q.beta2 + (1.0 - q.beta2) * g * g;
  let denom = sqrt(v) / q.bc2_sqrt + q.eps;
  return vec3<f32>(p - q.step_size * (m / denom), m, v);
}

@compute @workgroup_size(WG)
fn adamw(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
         @builtin(local_invocation_index) lid: u32) {
  let i0 = base(wid, nwg, lid);
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = i0 + k * WG;
    if (i < prm.n) {
      let r = update(p_in[i], g_in[i], m_in[i], v_in[i], prm);
      p_out[i] = r.x;
      m_out[i] = r.y;
      v_out[i] = r.z;
    }
  }
}

@compute @workgroup_size(WG)
fn adamw_inplace(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                 @builtin(local_invocation_index) lid: u32) {
  let i0 = base(wid, nwg, lid);
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = i0 + k * WG;
    if (i < prm_ip.n) {
      let r = update(p_rw[i], g_in[i], m_rw[i], v_rw[i], prm_ip);
      p_rw[i] = r.x;
      m_rw[i] = r.y;
      v_rw[i] = r.z;
    }
  }
}

@compute @workgroup_size(WG)
fn axpy_inplace(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
  let i0 = base(wid, nwg, lid);
  for (var k = 0u; k < PER_THREAD; k++) {
    let i = i0 + k * WG;
    if (i < prm_ax.n) { p_rw[i] = p_rw[i] + prm_ax.lr * x_ax[i]; }
  }
}
