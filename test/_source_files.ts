/**
 * The TypeScript files of a source folder, for tests that read the code itself (import order,
 * banned calls). Paths are relative to the repository root, with `/` separators.
 * @module
 */

/** Every `.ts` file under `root` (recursively), sorted, with its text. */
export function sourceFiles(root = "src"): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = [];
  const walk = (dir: string) => {
    for (const e of Deno.readDirSync(dir)) {
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) walk(path);
      else if (e.isFile && e.name.endsWith(".ts")) out.push({ path, text: Deno.readTextFileSync(path) });
    }
  };
  walk(root);
  return out.sort((a, b) => (a.path < b.path ? -1 : 1));
}
