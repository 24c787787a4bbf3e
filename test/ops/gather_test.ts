import assert from "node:assert/strict";
import {
  gatherCols,
  gatherColsRef,
  gatherRows,
  gatherRowsRef,
  scatterAddRows,
  scatterRows,
  scatterRowsRef,
} from "../../src/ops/gather.ts";
import { Tensor } from "../../src/tensor/tensor.ts";
import { assertClose, randn, testOnDevices } from "../_helpers.ts";

const [R, C] = [9, 37]; // odd row width; not a multiple of the 4-element lane stride
const IDX = new Int32Array([4, 0, 4, 8, 4, 2]); // repeats, first and last row
const BAD = new Int32Array([1, -1, 3, 9, 1 << 30]); // out of range on WebGPU: skipped

testOnDevices("gatherRows() and gatherCols() match their references with repeated indices", async (dev) => {
  const x = randn(R * C, 1);
  using tx = Tensor.fromArray(dev, x, [R, C]);
  using idx = Tensor.fromArray(dev, IDX);
  using rows = gatherRows(tx, idx); // [n, C]
  const wantRows = new Float32Array(IDX.length * C);
  gatherRowsRef(x, R, C, IDX, wantRows);
  assert.deepEqual(rows.shape, [IDX.length, C]);
  assert.deepEqual(await rows.toArray(), wantRows);

  using cols = gatherCols(tx, idx); // [R, n]
  const wantCols = new Float32Array(R * IDX.length);
  gatherColsRef(x, R, C, IDX, wantCols);
  assert.deepEqual(cols.shape, [R, IDX.length]);
  assert.deepEqual(await cols.toArray(), wantCols);
});

testOnDevices("gathers move i32 and u32 words bit-exactly", async (dev) => {
  const words = Uint32Array.from({ length: 4 * 3 }, (_, i) => (0xffc00001 + i * 0x10001) >>> 0); // NaN patterns as f32
  using x = Tensor.fromArray(dev, words, [4, 3]);
  using idx = Tensor.fromArray(dev, new Int32Array([3, 1]));
  using rows = gatherRows(x, idx);
  assert.equal(rows.dtype, "u32");
  assert.deepEqual([...await rows.toArray()], [...words.subarray(9, 12), ...words.subarray(3, 6)]);
  using ix = Tensor.fromArray(dev, new Int32Array([-5, 6, 7, 8, 9, 10]), [2, 3]);
  using cols = gatherCols(ix, Tensor.fromArray(dev, new Int32Array([2, 0])));
  assert.deepEqual([...await cols.toArray()], [7, -5, 10, 8]);
});

testOnDevices("scatterRows() keeps the last write and scatterAddRows() sums repeats", async (dev) => {
  const dst = randn(R * C, 2);
  const src = randn(IDX.length * C, 3);
  const w = randn(IDX.length, 4);
  using tdst = Tensor.fromArray(dev, dst, [R, C]);
  using tsrc = Tensor.fromArray(dev, src, [IDX.length, C]);
  using idx = Tensor.fromArray(dev, IDX);
  using tw = Tensor.fromArray(dev, w);
  const want = new Float32Array(R * C);

  using replaced = scatterRows(tdst, idx, tsrc); // [R, C]
  scatterRowsRef(dst, R, C, IDX, src, want);
  assert.deepEqual(await replaced.toArray(), want);
  assert.deepEqual(
    (await replaced.toArray()).subarray(4 * C, 5 * C),
    src.subarray(4 * C, 5 * C),
    "row 4 holds the last of its three writes",
  );

  using added = scatterAddRows(tdst, idx, tsrc); // [R, C]
  scatterRowsRef(dst, R, C, IDX, src, want, { add: true });
  assertClose(await added.toArray(), want, { rtol: 1e-6, atol: 1e-6, what: "scatterAddRows" });

  using weighted = scatterAddRows(tdst, idx, tsrc, { weights: tw }); // [R, C]
  scatterRowsRef(dst, R, C, IDX, src, want, { add: true, weights: w });
  // WebGPU may fuse w·src + acc into one FMA: allow a rounding step.
  assertClose(await weighted.toArray(), want, { rtol: 1e-6, atol: 1e-6, what: "weighted scatterAddRows" });

  assert.deepEqual(await tdst.toArray(), dst, "dst is left unchanged");
});

