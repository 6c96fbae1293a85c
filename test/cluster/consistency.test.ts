// Stateless instances behind nginx, with reads on a replica: a revocation through one instance is
// seen by every other within a second; with the replica 3 s behind, a client still reads its own
// writes on every request; with the replica stopped, reads move to the primary and none fails, and
// the replica is used again once it is back.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { status } from '../../scripts/cluster/cluster.js';
import { nginxPid } from '../../scripts/cluster/nginx.js';
import { nodePid, setReplayDelay, startNode, stopNode, withClient } from '../../scripts/cluster/postgres.js';
import { deleteRedisKeys } from '../../scripts/cluster/services.js';
import { clusterSkip, metricByLabel, readsByTarget, runPrefix, sleep, startTestCluster, type TestCluster } from './harness.js';
import { runLoad, summarize } from './load.js';

const PASSWORD = 'consistency-password-1';

/** Alive, and not a zombie that its parent (this process, for the instances) has yet to reap. */
function running(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

describe('consistency across instances and the replica', { skip: await clusterSkip(), timeout: 240_000 }, () => {
  let cluster: TestCluster;
  const prefix = runPrefix('rc');
  let counter = 0;

  async function call(base: string, method: string, path: string, auth: string, body?: unknown, headers: Record<string, string> = {}) {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
  }

  async function createUser(extra: Record<string, unknown> = {}) {
    counter += 1;
    const username = `${prefix}${counter}`;
    const created = await call(cluster.url, 'POST', '/v1/users', cluster.adminAuth, {
      username,
      email: `${username}@example.com`,
      password: PASSWORD,
      ...extra,
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    return { username, id: String(created.body.id), consistency: created.headers.get('gatehouse-consistency') };
  }

  const basic = (username: string) => `Basic ${Buffer.from(`${username}:${PASSWORD}`).toString('base64')}`;

  before(async () => {
    cluster = await startTestCluster('rc');
  });

  after(async () => {
    await cluster?.close();
  });

  test('status shows every component answering, and reads served by the replica', async () => {
    const user = await createUser();
    await sleep(1_000);
    // Another client (the user itself) reads data that is already on the replica.
    for (let i = 0; i < 6; i += 1) assert.equal((await call(cluster.url, 'GET', `/v1/users/${user.id}`, basic(user.username))).status, 200);
    const found = await status(cluster.state.name);
    assert.ok(found);
    const lines = found.components.map(
      (component) => `${component.name} ${component.port} ${component.pid} ${component.answers} ${component.detail}`,
    );
    process.stderr.write(`# status:\n#   ${lines.join('\n#   ')}\n`);
    assert.deepEqual(
      found.components.map((component) => [component.name, component.answers, component.pid !== null]),
      [
        ['postgres primary', true, true],
        ['postgres replica', true, true],
        ['gatehouse-1', true, true],
        ['gatehouse-2', true, true],
        ['gatehouse-3', true, true],
        ['nginx', true, true],
      ],
    );
    assert.ok(
      found.components.some((component) => /reads: .*replica-1=[1-9]/.test(component.detail)),
      'an instance reports reads on the replica',
    );
  });

  test('a revoked session stops working on every other instance within a second', async () => {
    const user = await createUser();
    const signedIn = await call(cluster.url, 'POST', '/v1/sessions', '', { username: user.username, password: PASSWORD });
    assert.equal(signedIn.status, 201);
    const bearer = `Bearer ${String(signedIn.body.access_token)}`;
    const [through, ...others] = cluster.state.instances;
    assert.ok(through);
    for (const instance of cluster.state.instances) {
      assert.equal((await call(cluster.instanceUrl(instance), 'GET', '/v1/users/me', bearer)).status, 200);
    }
    const revoked = await call(cluster.instanceUrl(through), 'DELETE', '/v1/sessions/current', bearer);
    assert.equal(revoked.status, 204);
    const revokedAt = Date.now();
    const seenAfter: number[] = [];
    await Promise.all(
      others.map(async (instance) => {
        for (;;) {
          const answer = await call(cluster.instanceUrl(instance), 'GET', '/v1/users/me', bearer);
          if (answer.status === 401) return seenAfter.push(Date.now() - revokedAt);
          assert.equal(answer.status, 200);
          if (Date.now() - revokedAt > 5_000) return seenAfter.push(Number.POSITIVE_INFINITY);
          await sleep(25);
        }
      }),
    );
    process.stderr.write(`# revocation seen by the other instances after ${seenAfter.join(' ms, ')} ms\n`);
    assert.ok(
      seenAfter.every((ms) => ms <= 1_000),
      `every instance refuses the token within 1 s (${seenAfter.join(', ')} ms)`,
    );
  });

  test('with the replica 3 s behind, every read right after a write sees it', async () => {
    // A second admin, older than the delay, stands for another client of the same data.
    const other = await createUser({ roles: ['admin'] });
    await setReplayDelay(cluster.state, 3);
    // The delay is real: a user just created is not on the replica yet.
    await sleep(4_000);
    const probe = await createUser();
    const onReplica = await withClient(cluster.state.postgres.replica.port, async (client) => {
      return (await client.query('select 1 from users where id = $1', [probe.id])).rowCount;
    });
    assert.equal(onReplica, 0, 'the replica has not replayed the creation yet');

    const readsBefore = await readsByTarget(cluster);
    let stale = 0;
    for (let i = 0; i < 15; i += 1) {
      const user = await createUser();
      // nginx's round robin spreads these over the three instances.
      for (let j = 0; j < 3; j += 1) {
        const read = await call(cluster.url, 'GET', `/v1/users/${user.id}`, cluster.adminAuth);
        if (read.status !== 200 || read.body.username !== user.username) stale += 1;
      }
      const renamed = await call(cluster.url, 'PATCH', `/v1/users/${user.id}`, cluster.adminAuth, { display_name: `renamed ${i}` });
      assert.equal(renamed.status, 200);
      const listed = await call(cluster.url, 'GET', `/v1/users?q=${user.username}`, cluster.adminAuth);
      const item = (listed.body.items as { id: string; display_name: string }[] | undefined)?.find((entry) => entry.id === user.id);
      if (item?.display_name !== `renamed ${i}`) stale += 1;
      // Another client that echoes the writer's Gatehouse-Consistency token reads it as well.
      assert.ok(user.consistency, 'a write answers with a Gatehouse-Consistency token');
      const echoed = await call(cluster.url, 'GET', `/v1/users/${user.id}`, basic(other.username), undefined, {
        'gatehouse-consistency': user.consistency,
      });
      if (echoed.status !== 200) stale += 1;
      // And reads that need no recent write go to the replica.
      await call(cluster.url, 'GET', `/v1/users/${other.id}`, basic(other.username));
    }
    const readsAfter = await readsByTarget(cluster);
    process.stderr.write(`# reads by target before ${JSON.stringify(readsBefore)}, after ${JSON.stringify(readsAfter)}\n`);
    assert.equal(stale, 0, 'no read missed the write just made');
    assert.ok((readsAfter['replica-1'] ?? 0) > (readsBefore['replica-1'] ?? 0), 'the lagging replica served reads meanwhile');
    await setReplayDelay(cluster.state, 0);
  });

  test('with the replica stopped, reads move to the primary and none fails; it is used again once back', async () => {
    const replica = cluster.state.postgres.replica;
    await stopNode(cluster.state, replica);
    const stoppedAt = Date.now();
    const load = runLoad({ url: cluster.url, auth: cluster.adminAuth, usernamePrefix: `${prefix}s`, durationMs: 12_000, writeShare: 0.2 });
    await sleep(5_000);
    const readsAt5s = await readsByTarget(cluster);
    const result = await load;
    const readsAtEnd = await readsByTarget(cluster);
    process.stderr.write(
      `${summarize(result)}\n# reads 5 s after the stop ${JSON.stringify(readsAt5s)}, at the end ${JSON.stringify(readsAtEnd)}\n`,
    );

    const failed = result.outcomes.filter((outcome) => (outcome.method === 'GET' ? outcome.status !== 200 : outcome.status !== 201));
    assert.deepEqual(failed, [], 'no request fails while the replica is away');
    assert.ok((readsAtEnd.primary ?? 0) > (readsAt5s.primary ?? 0), 'the primary serves the reads');
    assert.equal(readsAtEnd['replica-1'] ?? 0, readsAt5s['replica-1'] ?? 0, 'no read goes to the stopped replica from 5 s on');
    for (const instance of cluster.state.instances) {
      const up = await metricByLabel(cluster.instanceUrl(instance), 'gatehouse_db_replica_up', 'replica');
      assert.equal(up['replica-1'], 0, `gatehouse-${instance.index} reports the replica down`);
    }
    process.stderr.write(`# replica was stopped for ${Date.now() - stoppedAt} ms\n`);

    await startNode(cluster.state, replica);
    const startedAt = Date.now();
    const deadline = startedAt + 30_000;
    for (const instance of cluster.state.instances) {
      for (;;) {
        const up = await metricByLabel(cluster.instanceUrl(instance), 'gatehouse_db_replica_up', 'replica');
        if (up['replica-1'] === 1) break;
        assert.ok(Date.now() < deadline, `gatehouse-${instance.index} takes the replica back by itself`);
        await sleep(250);
      }
    }
    process.stderr.write(`# every instance used the replica again ${Date.now() - startedAt} ms after its start\n`);
  });

  test('down stops every process, and deletes the Redis keys and the directory', async () => {
    const { state } = cluster;
    const pids = [
      ...state.instances.map((instance) => instance.pid),
      nodePid(state.postgres.primary),
      nodePid(state.postgres.replica),
      nginxPid(state.nginx),
    ];
    await cluster.close();
    assert.deepEqual(
      pids.filter((pid) => pid !== null && running(pid)),
      [],
      'no process of the cluster is left',
    );
    assert.equal(existsSync(state.dir), false);
    assert.equal(await deleteRedisKeys(state.redis.url, state.redis.keyPrefix), 0, 'no Redis key is left under its prefix');
  });
});
