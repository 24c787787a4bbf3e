/** Float64 host references for the nn module tests, written from the HF formulas, loop by loop. */

/** `y[t, o] = Σ_i x[t, i] w[o, i] + b[o]`; x `[T, I]`, w `[O, I]`. */
export function linearRef(
  x: Float32Array,
  w: Float32Array,
  T: number,
  I: number,
  O: number,
  b?: Float32Array,
): Float64Array {
  const y = new Float64Array(T * O);
  for (let t = 0; t < T; t++) {
    for (let o = 0; o < O; o++) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < I; i++) s += x[t * I + i] * w[o * I + i];
      y[t * O + o] = s;
    }
  }
  return y;
}

/** RMSNorm of every row of `n` values. */
export function rmsRef(x: ArrayLike<number>, w: ArrayLike<number>, n: number, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / n; r++) {
    let ss = 0;
    for (let j = 0; j < n; j++) ss += x[r * n + j] ** 2;
    const inv = 1 / Math.sqrt(ss / n + eps);
    for (let j = 0; j < n; j++) y[r * n + j] = x[r * n + j] * inv * w[j];
  }
  return y;
}

export const silu = (v: number): number => v / (1 + Math.exp(-v));

/** SwiGLU on `[T, C]` with gate/up `[F, C]`, down `[C, F]`. */
export function swigluRef(
  x: Float32Array,
  gate: Float32Array,
  up: Float32Array,
  down: Float32Array,
  T: number,
  C: number,
  F: number,
): Float64Array {
  const g = linearRef(x, gate, T, C, F);
  const u = linearRef(x, up, T, C, F);
  const a = Float32Array.from(g, (v, i) => silu(v) * u[i]);
  return linearRef(a, down, T, F, C);
}

/** HF `rotate_half` RoPE on `[T, H, D]` at positions `pos0..`. */
export function ropeRef(
  x: ArrayLike<number>,
  T: number,
  H: number,
  D: number,
  pos0: number,
  theta: number,
): Float64Array {
  const y = new Float64Array(T * H * D);
  const half = D / 2;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      const o = (t * H + h) * D;
      for (let i = 0; i < half; i++) {
        const a = (pos0 + t) * Math.pow(theta, -2 * i / D);
        y[o + i] = x[o + i] * Math.cos(a) - x[o + i + half] * Math.sin(a);
        y[o + i + half] = x[o + i + half] * Math.cos(a) + x[o + i] * Math.sin(a);
      }
    }
  }
  return y;
}

/** Causal GQA softmax attention; q `[T, H, D]`, k/v `[T, Hkv, D]`, all at positions 0..T-1. */
export function attendRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  T: number,
  H: number,
  Hkv: number,
  D: number,
): Float64Array {
  const out = new Float64Array(T * H * D);
  const G = H / Hkv;
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < H; h++) {
      const kh = Math.floor(h / G);
      const s = Array.from({ length: t + 1 }, (_, j) => {
        let d = 0;
        for (let i = 0; i < D; i++) d += q[(t * H + h) * D + i] * k[(j * Hkv + kh) * D + i];
        return d / Math.sqrt(D);
      });
      const m = Math.max(...s);
      const e = s.map((x) => Math.exp(x - m));
      const z = e.reduce((a, b) => a + b, 0);
      for (let i = 0; i < D; i++) {
        let acc = 0;
        for (let j = 0; j <= t; j++) acc += e[j] / z * v[(j * Hkv + kh) * D + i];
        out[(t * H + h) * D + i] = acc;
      }
    }
  }
  return out;
}
