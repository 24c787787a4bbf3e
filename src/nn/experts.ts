/**
 * `SwiGLUExperts`: the `E` routed experts of a sparse MoE layer, each a SwiGLU MLP, with each
 * projection stacked into one `[E, ·, ·]` tensor (ledger category `"experts"`) so the routing
 * stays on the device: one `gatherMatmul` per projection serves every (token, slot) pair, with
 * no readback of the selected experts.
 *
 * LoRA adapters on single experts live in {@link SwiGLUExperts.adapters} (key `"down_proj.3"`:
 * projection and expert). Inference (`forward`) adds each adapter's delta to the (token, slot)
 * pairs routed to its expert without reading the routing back: the adapters of one projection are
 * stacked per rank into `A [E, r, in]` and `scaling · B [E, out, r]` (zeros for experts without one)
 * and run through the same `gatherMatmul`. Cost per adapted projection and forward: copying
 * `E · r · (in + out)` floats into the stacks plus two rank-`r` `gatherMatmul`s over every pair.
 * Training (`forwardTrain`) runs on an expert-sorted batch (see {@link groupedLinear}) and adds
 * `scaling · dropout(x_e) Aᵀ Bᵀ` on each adapted expert's rows.
 *
 * Legend: `T` tokens, `K` experts per token, `E` experts, `C` hidden, `F` expert width, `N` routed
 * (token, slot) pairs, `r` adapter rank.
 *
 * @example Two tokens, each routed to two of three experts
 * ```ts
 * import assert from "node:assert/strict";
 * import { createDevice } from "../device/create_device.ts";
 * import { Tensor } from "../tensor/tensor.ts";
 * import { SwiGLUExperts } from "./experts.ts";
 * const dev = await createDevice({ backend: "cpu" });
 * const [E, F, C] = [3, 8, 4];
 * const stack = (shape: number[]) => Tensor.fromArray(dev, new Float32Array(E * F * C).fill(0.1), shape, { category: "experts" });
 * using experts = new SwiGLUExperts(stack([E, F, C]), stack([E, F, C]), stack([E, C, F]));
 * const idx = Tensor.fromArray(dev, new Int32Array([0, 2, 1, 0]), [2, 2]); // [T=2, K=2]
 * const y = experts.forward(Tensor.zeros(dev, [2, C]), idx); // [T, C] -> [T, K, C]
 * assert.ok(y.shape.join() === "2,2,4");
 * ```
 * @module
 */
import { dropout } from "../autograd/dropout.ts";
import { add as addV, scale as scaleV, siluMul as siluMulV } from "../autograd/elementwise.ts";
import { groupedLinear } from "../autograd/grouped.ts";
import { addGroupedLora } from "../autograd/grouped_lora.ts";
import { linear as linearV } from "../autograd/matmul.ts";
import { concatRows as concatRowsV, sliceRows as sliceRowsV } from "../autograd/slice.ts";
import type { Var } from "../autograd/tape.ts";
import type { TrainContext } from "../autograd/train_context.ts";
import { add, scale, siluMul } from "../ops/elementwise.ts";
import { gatherMatmul } from "../ops/gather_matmul.ts";
import { concatRows } from "../ops/slice.ts";
import { Tensor } from "../tensor/tensor.ts";
import type { ExpertAdapterKey, LoraAdapter } from "./lora_adapter.ts";
import { matmul } from "../ops/matmul.ts";
import type { NamedParameters } from "./module.ts";
import type { Experts, ExpertsInput } from "./moe_types.ts";

type Proj = "gate_proj" | "up_proj" | "down_proj";

