/**
 * A tiny trainable language model for Trainer tests: an embedding table and an LM head
 * (`logits = E[ids] · Hᵀ`), trained on blocks of tokens that mostly follow `next = 3·prev + 1
 * (mod V)`, so the loss has something to learn.
 * @module
 */
import { crossEntropy, embedding, linear, scale } from "../../src/autograd/mod.ts";
import type { Device } from "../../src/device/device.ts";
import type { TrainTask } from "../../src/lora/train_task.ts";
import { mulberry32, randn } from "../../src/tensor/random.ts";
import { Tensor } from "../../src/tensor/tensor.ts";

/** Options of {@linkcode tinyLm}. */
export interface TinyLmOptions {
  vocab?: number;
  dim?: number;
  /** Weight init seed. */
  seed?: number;
  /** Make the loss NaN from this `loss` call on (counting training calls only). */
  nanFromCall?: number;
}

/** A tiny LM task and its weights. Dispose the weights with `dispose()`. */
export function tinyLm(device: Device, options: TinyLmOptions = {}) {
  const V = options.vocab ?? 16;
  const C = options.dim ?? 8;
  const seed = options.seed ?? 1;
  const emb = Tensor.fromArray(device, randn(V * C, seed, 0.5), [V, C], { category: "lora", label: "emb" }); // [V, C]
  const head = Tensor.fromArray(device, randn(V * C, seed + 1, 0.5), [V, C], {
    category: "lora",
    label: "head",
  }); // [V, C]
  let calls = 0;
  const task: TrainTask<Int32Array> = {
    parameters: () => new Map([["model.embed_tokens.weight", emb], ["lm_head.weight", head]]),
    loss(ctx, batch) {
      const T = batch[0].length - 1;
      const ids = new Int32Array(batch.length * T);
      const targets = new Int32Array(batch.length * T);
      batch.forEach((block, b) => {
        ids.set(block.subarray(0, T), b * T);
        targets.set(block.subarray(1), b * T);
      });
      const idsT = ctx.tape.keep(Tensor.fromArray(device, ids)); // [B·T]
      const tgT = ctx.tape.keep(Tensor.fromArray(device, targets)); // [B·T]
      const h = embedding(ctx.v(emb), idsT); // [B·T] -> [B·T, C]
      const logits = linear(h, ctx.v(head)); // [B·T, C] x [V, C]ᵀ -> [B·T, V]
      let loss = crossEntropy(logits, tgT); // []
      if (ctx.training && options.nanFromCall !== undefined && calls++ >= options.nanFromCall) {
        loss = scale(loss, NaN);
      }
      return { loss, tokens: ids.length };
    },
  };
  return {
    task,
    emb,
    head,
    dispose() {
      emb.dispose();
      head.dispose();
    },
  };
}

/** `n` blocks of `len` tokens: `next = 3·prev + 1 (mod V)` with probability 0.8, else random. */
export function tinyBlocks(n: number, len: number, seed: number, vocab = 16): Int32Array[] {
  const u = mulberry32(seed);
  return Array.from({ length: n }, () => {
    const block = new Int32Array(len);
    block[0] = Math.floor(u() * vocab);
    for (let i = 1; i < len; i++) {
      block[i] = u() < 0.8 ? (3 * block[i - 1] + 1) % vocab : Math.floor(u() * vocab);
    }
    return block;
  });
}
