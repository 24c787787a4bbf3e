/**
 * Golden model fixtures (test/fixtures/models/<name>/, made by test/fixtures/make_model_golden.py):
 * discovery at run time, golden outputs, and helpers to copy or damage a checkpoint in a temp dir.
 * @module
 */
import { SafetensorsFile } from "../../src/io/safetensors.ts";
import { assertClose } from "../_helpers.ts";

/** The fixtures folder. */
export const FIXTURES_DIR = new URL("../fixtures/models/", import.meta.url).pathname;

/** What a fixture's golden.safetensors holds. */
export interface Golden {
  inputIds: Int32Array;
  /** `[T, V]`. */
  logits: Float32Array;
  /** `[T, E]` by layer index (MoE layers only). */
  routerLogits: Map<number, Float32Array>;
  greedy: Int32Array;
}

/** A fixture folder with its golden outputs. */
export interface Fixture {
  name: string;
  dir: string;
  golden: Golden;
}

/**
 * Every folder under test/fixtures/models/ that holds config.json and golden.safetensors, sorted.
 * Throws when there are none, so a missing fixture set fails loudly instead of testing nothing.
 */
export async function discoverFixtures(): Promise<Fixture[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(FIXTURES_DIR)) {
    if (!e.isDirectory) continue;
    const has = async (f: string) =>
      await Deno.stat(`${FIXTURES_DIR}${e.name}/${f}`).then(() => true, () => false);
    if (await has("config.json") && await has("golden.safetensors")) names.push(e.name);
  }
  if (names.length === 0) {
    throw new Error(
      `No model fixtures found in ${FIXTURES_DIR}: run /usr/bin/python3 test/fixtures/make_model_golden.py`,
    );
  }
  names.sort();
  return await Promise.all(names.map(async (name) => {
    const dir = `${FIXTURES_DIR}${name}`;
    return { name, dir, golden: await readGolden(`${dir}/golden.safetensors`) };
  }));
}

async function readGolden(path: string): Promise<Golden> {
  using st = await SafetensorsFile.open(path);
  const ints = async (name: string) => {
    const t = await st.read(name);
    return new Int32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4);
  };
  const routerLogits = new Map<number, Float32Array>();
  for (const name of st.names) {
    const m = /^router_logits\.(\d+)$/.exec(name);
    if (m) routerLogits.set(Number(m[1]), await st.readF32(name));
  }
  return {
    inputIds: await ints("input_ids"),
    logits: await st.readF32("logits"),
    routerLogits,
    greedy: await ints("greedy"),
  };
}

/** Fixtures, loaded once at module load (top-level await) so tests can be registered per fixture. */
export const FIXTURES: Fixture[] = await discoverFixtures();

/** The logits check of the golden tests: `rtol 1e-4` plus `atol 1e-5 · max|expected|`. */
export function assertLogitsClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  what: string,
): void {
  let max = 0;
  for (let i = 0; i < expected.length; i++) max = Math.max(max, Math.abs(expected[i]));
  assertClose(actual, expected, { rtol: 1e-4, atol: 1e-5 * max, what });
}

/** Copies a checkpoint folder into a fresh temp dir and returns its path. */
export async function copyFixture(dir: string): Promise<string> {
  const out = await Deno.makeTempDir({ prefix: "ferry-model-" });
  for await (const e of Deno.readDir(dir)) {
    if (e.isFile) await Deno.copyFile(`${dir}/${e.name}`, `${out}/${e.name}`);
  }
  return out;
}

/** The fixture called `name`; throws when it is missing. */
export function fixture(name: string): Fixture {
  const f = FIXTURES.find((x) => x.name === name);
  if (!f) throw new Error(`Model fixture ${name} is missing from ${FIXTURES_DIR}`);
  return f;
}