/** `E` stacked SwiGLU experts. Owns the three stacked tensors. */
export class SwiGLUExperts implements Experts {
  /** `[E, F, C]`: every expert's `gate_proj` (Mixtral `w1`). */
  readonly gateProj: Tensor;
  /** `[E, F, C]`: every expert's `up_proj` (Mixtral `w3`). */
  readonly upProj: Tensor;
  /** `[E, C, F]`: every expert's `down_proj` (Mixtral `w2`). */
  readonly downProj: Tensor;
  /**
   * LoRA adapters of single experts by `"<proj>.<expert>"` (e.g. `"down_proj.3"`), applied by both
   * `forward` and `forwardTrain`; `src/lora/` attaches them, the module does not own their tensors.
   */
  readonly adapters: Map<ExpertAdapterKey, LoraAdapter> = new Map();

  /**
   * @throws {TypeError} unless the tensors are `[E, F, C]`, `[E, F, C]`, `[E, C, F]`, all f32 or all
   *   f16 (16-bit experts serve inference only: the offload runtime's slots)
   */
  constructor(gateProj: Tensor, upProj: Tensor, downProj: Tensor) {
    const [E, F, C] = gateProj.shape;
    const dtype = gateProj.dtype === "f16" ? "f16" : "f32";
    const same = (t: Tensor, shape: number[]) =>
      t.dtype === dtype && t.rank === 3 && t.shape.every((d, i) => d === shape[i]);
    if (
      gateProj.rank !== 3 || !same(gateProj, [E, F, C]) || !same(upProj, [E, F, C]) ||
      !same(downProj, [E, C, F])
    ) {
      throw new TypeError(
        `Cannot create SwiGLUExperts: expected gate [E, F, C], up [E, F, C], down [E, C, F], all f32 or all f16: received ` +
          `${gateProj.dtype}[${gateProj.shape}], ${upProj.dtype}[${upProj.shape}], ${downProj.dtype}[${downProj.shape}]`,
      );
    }
    this.gateProj = gateProj;
    this.upProj = upProj;
    this.downProj = downProj;
  }

  /** Experts `E`. */
  get numExperts(): number {
    return this.gateProj.shape[0];
  }

  /** Expert width `F`. */
  get intermediate(): number {
    return this.gateProj.shape[1];
  }

  /** Hidden size `C`. */
  get hidden(): number {
    return this.gateProj.shape[2];
  }

  /**
   * The {@link Experts} contract: every token's routed experts, mixed by their weights.
   *
   * @returns `[T, C]` `Σ_k weights[t,k] · expert_{selected[t,k]}(x_t)`
   */
  forward(input: ExpertsInput): Tensor<"f32">;
  /**
   * Runs expert `idx[t, k]` on token `t` for every slot.
   *
   * @param x `[T, C]` f32
   * @param idx `[T, K]` i32 expert ids
   * @returns `[T, K, C]` f32, unweighted expert outputs
   */
  forward(x: Tensor, idx: Tensor): Tensor<"f32">;
  forward(a: Tensor | ExpertsInput, idx?: Tensor): Tensor<"f32"> {
    if (!("layer" in a)) return this.#unmixed(a, idx!);
    const { x, selected, weights } = a;
    const [T, K] = selected.shape;
    const C = this.hidden;
    using ys = this.#unmixed(x, selected); // [T, K, C]
    using w3 = weights.reshape([T, 1, K]); // [T, 1, K]
    using mixed = matmul(w3, ys); // [T, 1, K] x [T, K, C] -> [T, 1, C]
    return mixed.reshape([T, C]); // [T, C]
  }

