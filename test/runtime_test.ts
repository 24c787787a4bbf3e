/**
 * Ferry runs on Deno and Bun: outside `src/host/`, no source file calls `Deno.*` (file, process and
 * terminal access goes through `src/host/runtime.ts`, built on `node:` APIs both runtimes provide).
 */
import assert from "node:assert/strict";
import { isNotFound, RandomAccessFile, readDir } from "../src/host/runtime.ts";

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readDir(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...await sources(p));
    else if (e.name.endsWith(".ts")) out.push(p);
  }
  return out;
}

Deno.test("no Deno.* call in src/ outside src/host/ (doc comments and Deno's inspect symbol aside)", async () => {
  const offenders: string[] = [];
  for (const file of await sources("src")) {
    if (file.startsWith("src/host/")) continue;
    const lines = (await Deno.readTextFile(file)).split("\n");
    lines.forEach((line, i) => {
      const code = line.trim();
      if (code.startsWith("*") || code.startsWith("//") || code.startsWith("/*")) return;
      if (/\bDeno\.(?!customInspect)/.test(code)) offenders.push(`${file}:${i + 1}: ${code}`);
    });
  }
  assert.deepEqual(offenders, [], "use src/host/runtime.ts instead");
});

Deno.test("RandomAccessFile reads at offsets, reports short reads, and refuses reads after close", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/f`, Uint8Array.from({ length: 10 }, (_, i) => i));
    using f = RandomAccessFile.open(`${dir}/f`);
    assert.equal(f.size, 10);
    const a = new Uint8Array(3);
    assert.equal(f.readAt(a, 4), 3);
    assert.deepEqual([...a], [4, 5, 6]);
    const b = new Uint8Array(5);
    assert.equal(f.readAt(b, 8), 2); // the file ends
    f.close();
    assert.throws(() => f.readAt(a, 0), /the file is closed/);
    assert.throws(() => RandomAccessFile.open(`${dir}/missing`), (err) => isNotFound(err));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("package.json (for bun install) pins the npm packages deno.json pins, at the same versions", async () => {
  const deno = JSON.parse(await Deno.readTextFile("deno.json")) as { imports: Record<string, string> };
  const pkg = JSON.parse(await Deno.readTextFile("package.json")) as { dependencies: Record<string, string> };
  const fromDeno = Object.fromEntries(
    Object.values(deno.imports).filter((v) => v.startsWith("npm:@types/") === false && v.startsWith("npm:"))
      .map((v) => {
        const spec = v.slice(4);
        const at = spec.lastIndexOf("@");
        return [spec.slice(0, at), spec.slice(at + 1)];
      }),
  );
  assert.deepEqual(pkg.dependencies, fromDeno);
});