testOnDevices("row ops handle more than 65535 destination rows", async (dev) => {
  const rows = 70000;
  const dst = randn(rows * 2, 5);
  const idx = new Int32Array([69999, 3, 65536]);
  const src = randn(idx.length * 2, 6);
  using t = scatterAddRows(
    Tensor.fromArray(dev, dst, [rows, 2]),
    Tensor.fromArray(dev, idx),
    Tensor.fromArray(dev, src, [3, 2]),
  );
  const want = new Float32Array(rows * 2);
  scatterRowsRef(dst, rows, 2, idx, src, want, { add: true });
  assertClose(await t.toArray(), want, { what: "scatterAddRows over 70000 rows" });
});

testOnDevices("out-of-range indices: CPU throws naming the index, WebGPU skips them", async (dev) => {
  const x = randn(R * C, 7);
  using tx = Tensor.fromArray(dev, x, [R, C]);
  using bad = Tensor.fromArray(dev, BAD);
  const s = randn(BAD.length * C, 8);
  using src = Tensor.fromArray(dev, s, [BAD.length, C]);
  if (dev.kind === "cpu") {
    assert.throws(() => gatherRows(tx, bad), {
      name: "RangeError",
      message: "Cannot run gatherRows: idx[1] = -1 is out of range for x with 9 rows (0..8)",
    });
    using edge = Tensor.fromArray(dev, new Int32Array([36, 37]));
    assert.throws(
      () => gatherCols(tx, edge),
      /Cannot run gatherCols: idx\[1\] = 37 is out of range for x with 37 columns/,
    );
    assert.throws(
      () => scatterRows(tx, bad, src),
      /Cannot run scatterRows: idx\[1\] = -1 is out of range for dst/,
    );
    assert.throws(() => scatterAddRows(tx, bad, src), /Cannot run scatterAddRows: idx\[1\] = -1/);
    return;
  }
  const want = new Float32Array(BAD.length * C);
  gatherRowsRef(x, R, C, BAD, want);
  using rows = gatherRows(tx, bad);
  assert.deepEqual(await rows.toArray(), want, "gathered rows of bad indices are zero");
  const wantCols = new Float32Array(R * BAD.length);
  gatherColsRef(x, R, C, BAD, wantCols);
  using cols = gatherCols(tx, bad);
  assert.deepEqual(await cols.toArray(), wantCols);
  const wantScatter = new Float32Array(R * C);
  scatterRowsRef(x, R, C, BAD, s, wantScatter, { add: true });
  using added = scatterAddRows(tx, bad, src);
  assertClose(await added.toArray(), wantScatter, { what: "scatterAddRows skips bad rows" });
});

testOnDevices("gather ops reject mismatched shapes and dtypes", (dev) => {
  using x = Tensor.zeros(dev, [3, 4]);
  using idx = Tensor.fromArray(dev, new Int32Array([0, 1]));
  using fidx = Tensor.zeros(dev, [2]);
  using src = Tensor.zeros(dev, [2, 5]);
  assert.throws(() => gatherRows(x, fidx), /Cannot run gatherRows: idx must be i32 or u32: received f32/);
  assert.throws(() => gatherRows(x.reshape([12]), idx), /x must have rank 2/);
  assert.throws(
    () => scatterRows(x, idx, src),
    /Cannot run scatterRows: src must be \[2, 4\] .* received \[2,5\]/,
  );
  assert.throws(
    () => scatterAddRows(x, idx, Tensor.zeros(dev, [2, 4]), { weights: Tensor.zeros(dev, [3]) }),
    /weights must be \[2\] \(one per index\): received \[3\]/,
  );
});
