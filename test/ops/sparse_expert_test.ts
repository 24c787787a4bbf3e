/**
 * sparseExpert: the kernel against the TypeScript reference on odd sizes (k = 1, k = F, threshold),
 * and the reference against an independent dense computation with the mask applied to up's output;
 * keptChannelCount, the kept-channel count every FloE sparsity turns into.
 */
import assert from "node:assert/strict";
import {
  type ChannelSelection,
  keptChannelCount,
  sparseExpert,
  sparseExpertRef,
} from "../../src/ops/sparse_expert.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";

const [T, C, F, K, E] = [7, 13, 11, 2, 3];
const x = randn(T * C, 1);
const gate = randn(F * C, 2, 0.5); // [F, C]
const downT = randn(F * C, 3, 0.5); // [F, C]
const v = randn(T * F, 4); // [T, F]
v[2 * F + 3] = -v[2 * F + 5]; // a tie in |v| on row 2
// token 6 goes to no expert 1; tokens 0..5 pick two distinct experts
const selected = Int32Array.from(
  { length: T * K },
  (_, i) => i >= 12 ? [0, 2][i - 12] : (Math.floor(i / K) + (i % K)) % E,
);
const weights = Float32Array.from({ length: T * K }, (_, i) => (i % K === 0 ? 0.7 : 0.3));

/** Independent: y_t = w_t · downT^T (SiLU(gate x_t) ⊙ (v_t ⊙ m_t)), m from a full sort of |v_t|. */
function denseMasked(expert: number, s: ChannelSelection): Float64Array {
  const y = new Float64Array(T * C);
  for (let t = 0; t < T; t++) {
    let w = 0;
    for (let k = 0; k < K; k++) if (selected[t * K + k] === expert) w += weights[t * K + k];
    const row = Array.from(v.subarray(t * F, (t + 1) * F));
    const ranked = row.map((val, f) => ({ m: Math.abs(val), f })).sort((a, b) => b.m - a.m || a.f - b.f);
    const keep = new Set(
      s.mode === "topk"
        ? ranked.slice(0, s.k).map((r) => r.f)
        : s.mode === "threshold"
        ? ranked.filter((r) => r.m > s.threshold).map((r) => r.f)
        : ranked.filter((r) => r.m > (s.thresholds as Float32Array)[r.f]).map((r) => r.f),
    );
    for (let f = 0; f < F; f++) {
      let g = 0;
      for (let c = 0; c < C; c++) g += gate[f * C + c] * x[t * C + c];
      const h = (g / (1 + Math.exp(-g))) * (keep.has(f) ? row[f] : 0);
      for (let c = 0; c < C; c++) y[t * C + c] += w * h * downT[f * C + c];
    }
  }
  return y;
}

const SELECTIONS: ChannelSelection[] = [
  { mode: "topk", k: 1 },
  { mode: "topk", k: 4 },
  { mode: "topk", k: F },
  { mode: "topk", k: 0 },
  { mode: "threshold", threshold: 0.8 },
  { mode: "threshold", threshold: 0 },
  { mode: "channel-threshold", thresholds: Float32Array.from({ length: F }, (_, f) => 0.2 * (f % 5)) },
];

Deno.test("sparseExpertRef equals a dense computation with up's output masked", () => {
  for (let e = 0; e < E; e++) {
    for (const s of SELECTIONS) {
      const y = new Float32Array(T * C);
      sparseExpertRef({ x, v, gate, downT, selected, weights, expert: e, T, C, F, K }, s, y);
      assertClose(y, denseMasked(e, s), { rtol: 1e-5, atol: 1e-6, what: `expert ${e} ${JSON.stringify(s)}` });
      const routed = new Set(
        Array.from({ length: T }, (_, t) => t).filter((t) => selected.subarray(t * K, t * K + K).includes(e)),
      );
      for (let t = 0; t < T; t++) {
        if (!routed.has(t)) {
          assert.ok(y.subarray(t * C, (t + 1) * C).every((z) => z === 0), `token ${t} not routed to ${e}`);
        }
      }
    }
  }
});

