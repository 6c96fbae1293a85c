// kill -9 one of three instances under load: nginx moves every read to the others, and no write a
// client was told about is lost or made twice (client ledger against the primary database).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { killInstance, spawnInstance, waitReady } from '../../scripts/cluster/instances.js';
import { clusterSkip, runPrefix, sleep, startTestCluster, type TestCluster } from './harness.js';
import { checkLedger, runLoad, summarize } from './load.js';

describe('an instance killed under load', { skip: await clusterSkip(), timeout: 180_000 }, () => {
  let cluster: TestCluster;

  before(async () => {
    cluster = await startTestCluster('kill');
  });

  after(async () => {
    await cluster?.close();
  });

  test('fails no read and loses or duplicates no acknowledged write', async () => {
    const prefix = runPrefix('kill');
    const victim = cluster.state.instances[1];
    assert.ok(victim);
    const fault = (async () => {
      await sleep(5_000);
      process.stderr.write(`# kill -9 gatehouse-${victim.index} (pid ${victim.pid}) at 5 s\n`);
      await killInstance(victim);
      await sleep(8_000);
      // It comes back (as a supervisor would restart it) and rejoins through passive health.
      spawnInstance(cluster.state, victim);
      await waitReady(victim);
      process.stderr.write(`# gatehouse-${victim.index} restarted and ready\n`);
    })();
    const [result] = await Promise.all([
      runLoad({ url: cluster.url, auth: cluster.adminAuth, usernamePrefix: prefix, durationMs: 20_000 }),
      fault,
    ]);
    process.stderr.write(`${summarize(result)}\n`);

    const failedReads = result.outcomes.filter((outcome) => outcome.method === 'GET' && outcome.status !== 200);
    assert.deepEqual(failedReads, [], 'every read succeeds through nginx');
    const failedWrites = result.outcomes.filter((outcome) => outcome.method === 'POST' && outcome.status !== 201);
    assert.deepEqual(failedWrites, [], 'every creation succeeds, retried with its Idempotency-Key');
    assert.ok(result.ledger.length > 20, `the load made real writes (${result.ledger.length})`);

    const ledger = await checkLedger(cluster.state, prefix, result.ledger);
    process.stderr.write(
      `# ledger: ${result.ledger.length} acknowledged, ${ledger.lost.length} lost, ${ledger.duplicated.length} duplicated, ${ledger.unacknowledged} unacknowledged rows\n`,
    );
    assert.deepEqual(ledger.lost, []);
    assert.deepEqual(ledger.duplicated, []);
    // Every creation ended in a 201, so every row of this run was acknowledged exactly once.
    assert.equal(ledger.unacknowledged, 0);
  });
});
