/**
 * The layer order of DESIGN.md holds in src/: no import goes up the table in `_layers.ts`, no
 * cycle forms between folders, and no cycle between files (but the pending one listed there).
 */
import assert from "node:assert/strict";
import {
  cycles,
  graphOf,
  importsOf,
  layerViolations,
  PENDING_FILE_CYCLES,
  privateImports,
  unitOf,
} from "./_layers.ts";
import { sourceFiles } from "./_source_files.ts";

const files = sourceFiles("src");
const edges = files.flatMap((f) => importsOf(f.path, f.text));

Deno.test("the import parser finds static, type, re-export, side-effect and dynamic imports, not doc examples", () => {
  const text = [
    'import { a, type B } from "../ops/matmul.ts";',
    "import type {",
    "  C,",
    '} from "./c.ts";',
    'import code from "../../kernels/x.wgsl" with { type: "text" };',
    'export * from "../device/device.ts";',
    'export { d } from "./d.ts";',
    'import "./side.ts";',
    'const m = await import("../io/safetensors.ts");',
    ' * import { e } from "../models/load.ts";',
    '// const n = await import("../lora/x.ts");',
    'import { z } from "zod";',
  ].join("\n");
  assert.deepEqual(importsOf("src/nn/linear.ts", text).map((e) => e.to), [
    "src/ops/matmul.ts",
    "src/nn/c.ts",
    "kernels/x.wgsl",
    "src/device/device.ts",
    "src/nn/d.ts",
    "src/nn/side.ts",
    "src/io/safetensors.ts",
  ]);
});

Deno.test("the layer check refuses an import up the table and an unknown folder, and finds cycles", () => {
  assert.deepEqual(layerViolations([{ from: "src/ops/matmul.ts", to: "src/ops/_kernel.ts" }]), []);
  assert.deepEqual(layerViolations([{ from: "src/models/load.ts", to: "src/io/safetensors.ts" }]), []);
  assert.deepEqual(layerViolations([{ from: "src/nn/linear.ts", to: "src/models/config.ts" }]), [
    "src/nn/linear.ts → src/models/config.ts: nn (layer 5) imports models (layer 6), up the layer order",
  ]);
  assert.equal(layerViolations([{ from: "src/io/tokenizer.ts", to: "src/tensor/tensor.ts" }]).length, 1);
  assert.match(layerViolations([{ from: "src/zz/a.ts", to: "src/ops/b.ts" }])[0], /"zz" is not in LAYERS/);
  const edges = [
    { from: "src/a/x.ts", to: "src/b/y.ts" },
    { from: "src/b/y.ts", to: "src/a/z.ts" },
    { from: "src/a/z.ts", to: "src/c/w.ts" },
  ];
  assert.deepEqual(cycles(graphOf(edges, unitOf)), [["a", "b"]]);
  assert.deepEqual(cycles(graphOf(edges, (p) => p)), []);
});

Deno.test("src/ imports follow the layer order of DESIGN.md", () => {
  assert.ok(
    files.length > 100 && edges.length > 500,
    `parsed ${files.length} files, ${edges.length} imports`,
  );
  const bad = layerViolations(edges);
  assert.deepEqual(bad, [], `imports that break the layer order:\n  ${bad.join("\n  ")}`);
});

Deno.test("private modules (_name.ts) are imported only inside their folder", () => {
  assert.deepEqual(privateImports([{ from: "src/ops/matmul.ts", to: "src/ops/_kernel.ts" }]), []);
  assert.deepEqual(privateImports([{ from: "src/compressors/quant/rtn.ts", to: "src/ops/_kernel.ts" }]), [
    "src/compressors/quant/rtn.ts → src/ops/_kernel.ts: src/ops/_kernel.ts is private to ops/",
  ]);
  const bad = privateImports(edges);
  assert.deepEqual(bad, [], `imports of private modules:\n  ${bad.join("\n  ")}`);
});

Deno.test("no cycle between the folders of src/", () => {
  const found = cycles(graphOf(edges, unitOf));
  assert.deepEqual(found, [], `folder cycles: ${found.map((c) => c.join(" ↔ ")).join("; ")}`);
});

Deno.test("no cycle between the files of src/ (but the pending one in _layers.ts)", () => {
  const pending = new Set(PENDING_FILE_CYCLES.map((c) => [...c].sort().join(" ↔ ")));
  const found = cycles(graphOf(edges, (p) => p)).map((c) => c.join(" ↔ ")).filter((c) => !pending.has(c));
  assert.deepEqual(
    found,
    [],
    `file cycles (move the shared type or helper to its own module): ${found.join("; ")}`,
  );
});
