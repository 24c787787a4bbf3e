/**
 * Embedding lookup: gathers rows of a `[V, C]` table by token id and widens them to f32, so an
 * f16 or bf16 checkpoint table can stay 16-bit on the device. Kernel: `kernels/embedding.wgsl`.
 *
 * Shapes: `V` vocabulary, `C` channels, `[...]` the ids' shape (`N` ids in all).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { embedding } from "./embedding.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const table = Tensor.fromArray(dev, [0, 1, 10, 11, 20, 21], [3, 2]); // [V, C]
 * const ids = Tensor.fromArray(dev, new Int32Array([2, 0, 2]), [3]); // [N]
 * const y = embedding(table, ids); // [3] -> [3, 2]
 * assert.ok(y.shape[1] === 2 && (await y.toArray())[5] === 21);
 * ```
 * @module
 */
import code from "../../kernels/embedding.wgsl" with { type: "text" };
import { Tensor } from "../tensor/tensor.ts";
import { expectDType, gpuOf, grid1d, params, sameDevice } from "./_kernel.ts";
import { bf16ToF32Bits, f16ToF32Bits, type FloatDType } from "./cast.ts";

const WG = 64;
const PER_THREAD = 4;
const KIND: Readonly<Record<FloatDType, number>> = { f32: 0, f16: 1, bf16: 2 };

/**
 * Reference gather: `y[i, :] = table[ids[i], :]` as f32.
 *
 * @param table `[V, C]`: `Float32Array` for f32, raw bits in a `Uint16Array` for f16 / bf16.
 * @param dtype The table's dtype.
 * @param ids `[N]` token ids.
 * @param y `[N, C]` output.
 * @param c Row length `C`.
 * @throws {RangeError} on an id outside `[0, V)`.
 */
export function embeddingRef(
  table: Float32Array | Uint16Array,
  dtype: FloatDType,
  ids: Int32Array | Uint32Array,
  y: Float32Array,
  c: number,
): void {
  const v = c === 0 ? 0 : table.length / c;
  const bits = new Uint32Array(y.buffer, y.byteOffset, y.length);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!(id >= 0 && id < v)) {
      throw new RangeError(
        `Cannot run embedding: id ${id} at index ${i} is outside the table's [0, ${v}) rows`,
      );
    }
    const src = id * c;
    if (dtype === "f32") y.set((table as Float32Array).subarray(src, src + c), i * c);
    else {
      const widen = dtype === "f16" ? f16ToF32Bits : bf16ToF32Bits;
      for (let j = 0; j < c; j++) bits[i * c + j] = widen(table[src + j]);
    }
  }
}

/**
 * Looks up rows of `table` by id.
 *
 * On the CPU backend an out-of-range id throws; on WebGPU (where a kernel cannot throw) it yields
 * a row of zeros. Validate ids on the host when they come from untrusted input.
 *
 * @param table `[V, C]` f32, f16 or bf16.
 * @param ids `[...]` i32 or u32 token ids (any rank, `[]` included).
 * @returns `[..., C]` f32.
 * @throws {TypeError} on wrong dtypes or a table that is not 2-D.
 * @throws {RangeError} on the CPU backend, for an id outside `[0, V)`.
 */
export function embedding(table: Tensor, ids: Tensor): Tensor<"f32"> {
  const device = sameDevice("embedding", table, ids);
  expectDType("embedding", "table", table, "f32", "f16", "bf16");
  expectDType("embedding", "ids", ids, "i32", "u32");
  if (table.rank !== 2) {
    throw new TypeError(`Cannot run embedding: table must have shape [V, C]: received [${table.shape}]`);
  }
  const [v, c] = table.shape;
  const y = Tensor.empty(device, [...ids.shape, c]); // [...] -> [..., C]
  if (y.size === 0) return y;
  const dtype = table.dtype as FloatDType;
  if (device.kind === "cpu") {
    embeddingRef(table.host() as Float32Array | Uint16Array, dtype, ids.host() as Int32Array, y.host(), c);
  } else {
    gpuOf(device).dispatch({ name: "embedding", code }, {
      bindings: [table.storage, ids.storage, y.storage],
      params: params(["u32", ids.size], ["u32", c], ["u32", v], ["u32", KIND[dtype]]),
      workgroups: grid1d(Math.ceil(y.size / (WG * PER_THREAD))),
      constants: { WG },
    });
  }
  return y;
}
