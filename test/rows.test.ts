/**
 * Table rows around a run (src/runtime/rows.ts): the session refreshes the rows a previous step
 * updated, runs, and writes the updated rows back into the caller's table, on the worker's thread
 * too (the table on a SharedArrayBuffer).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Graph, ops, encodeGraph, MtlError } from "../src/index.js";
import { openSession } from "../src/runtime/model-session.js";
import { awaitShare, gatherRows, refreshRows, writeBackRows, writeBackShare, type TableRows } from "../src/runtime/rows.js";
import type { Tensor } from "../src/runtime/session.js";

// rows.new = rows + 1 and slot.new = slot * 2: a stand-in for a training step's row update.
const stepModel = () => {
  const g = new Graph();
  g.output(ops.Add(g.input("rows", "float32", ["n", 2]), 1), "rows.new");
  g.output(ops.Mul(g.input("slot", "float32", ["n", 2]), 2), "slot.new");
  return encodeGraph(g);
};

/** A packed table of 6 rows, stride 4 (weights 2, slot 2), on the given buffer kind; row r holds r*10 + column. */
function table(shared: boolean): Float32Array {
  const t = new Float32Array(shared ? new SharedArrayBuffer(6 * 4 * 4) : new ArrayBuffer(6 * 4 * 4));
  for (let r = 0; r < 6; r++) for (let c = 0; c < 4; c++) t[r * 4 + c] = r * 10 + c;
  return t;
}

function block(t: Float32Array, ids: Int32Array): Record<string, Tensor> {
  const parts = [new Float32Array(ids.length * 2), new Float32Array(ids.length * 2)];
  gatherRows(t, 4, 2, ids, parts);
  return { rows: { dtype: "float32", dims: [ids.length, 2], data: parts[0]! }, slot: { dtype: "float32", dims: [ids.length, 2], data: parts[1]! } };
}

const spec = (t: Float32Array, ids: Int32Array, refresh: number[] = []): TableRows => ({
  table: t, stride: 4, dim: 2, ids, feeds: ["rows", "slot"], outputs: ["rows.new", "slot.new"], refresh: Int32Array.from(refresh), skipRow0: true,
});

test("a block gathered before the previous step's write-back equals a fresh gather once its shared rows are refreshed", () => {
  const t = table(false);
  const first = Int32Array.of(0, 2, 4);
  const next = Int32Array.of(4, 1, 2); // rows 4 and 2 are in both steps
  const stale = block(t, next); // gathered while the first step runs
  const updated = { "rows.new": { dtype: "float32", dims: [3, 2], data: Float32Array.of(-1, -1, 200, 201, 400, 401) }, "slot.new": { dtype: "float32", dims: [3, 2], data: Float32Array.of(-2, -2, 202, 203, 402, 403) } } as const;
  writeBackRows([spec(t, first)], updated);
  assert.deepEqual([...t.subarray(0, 4)], [0, 1, 2, 3], "row 0 (padding) is never written back");
  assert.deepEqual([...t.subarray(8, 12)], [200, 201, 202, 203]);
  assert.notDeepEqual([...stale.rows!.data], [...block(t, next).rows!.data], "the stale block misses the update");
  refreshRows([spec(t, next, [0, 2])], stale);
  const fresh = block(t, next);
  assert.deepEqual([...stale.rows!.data], [...fresh.rows!.data]);
  assert.deepEqual([...stale.slot!.data], [...fresh.slot!.data]);
});

for (const kind of ["this thread", "a worker"] as const) {
  test(`a session in ${kind} refreshes rows before its run and writes the updated rows into the caller's table`, async () => {
    const t = table(true);
    const ids = Int32Array.of(3, 1);
    const feeds = block(t, ids);
    t[1 * 4] = 99; // row 1 changed after the gather: refreshed from the table before the run
    const s = await openSession(stepModel(), { worker: kind === "a worker" });
    try {
      const rows = [spec(t, ids, [1])];
      const out = await s.run(feeds, { rows });
      assert.deepEqual([...out["rows.new"]!.data], [31, 32, 100, 12]);
      assert.deepEqual([...t.subarray(4, 8)], [100, 12, 24, 26], "row 1 written back into the caller's memory");
      assert.deepEqual([...t.subarray(12, 16)], [31, 32, 64, 66]);
      assert.deepEqual([...t.subarray(8, 12)], [20, 21, 22, 23], "rows outside the block are left alone");
    } finally {
      await s.release();
    }
  });
}

for (const kind of ["this thread", "a worker"] as const) {
  test(`a session in ${kind} shares the write-back: it stages the caller's rows, keeps the block, and counts its part done`, async () => {
    const t = table(true);
    const ids = Int32Array.of(3, 1, 5);
    const share = { from: 1, parts: [0, 1].map(() => new Float32Array(new SharedArrayBuffer(4 * 2 * 4))), done: new Int32Array(new SharedArrayBuffer(4)) };
    const s = await openSession(stepModel(), { worker: kind === "a worker" });
    try {
      const rows = [{ ...spec(t, ids), share }];
      const out = await s.run(block(t, ids), { rows });
      if (kind === "a worker") assert.equal(out["rows.new"], undefined, "the worker keeps the block it writes back");
      assert.deepEqual([...share.parts[0]!.subarray(0, 4)], [11, 12, 51, 52], "rows 1 and 5 staged for the caller");
      assert.deepEqual([...share.parts[1]!.subarray(0, 4)], [24, 26, 104, 106]);
      writeBackShare(rows, out);
      awaitShare(share, 1);
      assert.equal(Atomics.load(share.done, 0), 1);
      assert.deepEqual([...t.subarray(12, 16)], [31, 32, 64, 66], "row 3 written back by the session");
      assert.deepEqual([...t.subarray(4, 8)], [11, 12, 24, 26], "row 1 written back by the caller");
      assert.deepEqual([...t.subarray(20, 24)], [51, 52, 104, 106]);
      assert.deepEqual([...t.subarray(8, 12)], [20, 21, 22, 23], "rows outside the block are left alone");
    } finally {
      await s.release();
    }
  });
}

test("waiting for a session's part that never comes is an error, not a hang", () => {
  const share = { from: 0, parts: [], done: new Int32Array(new SharedArrayBuffer(4)) };
  assert.throws(() => awaitShare(share, 1, 50), (e: unknown) => e instanceof MtlError && e.code === "E_WORKER");
});

test("a worker session refuses to write rows back into a table it would only get a copy of", async () => {
  const s = await openSession(stepModel(), { worker: true });
  try {
    const t = table(false);
    const ids = Int32Array.of(1);
    await assert.rejects(s.run(block(t, ids), { rows: [spec(t, ids)] }), (e: unknown) => e instanceof MtlError && e.code === "E_WORKER");
  } finally {
    await s.release();
  }
});
