// The PostgreSQL primary stops for 10 s under load: requests that need it get a 503 problem within
// 2 s (none hangs, none is a 500), the cluster serves again within 5 s of the primary's return by
// itself, and no acknowledged write is lost.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startNode, stopNode } from '../../scripts/cluster/postgres.js';
import { clusterSkip, runPrefix, sleep, startTestCluster, type TestCluster } from './harness.js';
import { checkLedger, runLoad, summarize } from './load.js';

describe('the primary database stopped for 10 s', { skip: await clusterSkip(), timeout: 180_000 }, () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await startTestCluster('pgdown');
  });

  after(async () => {
    await cluster?.close();
  });

  test('answers 503 within 2 s, recovers within 5 s of its return, loses no acknowledged write', async () => {
    const prefix = runPrefix('pgdown');
    const primary = cluster.state.postgres.primary;
    const times = { loadStart: 0, stopping: 0, stopped: 0, started: 0 };
    const fault = (async () => {
      await sleep(5_000);
      times.stopping = Date.now();
      await stopNode(cluster.state, primary);
      times.stopped = Date.now();
      process.stderr.write(`# primary stopped (pg_ctl stop -m fast took ${times.stopped - times.stopping} ms)\n`);
      await sleep(10_000);
      await startNode(cluster.state, primary);
      times.started = Date.now();
      process.stderr.write('# primary started again\n');
    })();
    times.loadStart = Date.now();
    const [result] = await Promise.all([
      runLoad({ url: cluster.url, auth: cluster.adminAuth, usernamePrefix: prefix, durationMs: 30_000 }),
      fault,
    ]);
    process.stderr.write(`${summarize(result)}\n`);

    // Attempt times are relative to the load's start.
    const stopping = times.stopping - times.loadStart;
    const stopped = times.stopped - times.loadStart;
    const started = times.started - times.loadStart;
    const unavailable = result.attempts.filter((attempt) => attempt.status === 503);
    const firstUnavailable = unavailable.find((attempt) => attempt.at >= stopping);
    const firstWriteAfterReturn = result.attempts.find(
      (attempt) => attempt.method === 'POST' && attempt.at >= started && attempt.status === 201,
    );
    const lastFailure = result.attempts.filter((attempt) => attempt.status !== 200 && attempt.status !== 201).at(-1);
    process.stderr.write(
      `# first 503 answered ${firstUnavailable ? firstUnavailable.at + firstUnavailable.latencyMs - stopping : 'never'} ms after the stop began ` +
        `(pg_ctl stop took ${stopped - stopping} ms); ` +
        `slowest 503 ${Math.max(0, ...unavailable.map((attempt) => attempt.latencyMs))} ms; ` +
        `first acknowledged write ${firstWriteAfterReturn ? firstWriteAfterReturn.at + firstWriteAfterReturn.latencyMs - started : 'never'} ms after its return; ` +
        `last failed attempt sent ${lastFailure ? lastFailure.at - started : 'none'} ms after its return\n`,
    );

    const unexpected = result.attempts.filter((attempt) => ![200, 201, 503].includes(attempt.status));
    assert.deepEqual(unexpected, [], 'every attempt is answered: a success or a 503, never a 500, a hang or a dropped connection');
    assert.ok(
      unavailable.every((attempt) => attempt.code === 'unavailable'),
      'each 503 is the unavailable problem',
    );
    assert.ok(firstUnavailable, 'requests that need the primary get 503 while it is down');
    assert.ok(firstUnavailable.at + firstUnavailable.latencyMs - stopped <= 2_000, 'the first 503 comes within 2 s of the stop');
    const slow = unavailable.filter((attempt) => attempt.latencyMs > 2_000);
    assert.deepEqual(slow, [], 'every 503 is answered within 2 s');
    // A request sent just before the stop may be answered after it began: what counts is when it was answered.
    const early = unavailable.filter((attempt) => attempt.at + attempt.latencyMs < stopping || attempt.at > started + 5_000);
    assert.deepEqual(early, [], '503s only while the primary is away, and up to 5 s after its return');
    const failedAfterRecovery = result.outcomes.filter(
      (outcome) => outcome.at > started + 5_000 && outcome.status !== 200 && outcome.status !== 201,
    );
    assert.deepEqual(failedAfterRecovery, [], 'everything succeeds from 5 s after the return');

    const failedWrites = result.outcomes.filter((outcome) => outcome.method === 'POST' && outcome.status !== 201);
    assert.deepEqual(failedWrites, [], 'every creation succeeds in the end, retried with its Idempotency-Key');
    const ledger = await checkLedger(cluster.state, prefix, result.ledger);
    process.stderr.write(
      `# ledger: ${result.ledger.length} acknowledged, ${ledger.lost.length} lost, ${ledger.duplicated.length} duplicated\n`,
    );
    assert.deepEqual(ledger.lost, []);
    assert.deepEqual(ledger.duplicated, []);
    assert.equal(ledger.unacknowledged, 0);
  });
});
