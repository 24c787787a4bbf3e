/**
 * One MoE layer under a whole-expert policy (`resident`, `ondemand`, `cached`): route, read the
 * routing back (with the next layer's predicted experts in the same readback when the cache
 * prefetches), load the needed experts group by group, and compute each group from its slots.
 * Between two groups of one layer it waits for the device, since the next group's uploads may
 * overwrite slots the previous group's compute reads.
 * @module
 */
import { add } from "../ops/elementwise.ts";
import { concatRows } from "../ops/slice.ts";
import { topk } from "../ops/topk.ts";
import { Tensor } from "../tensor/tensor.ts";
import { CachedPolicy } from "./policies/cached.ts";
import type { MoeStep, WholeExpertPolicy } from "./policy.ts";

/** `[T, C]`: the routed experts' output of layer `s.layer` under `policy`. */
export async function wholeExpertStep(policy: WholeExpertPolicy, s: MoeStep): Promise<Tensor<"f32">> {
  const { layer: i, moe, x: n2 } = s;
  const [T] = n2.shape;
  const K = moe.config.topK;
  const r = moe.route(n2); // [T, E], [T, K], [T, K]
  using _l = r.routerLogits;
  using selected = r.selected;
  using weights = r.weights;
  const cached = policy instanceof CachedPolicy && policy.prefetchNext ? policy : undefined;
  const nextMoe = s.next?.moe;
  let predicted: Int32Array | undefined;
  let sel: Int32Array;
  if (cached && nextMoe) {
    using pl = cached.predictor?.predict(i + 1, n2) ?? nextMoe.router.forward(n2); // [T, C] -> [T, E]: layer i+1 predicted on layer i's input
    const top = topk(pl, K); // [T, K]
    top.values.dispose();
    using pi = top.indices;
    using both = concatRows([selected, pi]); // [2T, K]: one readback for routing and prediction
    const host = await s.clock.read(both) as Int32Array;
    sel = host.subarray(0, T * K);
    predicted = host.subarray(T * K);
  } else {
    sel = await s.clock.read(selected) as Int32Array;
  }
  const needed = [...new Set(sel)].sort((a, b) => a - b);
  const groups = policy.groups(i, needed);
  let y: Tensor<"f32"> | undefined;
  for (const [gi, group] of groups.entries()) {
    if (gi > 0) await s.clock.flush(); // the previous group's compute reads slots this one may overwrite
    const loaded = policy.load(i, group);
    s.count(group.length, loaded.hits);
    if (predicted && cached && gi === groups.length - 1) {
      const pinned = new Set(group.map((e) => `${i}.${e}`));
      cached.prefetch(i + 1, [...new Set(predicted)], pinned);
    }
    const slotIdx = Int32Array.from(sel, (e) => loaded.slotOf.get(e) ?? 0); // [T·K]
    const mask = groups.length === 1 ? undefined : Float32Array.from(sel, (e) => group.includes(e) ? 1 : 0);
    const yg = loaded.slots.forward(n2, slotIdx, weights, mask); // [T, C]
    if (y === undefined) y = yg;
    else {
      using prev = y;
      using _g = yg;
      y = add(prev, yg); // [T, C]
    }
  }
  return y ?? Tensor.zeros(n2.device, [T, n2.shape[1]]);
}
