/**
 * Token cross-entropy, mean over the rows whose target is not `ignoreIndex` (PyTorch's
 * `F.cross_entropy(logits, targets, ignore_index=-100)`), and its gradient with respect to the
 * logits. Kernel: `kernels/cross_entropy.wgsl`.
 *
 * Shapes: `N` rows (tokens; the product of the leading dims), `V` vocabulary.
 *
 * Choices:
 * - With no valid row the loss is `0` and the gradient is all zeros (PyTorch gives NaN). A
 *   padding-only micro-batch then adds nothing to an accumulated loss instead of poisoning it.
 * - A target outside `[0, V)` (other than `ignoreIndex`) throws a `RangeError` on the CPU backend;
 *   a kernel cannot throw, so on WebGPU that row makes the loss (and its gradient row) NaN.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { crossEntropy, crossEntropyBackward } from "./cross_entropy.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const logits = Tensor.fromArray(dev, [0, 0, 5, 1, 2, 3], [2, 3]); // [N, V]
 * const targets = Tensor.fromArray(dev, new Int32Array([1, -100])); // [N]; row 1 ignored
 * const loss = await crossEntropy(logits, targets).toArray(); // [] : ln(2 + e^5) - 0
 * assert.ok(Math.abs(loss[0] - Math.log(2 + Math.exp(5))) < 1e-5);
 * const d = await crossEntropyBackward(logits, targets, 1).toArray(); // [2, 3]
 * assert.ok(d[3] === 0 && Math.abs(d[0] + d[1] + d[2]) < 1e-6);
 * ```
 * @module
 */
import { exp } from "./_exp.ts";
import code from "../../kernels/cross_entropy.wgsl" with { type: "text" };
import { Tensor } from "../tensor/tensor.ts";
import { expectDType, expectRank, gpuOf, params, sameDevice } from "./_kernel.ts";
import { rowLaunch } from "./_rows.ts";

/** Options of {@link crossEntropy} and {@link crossEntropyBackward}. */
export interface CrossEntropyOptions {
  /** Rows with this target count neither in the loss nor in the mean; default `-100` (PyTorch). */
  ignoreIndex?: number;
}

// ---------------------------------------------------------------------------------------
// References (the CPU backend and the test oracle), float64

/** Result of {@link crossEntropyRef}. */
export interface CrossEntropyRefResult {
  /** Mean loss over valid rows (0 when none). */
  loss: number;
  /** Rows whose target is not `ignoreIndex`. */
  nValid: number;
}

function checkTarget(t: number, i: number, v: number): void {
  if (!(t >= 0 && t < v)) {
    throw new RangeError(
      `Cannot run crossEntropy: targets[${i}] = ${t} is outside [0, ${v}) and is not the ignoreIndex`,
    );
  }
}

/** Max-subtracted log Σ exp of `x[o, o + v)`, in float64. */
function logSumExp(x: Float32Array, o: number, v: number): number {
  let m = -Infinity;
  for (let j = 0; j < v; j++) m = Math.max(m, x[o + j]);
  let s = 0;
  for (let j = 0; j < v; j++) s += exp(x[o + j] - m);
  return m + Math.log(s);
}

/**
 * Reference loss: `Σ_valid (logsumexp(x[r]) − x[r, t[r]]) / nValid`, float64.
 *
 * @param logits `[N, V]` row-major.
 * @param targets `[N]` class ids.
 * @param v Vocabulary `V`.
 * @throws {RangeError} on a target outside `[0, V)` that is not `ignoreIndex`.
 */
export function crossEntropyRef(
  logits: Float32Array,
  targets: Int32Array,
  v: number,
  ignoreIndex = -100,
): CrossEntropyRefResult {
  let sum = 0;
  let nValid = 0;
  for (let r = 0; r < targets.length; r++) {
    const t = targets[r];
    if (t === ignoreIndex) continue;
    checkTarget(t, r, v);
    sum += logSumExp(logits, r * v, v) - logits[r * v + t];
    nValid++;
  }
  return { loss: nValid > 0 ? sum / nValid : 0, nValid };
}

/**
 * Reference gradient: `dx[r] = (softmax(x[r]) − onehot(t[r])) · dloss / nValid`, zero rows where
 * ignored (and everywhere when no row is valid), float64 rounded to f32.
 *
 * @param dx `[N, V]` output.
 */
export function crossEntropyBackwardRef(
  logits: Float32Array,
  targets: Int32Array,
  v: number,
  dloss: number,
  dx: Float32Array,
  ignoreIndex = -100,
): void {
  let nValid = 0;
  for (let r = 0; r < targets.length; r++) {
    if (targets[r] === ignoreIndex) continue;
    checkTarget(targets[r], r, v);
    nValid++;
  }
  const coef = nValid > 0 ? dloss / nValid : 0;
  const e = new Float64Array(v);
  for (let r = 0; r < targets.length; r++) {
    const o = r * v;
    const t = targets[r];
    if (t === ignoreIndex) {
      dx.fill(0, o, o + v);
      continue;
    }
    // softmax in one exp per element: e_j = exp(x_j − max) kept in float64, then scaled by 1 / Σ e.
    let m = -Infinity;
    for (let j = 0; j < v; j++) m = Math.max(m, logits[o + j]);
    let sum = 0;
    for (let j = 0; j < v; j++) sum += e[j] = exp(logits[o + j] - m);
    const inv = 1 / sum;
    for (let j = 0; j < v; j++) dx[o + j] = (e[j] * inv - (j === t ? 1 : 0)) * coef;
  }
}

// ---------------------------------------------------------------------------------------
// Ops

