/**
 * Ferry's layer order (DESIGN.md, "Layers") as data, and the import graph of src/ that
 * `layers_test.ts` checks against it.
 *
 * ```
 * device → tensor → ops (+ kernels/*.wgsl) → autograd → nn → models
 *                                                       ↘ moe · predictors · compressors · lora
 *                                                         ↘ floe · loram
 * metrics · plot · data · io · host (and errors.ts, config.ts) are leaves any layer may call;
 * optim sits beside autograd; cli and mod only consume.
 * ```
 *
 * A unit is a top-level folder of src/ or a top-level file without `.ts`; `kernels` is the WGSL
 * folder beside src/, part of the ops layer. A unit may import units of its own rank or lower:
 * leaves are rank 0, so they import only each other. Units of one rank (autograd and optim, the
 * method building blocks, the two pipelines, the leaves) may import each other, as long as no
 * cycle between folders forms.
 * @module
 */

/** Rank of each unit: an import may not go to a higher rank. Add a new folder here. */
export const LAYERS: Readonly<Record<string, number>> = {
  // Leaves: any layer may import them; they import only each other.
  metrics: 0,
  plot: 0,
  data: 0,
  io: 0,
  host: 0,
  errors: 0,
  config: 0,
  device: 1,
  tensor: 2,
  ops: 3,
  kernels: 3, // the WGSL files of ops/
  autograd: 4,
  optim: 4, // beside autograd
  nn: 5,
  models: 6,
  moe: 7, // the offload runtime; floe/ builds its host store on moe/'s HostExperts
  predictors: 7,
  compressors: 7,
  lora: 7,
  floe: 8,
  loram: 8,
  // Consumers only: nothing in src/ below them imports them.
  cli: 9,
  mod: 9,
};

/**
 * File cycles inside one folder that are known and pending; each entry names the files of one
 * cycle, and the layer test fails once a listed cycle is gone so that the entry is dropped.
 */
export const PENDING_FILE_CYCLES: readonly (readonly string[])[] = [];

/** One relative import of a source file: who imports what (both paths from the repository root). */
export interface ImportEdge {
  from: string;
  to: string;
}

// `import`/`export` statements at the start of a line (doc examples sit behind ` * ` and are not
// matched): optional `type`, a default name, a `{ ... }` list (may span lines) or `* as name`.
const STATIC =
  /^(?:import|export)\s+(?:type\s+)?(?:[\w$]+\s*,\s*)?(?:\{[^}]*\}|\*(?:\s+as\s+[\w$]+)?|[\w$]+)\s+from\s*["']([^"']+)["']/gm;
const SIDE_EFFECT = /^import\s*["']([^"']+)["']/gm;
const DYNAMIC = /^(?!\s*(?:\*|\/\/)).*\bimport\(\s*["']([^"']+)["']\s*\)/gm;

/** `a/b/../c` → `a/c` (paths with `/`, relative to the repository root). */
function normalise(path: string): string {
  const out: string[] = [];
  for (const part of path.split("/")) {
    if (part === "..") out.pop();
    else if (part !== "." && part !== "") out.push(part);
  }
  return out.join("/");
}

/** The relative imports (`./`, `../`) of the file at `path` with source `text`. */
export function importsOf(path: string, text: string): ImportEdge[] {
  const dir = path.split("/").slice(0, -1).join("/");
  const specs = [...text.matchAll(STATIC), ...text.matchAll(SIDE_EFFECT), ...text.matchAll(DYNAMIC)]
    .map((m) => m[1]);
  return specs.filter((s) => s.startsWith("./") || s.startsWith("../"))
    .map((s) => ({ from: path, to: normalise(`${dir}/${s}`) }));
}

/** The unit of a path: `src/ops/matmul.ts` → `ops`, `src/errors.ts` → `errors`, `kernels/x.wgsl` → `kernels`. */
export function unitOf(path: string): string {
  const parts = path.split("/");
  if (parts[0] !== "src") return parts[0];
  return parts[1].replace(/\.ts$/, "");
}

/** The imports that go up the layer table, or touch a unit it does not know, as readable lines. */
export function layerViolations(edges: readonly ImportEdge[]): string[] {
  const out: string[] = [];
  for (const { from, to } of edges) {
    const a = unitOf(from);
    const b = unitOf(to);
    if (a === b) continue;
    for (const unit of [a, b]) {
      if (!(unit in LAYERS)) out.push(`${from} → ${to}: "${unit}" is not in LAYERS (test/_layers.ts)`);
    }
    if (a in LAYERS && b in LAYERS && LAYERS[b] > LAYERS[a]) {
      out.push(
        `${from} → ${to}: ${a} (layer ${LAYERS[a]}) imports ${b} (layer ${LAYERS[b]}), up the layer order`,
      );
    }
  }
  return out;
}

/**
 * Imports of another folder's private module (`_name.ts`, e.g. `ops/_kernel.ts`: code outside
 * ops/ uses its public kernel API, `ops/kernel.ts`), as readable lines.
 */
export function privateImports(edges: readonly ImportEdge[]): string[] {
  return edges.filter(({ from, to }) => unitOf(from) !== unitOf(to) && /(^|\/)_[^/]*$/.test(to))
    .map(({ from, to }) => `${from} → ${to}: ${to} is private to ${unitOf(to)}/`);
}

/** The strongly connected components with more than one node of a directed graph (Tarjan). */
export function cycles(graph: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1) out.push(component.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return out.sort((x, y) => (x[0] < y[0] ? -1 : 1));
}

/** The graph of `edges` with nodes mapped by `key` (self-loops dropped). */
export function graphOf(
  edges: readonly ImportEdge[],
  key: (path: string) => string,
): Map<string, Set<string>> {
  const graph = new Map<string, Set<string>>();
  for (const { from, to } of edges) {
    const a = key(from);
    const b = key(to);
    if (!graph.has(a)) graph.set(a, new Set());
    if (a !== b) graph.get(a)!.add(b);
  }
  return graph;
}
