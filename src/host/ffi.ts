/**
 * Foreign functions: open a shared library and call its C symbols from Deno (`Deno.dlopen`, needs
 * `--allow-ffi`) or Bun (`bun:ffi`). The only module that names either runtime's FFI; the device
 * layer's BLAS binding is written against {@link NativeLibrary} alone.
 *
 * Symbols are declared in a small neutral vocabulary: `i32`, `f32`, `buffer` (a typed array,
 * passed as a pointer to its first element, `byteOffset` included) and, for results only,
 * `cstring` (a NUL-terminated string returned as a JS string).
 *
 * @example Calling libc's `abs` (skipped quietly where FFI is not permitted)
 * ```ts
 * import assert from "node:assert/strict";
 * import { openLibrary } from "./ffi.ts";
 * const libc = await openLibrary(["libc.so.6"], { abs: { args: ["i32"], returns: "i32" } }).catch(() => null);
 * if (libc) assert.ok(libc.symbols.abs(-7) === 7);
 * ```
 * @module
 */

/** An argument type. */
export type FfiArg = "i32" | "f32" | "buffer";
/** A result type. */
export type FfiResult = "void" | "i32" | "cstring";
/** One C function's signature. */
export interface FfiSymbol {
  args: readonly FfiArg[];
  returns: FfiResult;
  /** Leave the symbol out (instead of failing) when the library lacks it. */
  optional?: boolean;
}

type ArgValue<T extends FfiArg> = T extends "buffer" ? ArrayBufferView : number;
type ResultValue<T extends FfiResult> = T extends "cstring" ? string : T extends "i32" ? number : void;
type Args<A extends readonly unknown[]> = A extends readonly [infer H, ...infer R]
  ? [H extends FfiArg ? ArgValue<H> : never, ...Args<R>]
  : [];
type Fn<S extends FfiSymbol> = (...args: Args<S["args"]>) => ResultValue<S["returns"]>;

/** An opened library: its callable symbols (optional ones may be absent) and where it was found. */
export interface NativeLibrary<T extends Record<string, FfiSymbol>> {
  readonly path: string;
  readonly symbols: { [K in keyof T]: T[K]["optional"] extends true ? Fn<T[K]> | undefined : Fn<T[K]> };
  close(): void;
}

/** Which runtime's FFI is available here, if any. */
export function ffiRuntime(): "deno" | "bun" | null {
  const g = globalThis as { Deno?: { dlopen?: unknown }; Bun?: unknown };
  if (g.Bun !== undefined) return "bun";
  if (typeof g.Deno?.dlopen === "function") return "deno";
  return null;
}

/**
 * Opens the first of `candidates` that loads and binds `symbols`. Throws an `Error` that lists
 * each candidate and why it failed (not found, FFI not permitted, a symbol missing).
 */
export async function openLibrary<const T extends Record<string, FfiSymbol>>(
  candidates: readonly string[],
  symbols: T,
): Promise<NativeLibrary<T>> {
  const runtime = ffiRuntime();
  if (!runtime) throw new Error("Cannot open a native library: this runtime has no FFI (Deno or Bun needed)");
  const failures: string[] = [];
  for (const path of candidates) {
    try {
      return runtime === "deno" ? openDeno(path, symbols) : await openBun(path, symbols);
    } catch (e) {
      const msg = (e as Error).message.split("\n")[0];
      if (/Requires ffi access|NotCapable|PermissionDenied/i.test(`${(e as Error).name} ${msg}`)) {
        throw new Error(`Cannot open ${path}: FFI is not permitted; run Deno with --allow-ffi`);
      }
      failures.push(`${path}: ${msg}`);
    }
  }
  throw new Error(`Cannot open a native library: ${failures.join("; ") || "no candidate paths"}`);
}

// ---------------------------------------------------------------------------------------
// Deno

function openDeno<T extends Record<string, FfiSymbol>>(path: string, symbols: T): NativeLibrary<T> {
  const D = (globalThis as unknown as { Deno: DenoFfi }).Deno;
  const decl: Record<string, { parameters: string[]; result: string; optional?: boolean }> = {};
  for (const [name, s] of Object.entries(symbols)) {
    decl[name] = {
      parameters: s.args.map((a) => a),
      result: s.returns === "cstring" ? "pointer" : s.returns,
      optional: s.optional,
    };
  }
  const lib = D.dlopen(path, decl);
  const bound: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(symbols)) {
    const f = lib.symbols[name];
    if (!f) continue;
    bound[name] = s.returns === "cstring"
      ? (...a: unknown[]) => {
        const p = f(...a);
        return p === null ? "" : D.UnsafePointerView.getCString(p);
      }
      : f;
  }
  return { path, symbols: bound as NativeLibrary<T>["symbols"], close: () => lib.close() };
}

interface DenoFfi {
  dlopen(
    path: string,
    symbols: Record<string, unknown>,
  ): { symbols: Record<string, ((...a: unknown[]) => unknown) | null>; close(): void };
  UnsafePointerView: { getCString(p: unknown): string };
}

// ---------------------------------------------------------------------------------------
// Bun

async function openBun<T extends Record<string, FfiSymbol>>(
  path: string,
  symbols: T,
): Promise<NativeLibrary<T>> {
  const specifier = "bun:ffi"; // a variable, so Deno's type-checker does not resolve it
  const ffi = await import(specifier) as BunFfi;
  const decl: Record<string, { args: string[]; returns: string }> = {};
  for (const [name, s] of Object.entries(symbols)) {
    if (s.optional && !hasBunSymbol(ffi, path, name)) continue;
    decl[name] = { args: s.args.map((a) => (a === "buffer" ? "ptr" : a)), returns: s.returns };
  }
  const lib = ffi.dlopen(path, decl);
  const bound: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(symbols)) {
    const f = lib.symbols[name];
    if (!f) continue;
    bound[name] = s.returns === "cstring" ? (...a: unknown[]) => String(f(...a) ?? "") : f;
  }
  return { path, symbols: bound as NativeLibrary<T>["symbols"], close: () => lib.close() };
}

function hasBunSymbol(ffi: BunFfi, path: string, name: string): boolean {
  try {
    ffi.dlopen(path, { [name]: { args: [], returns: "void" } }).close();
    return true;
  } catch {
    return false;
  }
}

interface BunFfi {
  dlopen(
    path: string,
    symbols: Record<string, unknown>,
  ): { symbols: Record<string, (...a: unknown[]) => unknown>; close(): void };
}