function checkArgs(op: string, logits: Tensor, targets: Tensor): { n: number; v: number } {
  sameDevice(op, logits, targets);
  expectDType(op, "logits", logits, "f32");
  expectDType(op, "targets", targets, "i32");
  expectRank(op, "logits", logits, 1, Infinity);
  const lead = logits.shape.slice(0, -1);
  if (targets.rank !== lead.length || targets.shape.some((d, i) => d !== lead[i])) {
    throw new TypeError(
      `Cannot run ${op}: targets must have shape [${lead}] (the leading dims of logits [${logits.shape}]): ` +
        `received [${targets.shape}]`,
    );
  }
  return { n: targets.size, v: logits.shape[logits.rank - 1] };
}

function ignoreOf(op: string, options: CrossEntropyOptions): number {
  const ignore = options.ignoreIndex ?? -100;
  if (!Number.isInteger(ignore) || Math.abs(ignore) > 2 ** 31 - 1) {
    throw new RangeError(`Cannot run ${op}: ignoreIndex must be an i32 integer: received ${ignore}`);
  }
  return ignore;
}

/**
 * Mean cross-entropy of `logits` against `targets`, over rows whose target is not `ignoreIndex`.
 *
 * @param logits `[..., V]` f32 (e.g. `[N, V]` or `[B, T, V]`).
 * @param targets `[...]` i32 class ids, the leading dims of `logits`.
 * @param options `ignoreIndex` (default `-100`).
 * @returns `[]` f32 loss (`0` when no row is valid).
 * @throws {TypeError} on wrong dtypes or shapes.
 * @throws {RangeError} on the CPU backend, for a target outside `[0, V)` that is not ignored.
 */
export function crossEntropy(
  logits: Tensor,
  targets: Tensor,
  options: CrossEntropyOptions = {},
): Tensor<"f32"> {
  const { n, v } = checkArgs("crossEntropy", logits, targets);
  const ignore = ignoreOf("crossEntropy", options);
  const device = logits.device;
  if (device.kind === "cpu" || n === 0) {
    const r = n === 0
      ? { loss: 0 }
      : crossEntropyRef(logits.host() as Float32Array, targets.host() as Int32Array, v, ignore);
    return Tensor.fromArray(device, new Float32Array([r.loss]), []);
  }
  const gpu = gpuOf(device);
  const p = params(["u32", n], ["u32", v], ["i32", ignore], ["f32", NaN]);
  using rowLoss = Tensor.empty(device, [n]); // [N]; freed once the pending work is submitted
  const loss = Tensor.empty(device, []); // []
  gpu.dispatch({ name: "cross_entropy", code, entryPoint: "rows" }, {
    bindings: [logits.storage, targets.storage, rowLoss.storage],
    params: p,
    ...rowLaunch(device, n, v),
  });
  gpu.dispatch({ name: "cross_entropy", code, entryPoint: "finish" }, {
    bindings: [rowLoss.storage, targets.storage, loss.storage],
    params: p,
    workgroups: [1],
  });
  return loss;
}

/**
 * Gradient of {@link crossEntropy} with respect to the logits:
 * `(softmax(logits) − onehot(targets)) · dloss / nValid`, zero rows where the target is ignored.
 *
 * @param logits `[..., V]` f32, as in the forward pass.
 * @param targets `[...]` i32.
 * @param dloss Upstream gradient of the loss: a number or a `[]` (or `[1]`) f32 tensor.
 * @param options `ignoreIndex` (default `-100`), as in the forward pass.
 * @returns `[..., V]` f32.
 * @throws {TypeError} on wrong dtypes or shapes.
 * @throws {RangeError} on the CPU backend, for a target outside `[0, V)` that is not ignored.
 */
export function crossEntropyBackward(
  logits: Tensor,
  targets: Tensor,
  dloss: Tensor | number,
  options: CrossEntropyOptions = {},
): Tensor<"f32"> {
  const { n, v } = checkArgs("crossEntropyBackward", logits, targets);
  const ignore = ignoreOf("crossEntropyBackward", options);
  const device = logits.device;
  if (typeof dloss !== "number") {
    sameDevice("crossEntropyBackward", logits, dloss);
    expectDType("crossEntropyBackward", "dloss", dloss, "f32");
    if (dloss.size !== 1) {
      throw new TypeError(
        `Cannot run crossEntropyBackward: dloss must be a scalar: received shape [${dloss.shape}]`,
      );
    }
  }
  const dx = Tensor.empty(device, logits.shape); // [..., V]
  if (dx.size === 0) return dx;
  if (device.kind === "cpu") {
    const g = typeof dloss === "number" ? dloss : (dloss.host() as Float32Array)[0];
    const x = logits.host() as Float32Array;
    crossEntropyBackwardRef(x, targets.host() as Int32Array, v, g, dx.host(), ignore);
    return dx;
  }
  const gpu = gpuOf(device);
  const p = params(["u32", n], ["u32", v], ["i32", ignore], ["f32", NaN]);
  using g = typeof dloss === "number" ? Tensor.fromArray(device, new Float32Array([dloss]), []) : null;
  using coef = Tensor.empty(device, []); // dloss / nValid
  gpu.dispatch({ name: "cross_entropy", code, entryPoint: "coef_main" }, {
    bindings: [targets.storage, (g ?? dloss as Tensor).storage, coef.storage],
    params: p,
    workgroups: [1],
  });
  gpu.dispatch({ name: "cross_entropy", code, entryPoint: "backward" }, {
    bindings: [logits.storage, targets.storage, coef.storage, dx.storage],
    params: p,
    ...rowLaunch(device, n, v),
  });
  return dx;
}