testOnDevices("sparseExpert matches its reference (odd sizes, k = 1, k = F, thresholds)", async (dev) => {
  const f32 = (a: Float32Array, shape: number[]) => Tensor.fromArray(dev, a, shape);
  const input = {
    x: f32(x, [T, C]),
    v: f32(v, [T, F]),
    gate: f32(gate, [F, C]),
    downT: f32(downT, [F, C]),
    selected: Tensor.fromArray(dev, selected, [T, K], { dtype: "i32" }),
    weights: f32(weights, [T, K]),
  };
  for (let e = 0; e < E; e++) {
    for (const s of SELECTIONS) {
      using thr = s.mode === "channel-threshold" ? f32(s.thresholds as Float32Array, [F]) : undefined;
      using y = sparseExpert(
        { ...input, expert: e },
        thr ? { mode: "channel-threshold", thresholds: thr } : s,
      );
      const want = new Float32Array(T * C);
      sparseExpertRef({ x, v, gate, downT, selected, weights, expert: e, T, C, F, K }, s, want);
      assertClose(await y.toArray(), want, {
        rtol: 1e-4,
        atol: 1e-5,
        what: `expert ${e} ${JSON.stringify(s)}`,
      });
    }
  }
  assert.throws(
    () => sparseExpert({ ...input, expert: 0 }, { mode: "topk", k: F + 1 }),
    /top-k k must be an integer in 0\.\.11 \(F\): received 12/,
  );
  assert.throws(
    () => sparseExpert({ ...input, expert: 0 }, { mode: "threshold", threshold: -1 }),
    /threshold must be a finite number ≥ 0: received -1/,
  );
  assert.throws(
    () => sparseExpert({ ...input, gate: input.downT.reshape([C, F]), expert: 0 }, { mode: "topk", k: 1 }),
    /expected x \[T, C\], v \[T, F\], gate and downT \[Fc, C\]/,
  );
  assert.throws(
    () =>
      sparseExpert({ ...input, expert: 0 }, { mode: "channel-threshold", thresholds: new Float32Array(F) }),
    /channel thresholds must be an f32 tensor of F = 11 values/,
  );
  for (const t of Object.values(input)) t.dispose();
});

testOnDevices("sparseExpert over row chunks (a split weight) sums to the unsplit result", async (dev) => {
  const f32 = (a: Float32Array, shape: number[]) => Tensor.fromArray(dev, a, shape);
  const base = {
    x: f32(x, [T, C]),
    v: f32(v, [T, F]),
    selected: Tensor.fromArray(dev, selected, [T, K], { dtype: "i32" }),
    weights: f32(weights, [T, K]),
  };
  for (const s of [{ mode: "topk", k: 3 }, { mode: "threshold", threshold: 0.8 }] as ChannelSelection[]) {
    for (let e = 0; e < E; e++) {
      const want = new Float32Array(T * C);
      sparseExpertRef({ x, v, gate, downT, selected, weights, expert: e, T, C, F, K }, s, want);
      const sum = new Float64Array(T * C);
      for (const [f0, n] of [[0, 4], [4, 5], [9, 2]]) {
        using g = f32(gate.slice(f0 * C, (f0 + n) * C), [n, C]);
        using d = f32(downT.slice(f0 * C, (f0 + n) * C), [n, C]);
        using y = sparseExpert({ ...base, gate: g, downT: d, expert: e, channelOffset: f0 }, s);
        (await y.toArray() as Float32Array).forEach((z, i) => (sum[i] += z));
      }
      assertClose(sum, want, { rtol: 1e-4, atol: 1e-5, what: `expert ${e} ${JSON.stringify(s)}` });
    }
  }
  using g = f32(gate.slice(0, 4 * C), [4, C]);
  assert.throws(
    () => sparseExpert({ ...base, gate: g, downT: g, expert: 0, channelOffset: 8 }, { mode: "topk", k: 1 }),
    /channelOffset 8/,
  );
  for (const t of Object.values(base)) t.dispose();
});

Deno.test("keptChannelCount rounds (1 − s)·F down without binary noise", () => {
  assert.deepEqual([
    keptChannelCount(10, 0.9),
    keptChannelCount(256, 0.8),
    keptChannelCount(14336, 0.8),
    keptChannelCount(7, 0),
  ], [1, 51, 2867, 7]);
});
