/**
 * Gradient of a suffix broadcast (the `b` operand of `add` / `mul` / `siluMul`): sums a gradient
 * shaped like `a` down to `b`'s shape. Private to `src/autograd/`.
 * @module
 */
import { sum, sumAll } from "../ops/reduce.ts";
import { transpose2d } from "../ops/transpose.ts";
import type { Shape, Tensor } from "../tensor/tensor.ts";

function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Σ of `g` over the leading copies that broadcasting made of a `shape`-d operand.
 *
 * @param g `[..., *shape]` (or any shape when `shape` holds one element).
 * @param shape The broadcast operand's shape.
 * @returns A new tensor of `shape` (`g` itself is never returned, nor disposed).
 */
export function sumToShape(g: Tensor, shape: Shape): Tensor {
  const n = shape.reduce((a, d) => a * d, 1);
  if (sameShape(g.shape, shape)) return g.reshape(shape);
  if (n === 1) {
    using s = sumAll(g); // [...] -> []
    return s.reshape(shape);
  }
  // [R, n] -> [n, R] -> [n]: a row sum of the transpose is the column sum.
  using rows = g.reshape([g.size / n, n]);
  using cols = transpose2d(rows);
  using s = sum(cols);
  return s.reshape(shape);
}
