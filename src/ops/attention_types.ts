/**
 * The types attention's routes share (`attention.ts`, `attention_matmul.ts`,
 * `attention_backward.ts`), in their own module so those files import them without a cycle.
 * `attention.ts` re-exports them.
 * @module
 */

/** Options for `attention`. */
export interface AttentionOptions {
  /** Absolute position of the first query token, i.e. cache rows already filled before this step. */
  pos: number;
  /** Logit scale; `1 / sqrt(D)` when left out. */
  scale?: number;
}

/** Problem sizes for `attentionRef`. */
export interface AttentionDims {
  T: number;
  Hq: number;
  Hkv: number;
  D: number;
  pos: number;
  scale: number;
}
