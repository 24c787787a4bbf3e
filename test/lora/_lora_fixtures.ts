/**
 * Shared helpers of the LoRA-on-a-model tests: fixture models, logits, weight snapshots.
 * @module
 */
import assert from "node:assert/strict";
import type { Device } from "../../src/device/device.ts";
import type { CausalLM } from "../../src/models/causal_lm.ts";
import { loadModel } from "../../src/models/load.ts";
import { fixture } from "../models/_fixtures.ts";

/** Loads the model fixture `name` on `device`. */
export function loadFixture(name: string, device: Device): Promise<CausalLM> {
  return loadModel(fixture(name).dir, { device });
}

/** The fixture's golden prompt. */
export function promptOf(name: string): Int32Array {
  return fixture(name).golden.inputIds;
}

/** `[T, V]` logits of `ids`, on the host. */
export async function logitsOf(model: CausalLM, ids: Int32Array): Promise<Float32Array> {
  using logits = model.forward(ids).logits;
  return await logits.toArray() as Float32Array;
}

/** Every parameter's values, by Ferry name. */
export async function snapshot(model: CausalLM): Promise<Map<string, Float32Array>> {
  const out = new Map<string, Float32Array>();
  for (const [name, t] of model.parameters()) out.set(name, await t.toArray() as Float32Array);
  return out;
}

/** max |a - b| / max |b|. */
export function relativeMaxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let diff = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    max = Math.max(max, Math.abs(b[i]));
  }
  return diff / max;
}

/** max |a - b|. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff = Math.max(diff, Math.abs(a[i] - b[i]));
  return diff;
}
