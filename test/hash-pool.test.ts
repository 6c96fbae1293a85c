// The hashing pool (hash-pool.ts): a line only as long as can be cleared within the wait budget,
// and refusals that are answered after a pause, so that immediate retries cannot become the load.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createHashPool } from '../src/modules/sessions/hash-pool.js';
import { sleep } from './helpers/sessions.js';

describe('the hashing pool', () => {
  test('lets a hash wait only as long as the line can be cleared within the wait budget', async () => {
    const rejected: number[] = [];
    // One lane, a hash of about 40 ms, a budget of 60 ms: after the first hash has been timed, one
    // may wait (1 × 40 ≤ 60) and a second is refused at once (2 × 40 > 60).
    const pool = createHashPool(1, 100, () => rejected.push(1), 60);
    const hash = () => sleep(40);
    await pool.run(hash);
    const running = pool.run(hash);
    const waiting = pool.run(hash);
    await assert.rejects(pool.run(hash), { code: 'overloaded' });
    assert.equal(rejected.length, 1);
    assert.equal(pool.queued, 1);
    await Promise.all([running, waiting]);
    assert.equal(pool.active, 0);
  });

  test('queueMax still caps the line whatever the budget', async () => {
    const pool = createHashPool(1, 1, () => {}, 60_000);
    const running = pool.run(() => sleep(20));
    const waiting = pool.run(() => sleep(20));
    await assert.rejects(
      pool.run(() => sleep(20)),
      { code: 'overloaded' },
    );
    await Promise.all([running, waiting]);
  });

  test('refusal() says beforehand what run() would answer, pause included', async () => {
    const rejected: number[] = [];
    const pool = createHashPool(1, 1, () => rejected.push(1), 60_000, 50);
    assert.equal(pool.refusal(), undefined, 'a free lane');
    const running = pool.run(() => sleep(100));
    assert.equal(pool.refusal(), undefined, 'a place in line');
    const waiting = pool.run(() => sleep(10));
    const started = performance.now();
    const refusal = pool.refusal();
    assert.ok(refusal, 'neither a lane nor a place in line');
    await assert.rejects(refusal, { code: 'overloaded' });
    assert.ok(performance.now() - started >= 45, 'after the shed delay');
    assert.equal(rejected.length, 1, 'counted as a rejection');
    assert.equal(pool.queued, 1, 'took no place');
    await Promise.all([running, waiting]);
    assert.equal(pool.refusal(), undefined);
  });

  test('a refused hash is answered only after the shed delay, and takes no slot meanwhile', async () => {
    const pool = createHashPool(1, 0, () => {}, 60_000, 80);
    const running = pool.run(() => sleep(10));
    const started = performance.now();
    await assert.rejects(
      pool.run(() => sleep(10)),
      { code: 'overloaded' },
    );
    const waited = performance.now() - started;
    assert.ok(waited >= 75, `refused after ${waited} ms`);
    await running;
    assert.equal(pool.active, 0);
    assert.equal(pool.queued, 0);
  });
});
