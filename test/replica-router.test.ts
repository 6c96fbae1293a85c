// Where replica-eligible reads go, with servers simulated so that positions and failures are exact:
// a healthy, caught-up replica gets them; a replica behind the caller's position, lagging past
// the threshold, down, or refusing connections does not, and gets them again once it recovers.
// The real thing (streaming replication, nginx, three instances) is in test/cluster/.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type pg from 'pg';
import { createReplicaRouter, formatLsn, type Lsn, parseLsn, readsFromReplica } from '../src/db/replicas.js';

interface FakeServer {
  name: string;
  lsn: Lsn | null;
  down: boolean;
  refuseConnections: boolean;
  pool: pg.Pool;
}

function fakeServer(name: string, replica: boolean): FakeServer {
  const server: FakeServer = {
    name,
    lsn: 0x1000n,
    down: false,
    refuseConnections: false,
    pool: undefined as unknown as pg.Pool,
  };
  const fail = () => Object.assign(new Error(`connect ECONNREFUSED (${name})`), { code: 'ECONNREFUSED' });
  server.pool = {
    async query(text: string) {
      if (server.down) throw fail();
      const wanted = replica ? text.includes('pg_last_wal_replay_lsn') : text.includes('pg_current_wal_lsn');
      assert.ok(wanted, `${name} was asked ${text}`);
      return { rows: [{ lsn: server.lsn === null ? null : formatLsn(server.lsn) }] };
    },
    async connect() {
      if (server.down || server.refuseConnections) throw fail();
      return { name, release() {} };
    },
    async end() {},
  } as unknown as pg.Pool;
  return server;
}

function setup(replicaCount = 1, maxLagSeconds = 5) {
  const primary = fakeServer('primary', false);
  const replicas = Array.from({ length: replicaCount }, (_, i) => fakeServer(`replica-${i + 1}`, true));
  const reads: string[] = [];
  const changes: string[] = [];
  const router = createReplicaRouter({
    primary: primary.pool,
    replicas: replicas.map((server) => ({ name: server.name, pool: server.pool })),
    maxLagSeconds,
    pollIntervalMs: 3_600_000, // polled by hand below
    onRead: (target) => reads.push(target),
    onStateChange: (state, reason) => changes.push(`${state.name} ${state.up ? 'up' : 'down'}: ${reason}`),
  });
  const served = async (minimum: Lsn | null = null) =>
    readsFromReplica(minimum, async () => {
      const client = (await router.pool.connect()) as unknown as { name: string };
      return client.name;
    });
  return { primary, replicas, router, reads, changes, served };
}

describe('read replica routing', () => {
  test('LSNs parse and print in PostgreSQL form, and compare as positions', () => {
    assert.equal(parseLsn('16/B374D848'), 0x16b374d848n);
    assert.equal(formatLsn(0x16b374d848n), '16/B374D848');
    assert.ok((parseLsn('0/10') as Lsn) < (parseLsn('1/0') as Lsn));
    assert.equal(parseLsn('garbage'), null);
    assert.equal(parseLsn(null), null);
  });

  test('outside a replica read, every connection is the primary', async () => {
    const { router, replicas } = setup();
    await router.poll();
    assert.equal(router.states()[0]?.up, true, 'the replica is healthy');
    const client = (await router.pool.connect()) as unknown as { name: string };
    assert.equal(client.name, 'primary');
    assert.equal(replicas.length, 1);
    await router.pool.end();
  });

  test('a caught-up replica serves replica reads, round-robin across replicas, counted by target', async () => {
    const { router, served, reads } = setup(2);
    await router.poll();
    assert.deepEqual([await served(), await served(), await served()], ['replica-1', 'replica-2', 'replica-1']);
    assert.deepEqual(reads, ['replica-1', 'replica-2', 'replica-1']);
    await router.pool.end();
  });

  test('a read that needs a position the replica has not replayed goes to the primary (read-your-writes)', async () => {
    const { router, served, primary, replicas } = setup();
    await router.poll();
    primary.lsn = 0x2000n; // a write committed on the primary
    assert.equal(await served(0x2000n), 'primary', 'the replica has not replayed the write yet');
    assert.equal(await served(0x0800n), 'replica-1', 'an older position is on the replica');
    (replicas[0] as FakeServer).lsn = 0x2000n;
    await router.poll();
    assert.equal(await served(0x2000n), 'replica-1', 'replayed now');
    await router.pool.end();
  });

  test('a replica lagging past the threshold gets no reads, and gets them again once it catches up', async () => {
    const { router, served, primary, replicas, changes } = setup(1, 1);
    await router.poll();
    primary.lsn = 0x3000n;
    await router.poll(); // the primary has moved on; the replica has not replayed it
    await new Promise((resolve) => setTimeout(resolve, 1_300));
    await router.poll();
    const lagging = router.states()[0];
    assert.equal(lagging?.up, false);
    assert.ok((lagging?.lagSeconds ?? 0) > 1, `lag ${lagging?.lagSeconds}`);
    assert.equal(await served(), 'primary');
    (replicas[0] as FakeServer).lsn = 0x3000n;
    await router.poll();
    assert.equal(router.states()[0]?.up, true);
    assert.equal(router.states()[0]?.lagSeconds, 0);
    assert.equal(await served(), 'replica-1');
    assert.match(changes.join('\n'), /replica-1 down: lags 1\.\d s\nreplica-1 up/);
    await router.pool.end();
  });

  test('a replica that is down gets no reads; one that refuses a connection is taken out at once; both come back', async () => {
    const { router, served, replicas } = setup(2);
    const [first, second] = replicas as [FakeServer, FakeServer];
    await router.poll();
    first.down = true;
    await router.poll();
    assert.deepEqual(
      router.states().map((state) => state.up),
      [false, true],
    );
    assert.deepEqual([await served(), await served()], ['replica-2', 'replica-2']);
    second.refuseConnections = true;
    assert.equal(await served(), 'primary', 'the refused read still succeeds, on the primary');
    assert.equal(router.states()[1]?.up, false);
    first.down = false;
    second.refuseConnections = false;
    await router.poll();
    assert.deepEqual(
      router.states().map((state) => state.up),
      [true, true],
    );
    await router.pool.end();
  });

  test('a server that is not in recovery (no replay position) is never used as a replica', async () => {
    const { router, served, replicas } = setup();
    (replicas[0] as FakeServer).lsn = null;
    await router.poll();
    assert.equal(router.states()[0]?.up, false);
    assert.equal(await served(), 'primary');
    await router.pool.end();
  });

  test('with the primary away, caught-up replicas keep serving reads', async () => {
    const { router, served, primary } = setup();
    await router.poll();
    primary.down = true;
    await router.poll();
    assert.equal(router.states()[0]?.up, true);
    assert.equal(await served(), 'replica-1');
    await router.pool.end();
  });
});
