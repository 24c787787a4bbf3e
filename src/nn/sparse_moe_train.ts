/**
 * The training forward of a {@link SparseMoE} block, with gradients through the routing weights
 * (what `SparseMoE.forwardTrain` runs; HF `*SparseMoeBlock.forward` in training mode):
 *
 * ```
 * logits = x Wrᵀ                 [T, E]   differentiable (router weight, x)
 * p      = softmax(logits)       [T, E]   f32; also feeds the load-balancing loss
 * sel    = topk(...)             [T, K]   read back to the host (indices are not differentiable)
 * w      = p[t, sel]             [T, K]   gathered differentiably; with normTopkProb
 *                                         softmax(logits[t, sel]) (= the renormalised top-k p)
 * x_s    = x[token of pair]      [N, C]   the N = T·K (token, slot) pairs sorted by expert
 * y_s    = experts(x_s, groups)  [N, C]   each group through its expert (groupedLinear)
 * y      = Σ_k w[t,k] · y[t,k]   [T, C]   pairs unsorted by a gather, mixed by a batched matmul
 *        (+ σ(x gᵀ) · shared(x)  for Qwen2-MoE)
 * ```
 *
 * The top-k is taken exactly as in inference (over the logits when renormalising, else over the
 * probabilities), so the same experts are picked and the logits agree with `SparseMoE.forward`.
 * The readback of `sel` is one sync point per MoE layer (on WebGPU: one submit).
 *
 * @module
 */
import { add as addV, sigmoid as sigmoidV } from "../autograd/elementwise.ts";
import { gatherRows as gatherRowsV } from "../autograd/gather.ts";
import { matmul as matmulV } from "../autograd/matmul.ts";
import { reshape } from "../autograd/reshape.ts";
import type { Var } from "../autograd/tape.ts";
import type { TrainContext } from "../autograd/train_context.ts";
import { softmax as softmaxV } from "../autograd/transformer.ts";
import { topk } from "../ops/topk.ts";
import { Tensor } from "../tensor/tensor.ts";
import type { LinearLike } from "./linear_like.ts";
import type { Experts, MoeTrainOutput } from "./moe_types.ts";
import type { SwiGLU } from "./swiglu.ts";

/** The parts of a MoE block the training forward reads (`SparseMoE` has them). */
export interface MoeBlockParts {
  readonly config: { readonly topK: number; readonly normTopkProb: boolean };
  readonly numExperts: number;
  readonly router: LinearLike;
  readonly experts: Experts;
  readonly sharedExpert: SwiGLU | undefined;
  readonly sharedExpertGate: LinearLike | undefined;
}

/** Runs `moe` on `x` on the tape. See the module doc. `[T, C] -> [T, C]` */
export async function sparseMoeForwardTrain(
  moe: MoeBlockParts,
  x: Var,
  ctx: TrainContext,
): Promise<MoeTrainOutput> {
  const { topK: K, normTopkProb } = moe.config;
  const E = moe.numExperts;
  const [T, C] = x.shape;
  const dev = x.value.device;
  const keep = <D extends Tensor>(t: D) => ctx.tape.keep(t);

  const routerLogits = moe.router.forwardTrain(x, ctx); // [T, C] -> [T, E]
  const probs = softmaxV(routerLogits); // [T, E]
  const top = topk(normTopkProb ? routerLogits.value : probs.value, K); // [T, K], [T, K]
  top.values.dispose();
  const selected = await top.indices.toArray() as Int32Array; // [T·K]
  top.indices.dispose();

  // Routing weights, differentiable: pick p (or the logits) at (t, sel[t, k]) from a [T·E, 1] view.
  const flat = keep(Tensor.fromArray(dev, selected.map((e, i) => Math.floor(i / K) * E + e))); // [T·K]
  const source = normTopkProb ? routerLogits : probs; // [T, E]
  const picked = reshape(gatherRowsV(reshape(source, [T * E, 1]), flat), [T, K]); // [T·E, 1] -> [T, K]
  const weights = normTopkProb ? softmaxV(picked) : picked; // [T, K]

  // Sort the (token, slot) pairs by expert (stable: by token, then slot), run, unsort.
  const groups = new Array<number>(E).fill(0);
  for (const e of selected) groups[e]++;
  const next = new Int32Array(E); // first sorted position of each expert
  for (let e = 1; e < E; e++) next[e] = next[e - 1] + groups[e - 1];
  const token = new Int32Array(T * K); // sorted position -> token
  const back = new Int32Array(T * K); // pair t·K + k -> sorted position
  selected.forEach((e, i) => {
    const j = next[e]++;
    token[j] = Math.floor(i / K);
    back[i] = j;
  });
  const xs = gatherRowsV(x, keep(Tensor.fromArray(dev, token))); // [T, C] -> [N, C]
  if (!moe.experts.forwardTrain) {
    throw new TypeError(
      `Cannot train through a MoE block whose experts (${moe.experts.constructor.name}) have no training ` +
        "forward; train on the dense model",
    );
  }
  const ys = moe.experts.forwardTrain(xs, groups, ctx); // [N, C]
  const yk = reshape(gatherRowsV(ys, keep(Tensor.fromArray(dev, back))), [T, K, C]); // [N, C] -> [T, K, C]
  const mixed = matmulV(reshape(weights, [T, 1, K]), yk); // [T, 1, K] x [T, K, C] -> [T, 1, C]
  let y = reshape(mixed, [T, C]); // [T, C]

  if (moe.sharedExpert && moe.sharedExpertGate) {
    const s = moe.sharedExpert.forwardTrain(x, ctx); // [T, C]
    const g = sigmoidV(moe.sharedExpertGate.forwardTrain(x, ctx)); // [T, C] -> [T, 1]
    const gs = matmulV(reshape(g, [T, 1, 1]), reshape(s, [T, 1, C])); // [T, 1, 1] x [T, 1, C] -> [T, 1, C]
    y = addV(y, reshape(gs, [T, C])); // [T, C]
  }
  return { y, routerLogits, probs, selected };
}
