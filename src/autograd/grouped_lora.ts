/**
 * LoRA deltas of stacked experts as ONE tape node: on an expert-sorted batch (`groups[e]` rows
 * per expert, see {@link groupedLinear}), `z = y + scaling_e · (x_e A_eᵀ) B_eᵀ` on the rows of
 * every adapted expert e, `z = y` elsewhere.
 *
 * Recorded op by op, each adapted expert would keep its input slice, two `[n_e, out]` products, a
 * zero block per other expert, and the `[N, out]` concatenation and sum; as one node only `z`
 * and the `[n_e, r]` products `x_e A_eᵀ` stay. Values and gradients are those of the unfused ops
 * (the same ops in the same order; `x`'s gradient arrives before the base product's, as unfused).
 *
 * Backward, per adapted expert with `ds = scaling · dz_e`, `g = ds · B`:
 * `dx_e = g · A`, `dA = gᵀ · x_e`, `dB = dsᵀ · (x_e Aᵀ)`; `dy = dz`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { addGroupedLora, sum, Tape } from "./mod.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * using tape = new Tape();
 * const x = tape.constant(Tensor.fromArray(dev, [1, 2, 3, 4, 5, 6], [3, 2])); // [N=3, in=2]
 * const y = tape.constant(Tensor.zeros(dev, [3, 2])); // [N, out=2], the base product
 * const a = tape.param(Tensor.fromArray(dev, [1, 1], [1, 2])); // [r=1, in]
 * const b = tape.param(Tensor.zeros(dev, [2, 1])); // [out, r]
 * // expert 0 has 1 row and no adapter; expert 1 has rows 1..2 and the adapter
 * const z = addGroupedLora(y, x, [1, 2], [undefined, { a, b, scaling: 1 }]);
 * tape.backward(sum(z));
 * assert.equal((await b.grad!.toArray()).join(), "18,18"); // (3+4) + (5+6) per output
 * ```
 * @module
 */
import { add as addOp, scale as scaleOp } from "../ops/elementwise.ts";
import { matmul as matmulOp } from "../ops/matmul.ts";
import { concatRows, sliceRows } from "../ops/slice.ts";
import { Tensor } from "../tensor/tensor.ts";
import { weightGrad } from "./_products.ts";
import type { Var } from "./tape.ts";

/** One expert's adapter: `a` `[r, in]`, `b` `[out, r]`. */
export interface GroupedLoraAdapter {
  a: Var;
  b: Var;
  scaling: number;
}

/**
 * `y` plus each adapted expert's delta on its rows; see the module doc.
 *
 * @param y `[N, out]` the base product (e.g. `groupedLinear(x, W, groups)`)
 * @param x `[N, in]` expert-sorted inputs
 * @param groups rows per expert, in expert order (sums to N)
 * @param adapters per expert (index = expert), `undefined` where an expert has none
 */
export function addGroupedLora(
  y: Var,
  x: Var,
  groups: readonly number[],
  adapters: readonly (GroupedLoraAdapter | undefined)[],
): Var {
  const tape = y.tape;
  const [N, IN] = x.shape;
  const OUT = y.shape[y.shape.length - 1];
  if (groups.reduce((s, n) => s + n, 0) !== N) {
    throw new RangeError(`Cannot run addGroupedLora: groups [${groups}] do not sum to the ${N} rows of x`);
  }
  const device = x.value.device;
  const spans: { start: number; n: number; ad: GroupedLoraAdapter | undefined; xa?: Tensor }[] = [];
  const parts: Tensor[] = [];
  let start = 0;
  groups.forEach((n, e) => {
    if (n === 0) return;
    const ad = adapters[e];
    if (!ad) {
      parts.push(Tensor.zeros(device, [n, OUT])); // [n, out] no delta
      spans.push({ start, n, ad });
    } else {
      using xe = sliceRows(x.value, start, n); // [N, in] -> [n, in]
      const xa = tape.keep(matmulOp(xe, ad.a.value, { transB: true })); // [n, in] x [r, in]ᵀ -> [n, r]
      using xab = matmulOp(xa, ad.b.value, { transB: true }); // [n, r] x [out, r]ᵀ -> [n, out]
      parts.push(scaleOp(xab, ad.scaling)); // [n, out]
      spans.push({ start, n, ad, xa });
    }
    start += n;
  });
  const z = (() => {
    using delta = concatRows(parts); // [N, out]
    for (const p of parts) p.dispose();
    return addOp(y.value, delta); // [N, out]
  })();
  const adapted = spans.filter((s) => s.ad);
  const inputs: Var[] = [x, ...adapted.flatMap((s) => [s.ad!.a, s.ad!.b]), y];
  return tape.record("groupedLora", inputs, z, (dz, needs) => {
    const grads: (Tensor | null)[] = inputs.map(() => null);
    const dxParts: Tensor[] = [];
    let k = 0;
    for (const s of spans) {
      if (!s.ad) {
        if (needs[0]) dxParts.push(Tensor.zeros(device, [s.n, IN])); // [n, in]
        continue;
      }
      const [ia, ib] = [1 + 2 * k, 2 + 2 * k];
      k++;
      using dze = sliceRows(dz, s.start, s.n); // [n, out]
      using ds = scaleOp(dze, s.ad.scaling); // [n, out]
      if (needs[0] || needs[ia]) {
        using g = matmulOp(ds, s.ad.b.value); // [n, out] x [out, r] -> [n, r]
        if (needs[0]) dxParts.push(matmulOp(g, s.ad.a.value)); // [n, r] x [r, in] -> [n, in]
        if (needs[ia]) {
          using xe = sliceRows(x.value, s.start, s.n); // [n, in]
          grads[ia] = weightGrad(g, xe); // [r, in]
        }
      }
      if (needs[ib]) grads[ib] = weightGrad(ds, s.xa!); // [out, r]
    }
    if (needs[0]) {
      grads[0] = concatRows(dxParts); // [N, in]
      for (const p of dxParts) p.dispose();
    }
    if (needs[inputs.length - 1]) grads[inputs.length - 1] = dz.reshape(dz.shape); // [N, out]
    return grads;
  });
}