  #unmixed(x: Tensor, idx: Tensor): Tensor<"f32"> {
    using g = this.#project("gate_proj", x, idx); // [T, C] -> [T, K, F]
    using u = this.#project("up_proj", x, idx); // [T, C] -> [T, K, F]
    using a = siluMul(g, u); // [T, K, F]
    return this.#project("down_proj", a, idx); // [T, K, F] -> [T, K, C]
  }

  /**
   * The training forward on an expert-sorted batch: rows `groups[0]` first go to expert 0, the next
   * `groups[1]` to expert 1, and so on (`SparseMoE.forwardTrain` sorts and unsorts). Stacked
   * weights and adapters enter through `ctx.v`; the stacked gradients are written expert by expert.
   *
   * @param x `[N, C]` expert-sorted inputs
   * @param groups `E` row counts, summing to `N`
   * @param ctx the step's {@link TrainContext}
   * @returns `[N, C]` unweighted expert outputs, same row order
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { createDevice } from "../device/create_device.ts";
   * import { sum, Tape, TrainContext } from "../autograd/mod.ts";
   * import { Tensor } from "../tensor/tensor.ts";
   * import { SwiGLUExperts } from "./experts.ts";
   * const dev = await createDevice({ backend: "cpu" });
   * const [E, F, C] = [3, 8, 4];
   * const stack = (shape: number[]) => Tensor.fromArray(dev, new Float32Array(E * F * C).fill(0.1), shape);
   * const experts = new SwiGLUExperts(stack([E, F, C]), stack([E, F, C]), stack([E, C, F]));
   * using tape = new Tape();
   * const ctx = new TrainContext(tape, new Set([experts.downProj]));
   * const x = ctx.v(Tensor.fromArray(dev, new Float32Array(3 * C).fill(1), [3, C])); // [N=3, C]
   * tape.backward(sum(experts.forwardTrain(x, [2, 0, 1], ctx))); // expert 1 gets no rows
   * const g = await ctx.grad(experts.downProj)!.toArray(); // [E, C, F]
   * assert.ok(g[0] > 0 && g[C * F] === 0 && g[2 * C * F] > 0);
   * ```
   */
  forwardTrain(x: Var, groups: readonly number[], ctx: TrainContext): Var {
    if (this.gateProj.dtype !== "f32") {
      throw new TypeError(
        "Cannot train through SwiGLUExperts: its weights are f16 (inference only); load them as f32",
      );
    }
    const g = this.#projectTrain("gate_proj", x, groups, ctx); // [N, C] -> [N, F]
    const u = this.#projectTrain("up_proj", x, groups, ctx); // [N, C] -> [N, F]
    return this.#projectTrain("down_proj", siluMulV(g, u), groups, ctx); // [N, F] -> [N, C]
  }

  #weight(proj: Proj): Tensor {
    return proj === "gate_proj" ? this.gateProj : proj === "up_proj" ? this.upProj : this.downProj;
  }

  /** The adapters of `proj` by expert, each checked against the expert's `[out, in]`. */
  #adaptersOf(proj: Proj): Map<number, LoraAdapter> {
    const out = new Map<number, LoraAdapter>();
    if (this.adapters.size === 0) return out;
    const [E, O, I] = this.#weight(proj).shape;
    for (const [key, ad] of this.adapters) {
      const [p, e] = key.split(".");
      if (p !== proj) continue;
      const j = Number(e);
      const r = ad.a.shape[0];
      const ok = Number.isInteger(j) && j >= 0 && j < E && ad.a.rank === 2 && ad.a.shape[1] === I &&
        ad.b.rank === 2 && ad.b.shape[0] === O && ad.b.shape[1] === r;
      if (!ok) {
        throw new TypeError(
          `Cannot apply expert adapter "${key}": expected an expert in 0..${
            E - 1
          }, a [r, ${I}] and b [${O}, r]: ` +
            `received a [${ad.a.shape}], b [${ad.b.shape}]`,
        );
      }
      out.set(j, ad);
    }
    return out;
  }

  /** Inference: `gatherMatmul` with the stacked weight, plus the stacked adapter deltas per rank. */
  #project(proj: Proj, x: Tensor, idx: Tensor): Tensor<"f32"> {
    let y = gatherMatmul(x, this.#weight(proj), idx); // [T, Kx, in] -> [T, K, out]
    const adapters = this.#adaptersOf(proj);
    const [E, O, I] = this.#weight(proj).shape;
    for (const r of new Set([...adapters.values()].map((ad) => ad.a.shape[0]))) {
      const aParts: Tensor[] = [];
      const bParts: Tensor[] = [];
      for (let e = 0; e < E; e++) {
        const ad = adapters.get(e);
        const has = ad !== undefined && ad.a.shape[0] === r;
        aParts.push(has ? ad.a.reshape([r, I]) : Tensor.zeros(x.device, [r, I])); // [r, in]
        bParts.push(has ? scale(ad.b, ad.scaling) : Tensor.zeros(x.device, [O, r])); // [out, r]
      }
      using aCat = concatRows(aParts); // [E·r, in]
      using bCat = concatRows(bParts); // [E·out, r]
      for (const t of [...aParts, ...bParts]) t.dispose();
      using aStack = aCat.reshape([E, r, I]); // [E, r, in]
      using bStack = bCat.reshape([E, O, r]); // [E, out, r]
      using xa = gatherMatmul(x, aStack, idx); // [T, Kx, in] -> [T, K, r]
      using d = gatherMatmul(xa, bStack, idx); // [T, K, r] -> [T, K, out]
      using prev = y;
      y = add(prev, d); // [T, K, out]
    }
    return y;
  }

  /** Training: `groupedLinear` over the stacked weight, plus each adapted expert's delta on its rows. */
  #projectTrain(proj: Proj, x: Var, groups: readonly number[], ctx: TrainContext): Var {
    const y = groupedLinear(x, ctx.v(this.#weight(proj)), groups); // [N, in] -> [N, out]
    const adapters = this.#adaptersOf(proj);
    if (adapters.size === 0) return y;
    const dropping = ctx.training && [...adapters.values()].some((ad) => ad.dropout > 0);
    if (!dropping) {
      // One tape node keeps z and the [n_e, r] products only (see addGroupedLora).
      const ads = Array.from({ length: this.numExperts }, (_, e) => {
        const ad = adapters.get(e);
        return ad && { a: ctx.v(ad.a), b: ctx.v(ad.b), scaling: ad.scaling };
      });
      return addGroupedLora(y, x, groups, ads); // [N, out]
    }
    const O = this.#weight(proj).shape[1];
    const parts: Var[] = [];
    let start = 0;
    groups.forEach((n, e) => {
      if (n === 0) return;
      const ad = adapters.get(e);
      if (!ad) {
        parts.push(ctx.v(ctx.tape.keep(Tensor.zeros(x.value.device, [n, O])))); // [n, out] no delta
      } else {
        const xe = sliceRowsV(x, start, n); // [N, in] -> [n, in]
        const xd = ctx.training && ad.dropout > 0 ? dropout(xe, ad.dropout, ctx.random) : xe;
        const xa = linearV(xd, ctx.v(ad.a)); // [n, in] x [r, in]ᵀ -> [n, r]
        parts.push(scaleV(linearV(xa, ctx.v(ad.b)), ad.scaling)); // [n, r] x [out, r]ᵀ -> [n, out]
      }
      start += n;
    });
    return addV(y, concatRowsV(parts)); // [N, out]
  }

  /** `gate_proj`, `up_proj`, `down_proj` (stacked, no `.weight` suffix). */
  parameters(): NamedParameters {
    return new Map([["gate_proj", this.gateProj], ["up_proj", this.upProj], ["down_proj", this.downProj]]);
  }

  dispose(): void {
    this.gateProj.dispose();
    this.upProj.dispose();
    this.downProj.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * `experts` as dense {@link SwiGLUExperts}, for code that reads or rewrites the stacked weights.
 *
 * @param what what the caller was doing, for the error message
 * @throws {TypeError} when the experts are another implementation (e.g. FloE's sparse experts)
 */
export function asDenseExperts(experts: Experts, what: string): SwiGLUExperts {
  if (experts instanceof SwiGLUExperts) return experts;
  throw new TypeError(
    `Cannot ${what}: it needs dense SwiGLUExperts, received ${experts.constructor.name}; ` +
      "run it on the uncompressed model",
  );
}
