import assert from "node:assert/strict";
import type { Device } from "../../src/device/device.ts";
import { attentionRef } from "../../src/ops/attention.ts";
import { attentionBackwardRef } from "../../src/ops/attention_backward.ts";
import {
  attentionBackwardMatmul,
  attentionMatmul,
  attentionProbsRef,
  matmulRouteFits,
} from "../../src/ops/attention_matmul.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";

interface Case {
  T: number;
  Hq: number;
  Hkv: number;
  D: number;
  pos: number;
  /** Key rows; rows ≥ pos + T hold NaN, which must never be read. */
  S?: number;
  /** Multiplies q to make the logits large. */
  qScale?: number;
}

// The route is called directly (the ops pick it only from T = 16 or 32 on), at shapes that exercise
// every branch: T = 1, T and n = pos + T off the kernels' tiles (n % 4 ≠ 0: scalar row kernel and
// strided matmuls; D % 4 ≠ 0), G = 1, 2, 4, D = 8..48, pos > 0 with spare NaN rows, large logits.
const CASES: Case[] = [
  { T: 1, Hq: 2, Hkv: 1, D: 8, pos: 0 },
  { T: 1, Hq: 4, Hkv: 2, D: 32, pos: 5, S: 9 },
  { T: 17, Hq: 4, Hkv: 4, D: 48, pos: 0 },
  { T: 37, Hq: 8, Hkv: 2, D: 32, pos: 0 },
  { T: 64, Hq: 8, Hkv: 4, D: 32, pos: 0 },
  { T: 30, Hq: 4, Hkv: 2, D: 20, pos: 6, S: 40 },
  { T: 13, Hq: 6, Hkv: 3, D: 33, pos: 3 },
  { T: 20, Hq: 4, Hkv: 2, D: 16, pos: 0, qScale: 20 },
];

function data(c: Case, seed: number) {
  const S = c.S ?? c.pos + c.T;
  const q = randn(c.T * c.Hq * c.D, seed, c.qScale ?? 1);
  const k = randn(S * c.Hkv * c.D, seed + 1);
  const v = randn(S * c.Hkv * c.D, seed + 2);
  const dy = randn(c.T * c.Hq * c.D, seed + 3);
  k.fill(NaN, (c.pos + c.T) * c.Hkv * c.D);
  v.fill(NaN, (c.pos + c.T) * c.Hkv * c.D);
  return { S, q, k, v, dy };
}

/**
 * As in attention_backward_test.ts: rtol 1e-4 plus atol 2e-5 × the values' rms (f32 sums over tens of
 * keys), times `grow` for large logits (an f32 logit of size L is off by ~L·6e-8, and so is P).
 */
function assertNear(got: Float32Array, want: Float32Array, what: string, grow = 1): void {
  let ss = 0;
  for (const x of want) ss += x * x;
  const rms = Math.sqrt(ss / Math.max(1, want.length));
  assertClose(got, want, { rtol: 1e-4, atol: 2e-5 * grow * rms + 1e-12, what });
}

async function check(dev: Device, c: Case, seed: number): Promise<void> {
  const { S, q, k, v, dy } = data(c, seed);
  const dims = { ...c, scale: 1 / Math.sqrt(c.D) };
  using tq = Tensor.fromArray(dev, q, [c.T, c.Hq, c.D]);
  using tk = Tensor.fromArray(dev, k, [S, c.Hkv, c.D]);
  using tv = Tensor.fromArray(dev, v, [S, c.Hkv, c.D]);
  using tdy = Tensor.fromArray(dev, dy, [c.T, c.Hq, c.D]);
  using o = Tensor.empty(dev, [c.T, c.Hq, c.D]);
  using dq = Tensor.empty(dev, [c.T, c.Hq, c.D]);
  using dk = Tensor.zeros(dev, [S, c.Hkv, c.D]);
  using dv = Tensor.zeros(dev, [S, c.Hkv, c.D]);
  attentionMatmul(tq, tk, tv, dims, o);
  attentionBackwardMatmul(tq, tk, tv, tdy, dims, { dq, dk, dv });
  const want = [q, q, k, v].map((a) => new Float32Array(a.length)); // o, dq, dk, dv
  attentionRef(q, k, v, dims, want[0]);
  attentionBackwardRef(q, k, v, dy, dims, want[1], want[2], want[3]);
  const what = JSON.stringify(c);
  const grow = c.qScale ?? 1;
  assertNear(await o.toArray(), want[0], `o ${what}`, grow);
  assertNear(await dq.toArray(), want[1], `dq ${what}`, grow);
  assertNear(await dk.toArray(), want[2], `dk ${what}`, grow);
  assertNear(await dv.toArray(), want[3], `dv ${what}`, grow);
}

testOnDevices("attention matmul route matches the references on odd shapes", async (dev) => {
  for (const [i, c] of CASES.entries()) await check(dev, c, 10 * i + 3);
});

Deno.test("attentionProbsRef masks the future, normalises rows and forms scale · P ⊙ (dP − Δ)", () => {
  // T = 2, Hq = 2, Hkv = 1 (G = 2), pos = 1: rows (t, g) = (0,0), (0,1), (1,0), (1,1) over n = 3 keys.
  const dims = { T: 2, Hq: 2, Hkv: 1, D: 4, pos: 1, scale: 0.5 };
  const s = new Float32Array([0, 2, 9, 0, 0, 9, 2, 0, 4, 1, 1, 1]);
  const dp = new Float32Array([1, 3, 5, 1, 1, 5, 0, 0, 0, 3, 0, 0]);
  attentionProbsRef(s, dp, dims);
  const e = Math.exp(1);
  const z = e + 1 + Math.exp(2); // row 2: scaled logits 1, 0, 2 over keys 0..2
  const want = [1 / (1 + e), e / (1 + e), 0, 0.5, 0.5, 0, e / z, 1 / z];
  assertClose(s.subarray(0, 8), want, { what: "P" });
  assertClose(s.subarray(9), [1 / 3, 1 / 3, 1 / 3], { what: "P row 3" });
  const d0 = (1 + 3 * e) / (1 + e); // Δ of row 0
  assertClose(dp.subarray(0, 3), [0.5 * want[0] * (1 - d0), 0.5 * want[1] * (3 - d0), 0], { what: "dS" });
  assertClose(dp.subarray(9), [1 / 3, -1 / 6, -1 / 6], { what: "dS row 3" }); // Δ = 1
});

Deno.test("matmulRouteFits() bounds T from below and the probabilities' bytes from above", () => {
  const d = { T: 256, Hq: 8, Hkv: 4, D: 32, pos: 0, scale: 1 };
  assert.ok(matmulRouteFits(d, 16));
  assert.ok(!matmulRouteFits({ ...d, T: 8 }, 16));
  assert.ok(!matmulRouteFits({ ...d, T: 4096, Hq: 32 }, 16)); // 2 GiB of probabilities
});
