/**
 * FNV-1a (32-bit) over bytes: the short, stable hash behind Brown's document splits, FloE's model
 * fingerprints and LoRAM's held-out checksums. Pass the previous result as `h` to continue a hash
 * over several byte runs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fnv1a } from "./fnv.ts";
 * assert.equal(fnv1a(new TextEncoder().encode("a")), 0xe40c292c); // the published test vector
 * assert.equal(fnv1a(Uint8Array.of(2), fnv1a(Uint8Array.of(1))), fnv1a(Uint8Array.of(1, 2)));
 * ```
 * @module
 */

/** The FNV-1a hash of `bytes`, continuing from `h` (default: the offset basis), as an unsigned 32-bit int. */
export function fnv1a(bytes: Uint8Array, h = 0x811c9dc5): number {
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

/** The bytes of a typed array (a view, no copy). */
export function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
