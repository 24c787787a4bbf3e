/**
 * Central finite-difference gradient checks for `src/autograd/`.
 *
 * The function under test maps Vars to an output Var; the check reduces it to the scalar
 * `L = Σ out ⊙ r` with a fixed random `r` (so every output element matters with a distinct weight),
 * computes dL/d(input) with the tape on the device under test, and compares it with
 * `(L(x + h·e_i) − L(x − h·e_i)) / 2h` evaluated by the CPU reference forward (f32 storage, float64
 * accumulation inside each op). With h = 1e-3 the f32 rounding of L (≈ 1e-7 relative) contributes
 * ≈ 1e-4 and the O(h²) truncation less, hence the default `atol 2e-3, rtol 1e-2`.
 * @module
 */
import type { Device } from "../../src/device/device.ts";
import { mul, sum, type Tape, type Var } from "../../src/autograd/mod.ts";
import { Tape as TapeClass } from "../../src/autograd/tape.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, DEVICES, randn } from "../_helpers.ts";

/** One input of a gradient check. */
export interface GradInput {
  data: Float32Array;
  shape: number[];
  /** Differentiate with respect to it (default true); false makes it a `tape.constant`. */
  param?: boolean;
}

/** Options of {@link gradcheck}. */
export interface GradcheckOptions {
  h?: number;
  atol?: number;
  rtol?: number;
  what?: string;
}

type Fn = (tape: Tape, xs: Var[], device: Device) => Var;

const CPU = DEVICES[0];

/** L = Σ f(xs) ⊙ r on `device`; when `backward`, also the gradients of the params (host copies). */
async function evaluate(
  device: Device,
  f: Fn,
  inputs: GradInput[],
  seed: number,
  backward: boolean,
): Promise<{ loss: number; grads: (Float32Array | null)[] }> {
  const tape = new TapeClass();
  const owned = inputs.map((x) => Tensor.fromArray(device, x.data, x.shape));
  try {
    const xs = owned.map((t, i) => backward && inputs[i].param !== false ? tape.param(t) : tape.constant(t));
    const out = f(tape, xs, device);
    const r = Tensor.fromArray(device, randn(out.value.size, seed), out.shape);
    owned.push(r);
    const loss = out.value.size === 1 ? mul(out, tape.constant(r)) : sum(mul(out, tape.constant(r)));
    const lossValue = (await loss.value.toArray())[0] as number;
    if (!backward) return { loss: lossValue, grads: [] };
    tape.backward(loss);
    const grads = await Promise.all(
      xs.map(async (v) => v.grad ? await v.grad.toArray() as Float32Array : null),
    );
    return { loss: lossValue, grads };
  } finally {
    tape.dispose();
    for (const t of owned) t.dispose();
  }
}

/**
 * Checks the tape's gradients of `f` on `device` against central differences of the CPU forward.
 * Returns the analytic gradients (null for constants).
 */
export async function gradcheck(
  device: Device,
  f: Fn,
  inputs: GradInput[],
  options: GradcheckOptions = {},
): Promise<(Float32Array | null)[]> {
  const { h = 1e-3, atol = 2e-3, rtol = 1e-2, what = "grad" } = options;
  const seed = 1234;
  const { grads } = await evaluate(device, f, inputs, seed, true);
  for (let k = 0; k < inputs.length; k++) {
    if (inputs[k].param === false) {
      if (grads[k] !== null) throw new Error(`${what}: constant input ${k} got a gradient`);
      continue;
    }
    const x = inputs[k].data;
    const numeric = new Float32Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const at = (delta: number) => {
        const moved = inputs.map((inp, j) => {
          if (j !== k) return inp;
          const d = Float32Array.from(inp.data);
          d[i] += delta;
          return { ...inp, data: d };
        });
        return evaluate(CPU, f, moved, seed, false);
      };
      const up = await at(h);
      const down = await at(-h);
      numeric[i] = (up.loss - down.loss) / (2 * h);
    }
    if (!grads[k]) throw new Error(`${what}: input ${k} got no gradient`);
    assertClose(grads[k]!, numeric, { atol, rtol, what: `${what} d/dinput${k} [${device.kind}]` });
  }
  return grads;
}
