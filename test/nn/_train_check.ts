/**
 * Finite-difference checks of training forwards (`forwardTrain` / `lossTrain`) of whole modules.
 *
 * A case builds the same module twice from the same seeded data: on the device under test (the
 * tape's gradients of `L = Σ out ⊙ r`, `r` a fixed random tensor, with every listed tensor
 * trainable) and on the CPU reference, where each checked element is moved by `±h` in place and `L`
 * re-evaluated (`(L₊ − L₋) / 2h`). The context's dropout seed is fixed, so a training-mode case
 * draws the same masks in every evaluation. Tolerances as `test/autograd/_gradcheck.ts`.
 * @module
 */
import { mul, sum, Tape, TrainContext, type Var } from "../../src/autograd/mod.ts";
import type { Device } from "../../src/device/device.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, DEVICES, randn, rng } from "../_helpers.ts";

/** A module built on one device: its trainable tensors and its training forward. */
export interface TrainCase {
  /** Tensors to differentiate, by name (the CPU and device builds list them in the same order). */
  params: [string, Tensor][];
  run: (ctx: TrainContext) => Var | Promise<Var>;
  dispose: () => void;
}

/** Options of {@link trainGradcheck}. */
export interface TrainGradcheckOptions {
  h?: number;
  atol?: number;
  rtol?: number;
  /** Elements checked per tensor (random positions; all when the tensor is smaller). Default 6. */
  perTensor?: number;
  /** Dropout on (default false). */
  training?: boolean;
  what?: string;
}

const CPU = DEVICES[0];

async function evaluate(c: TrainCase, training: boolean, backward: boolean) {
  using tape = new Tape();
  const ctx = new TrainContext(tape, new Set(backward ? c.params.map(([, t]) => t) : []), {
    training,
    seed: 5,
  });
  const out = await c.run(ctx);
  const r = tape.constant(
    tape.keep(Tensor.fromArray(out.value.device, randn(out.value.size, 77), out.shape)),
  );
  const loss = sum(mul(out, r)); // []
  const value = (await loss.value.toArray())[0] as number;
  if (!backward) return { value, grads: [] as Float32Array[] };
  tape.backward(loss);
  const grads: Float32Array[] = [];
  for (const [name, t] of c.params) {
    const g = ctx.grad(t);
    if (!g) throw new Error(`${name} got no gradient`);
    grads.push(await g.toArray() as Float32Array);
  }
  return { value, grads };
}

/** Checks the tape's gradients of `make(device)` against central differences of `make(cpu)`. */
export async function trainGradcheck(
  device: Device,
  make: (device: Device) => TrainCase | Promise<TrainCase>,
  options: TrainGradcheckOptions = {},
): Promise<void> {
  const { h = 1e-3, atol = 2e-3, rtol = 1e-2, perTensor = 6, training = false, what = "grad" } = options;
  const dut = await make(device);
  let grads: Float32Array[];
  try {
    grads = (await evaluate(dut, training, true)).grads;
  } finally {
    dut.dispose();
  }
  const ref = await make(CPU);
  try {
    const pick = rng(9);
    for (const [k, [name, t]] of ref.params.entries()) {
      const host = t.host() as Float32Array;
      const n = Math.min(perTensor, host.length);
      const at = n === host.length
        ? [...host.keys()]
        : Array.from({ length: n }, () => Math.floor(pick() * host.length));
      const numeric: number[] = [];
      for (const i of at) {
        const x0 = host[i];
        host[i] = x0 + h;
        const up = (await evaluate(ref, training, false)).value;
        host[i] = x0 - h;
        const down = (await evaluate(ref, training, false)).value;
        host[i] = x0;
        numeric.push((up - down) / (2 * h));
      }
      const analytic = at.map((i) => grads[k][i]);
      assertClose(analytic, numeric, { atol, rtol, what: `${what} d/d${name} [${device.kind}]` });
    }
  } finally {
    ref.dispose();
  }
}
