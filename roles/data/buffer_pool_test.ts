import assert from "node:assert/strict";
import { BufferPool } from "./buffer_pool.ts";

Deno.test("BufferPool hands out its buffers, then queues takers until one comes back", async () => {
  const pool = new BufferPool(2, 16);
  const a = await pool.acquire();
  const b = await pool.acquire();
  assert.notEqual(a, b);
  assert.equal(a.byteLength, 16);
  assert.equal(pool.free, 0);
  const order: string[] = [];
  const third = pool.acquire().then((x) => (order.push("third"), x));
  const fourth = pool.acquire().then((x) => (order.push("fourth"), x));
  await Promise.resolve();
  assert.deepEqual(order, []);
  pool.release(a);
  assert.equal(await third, a);
  pool.release(b);
  assert.equal(await fourth, b);
  assert.deepEqual(order, ["third", "fourth"]);
});

Deno.test("BufferPool replaces a lost or foreign buffer with a fresh one of its size", async () => {
  const pool = new BufferPool(1, 32);
  const a = await pool.acquire();
  structuredClone(a, { transfer: [a] }); // detached, as after a cut BYOB read
  pool.release(a);
  const b = await pool.acquire();
  assert.notEqual(b, a);
  assert.equal(b.byteLength, 32);
  pool.release(null);
  assert.equal((await pool.acquire()).byteLength, 32);
  pool.release(new ArrayBuffer(8));
  assert.equal((await pool.acquire()).byteLength, 32);
});

Deno.test("BufferPool: a buffer lent out and given back takes the place of the next one lent", async () => {
  const pool = new BufferPool(1, 16);
  const a = await pool.acquire();
  pool.release(null); // lent out: a fresh one takes its place
  const b = await pool.acquire();
  assert.notEqual(b, a);
  pool.giveBack(a);
  pool.release(null); // b lent out: a takes its place, nothing allocated
  assert.equal(await pool.acquire(), a);
});
