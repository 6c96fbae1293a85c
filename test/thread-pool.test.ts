// GATEHOUSE_HASH_NICE (bin/gatehouse.cjs, src/lib/thread-pool.ts): `serve` runs libuv's thread pool,
// where argon2id hashes, at a lower CPU priority than the event loop, and no other thread. Read from
// the server's /proc/<pid>/task/*/stat, so Linux only (elsewhere the setting does nothing).
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { after, describe, test } from 'node:test';
import { threadTimes } from '../bench/lib/cpu-split.js';
import { setThreadPoolPriority } from '../src/lib/thread-pool.js';
import { createTestDatabase } from './helpers/databases.js';
import { killRemainingChildren, type Server, startServer } from './helpers/processes.js';

interface Thread {
  id: number;
  nice: number;
  /** User and system CPU time, in clock ticks. */
  cpu: number;
}

function threadsOf(pid: number): Thread[] {
  return [...threadTimes(pid)].map(([id, { ticks, nice }]) => ({ id, nice, cpu: ticks }));
}

const ADMIN_PASSWORD = 'thread-pool-admin-password-1';

async function signIn(server: Server): Promise<number> {
  const response = await fetch(`${server.base}/v1/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
  });
  await response.arrayBuffer();
  return response.status;
}

async function withServer(env: Record<string, string>, use: (server: Server) => Promise<void>): Promise<void> {
  const database = await createTestDatabase('sqlite');
  try {
    const server = await startServer({ DATABASE_URL: database.url, GATEHOUSE_ADMIN_PASSWORD: ADMIN_PASSWORD, ...env });
    try {
      await use(server);
    } finally {
      assert.equal(await server.stop(), 0);
    }
  } finally {
    await database.drop();
  }
}

describe('the thread pool priority', {
  skip: process.platform !== 'linux' && 'per-thread nice values are read from /proc: Linux only',
}, () => {
  after(killRemainingChildren);

  test('serve runs the pool at nice 10, and no other thread, and the hashes run on it', async () => {
    await withServer({ GATEHOUSE_PASSWORD_HASH_PROFILE: 'owasp', UV_THREADPOOL_SIZE: '4' }, async (server) => {
      const pid = server.child.pid as number;
      const before = threadsOf(pid);
      const lowered = before.filter((thread) => thread.nice === 10);
      assert.equal(lowered.length, 4, JSON.stringify(before));
      assert.deepEqual(
        before.filter((thread) => thread.nice !== 10).map((thread) => thread.nice),
        before.filter((thread) => thread.nice !== 10).map(() => 0),
      );
      assert.ok(!lowered.some((thread) => thread.id === pid), 'the event loop keeps its priority');
      assert.match(server.output().stdout, /"nice":10[^\n]*thread pool/);

      // Twelve argon2id verifies (m=19 MiB, t=2: tens of milliseconds of CPU each), one at a time.
      for (let i = 0; i < 12; i += 1) assert.equal(await signIn(server), 201);
      const cpuBefore = new Map(before.map((thread) => [thread.id, thread.cpu]));
      const used = (threads: Thread[]) => threads.reduce((sum, thread) => sum + thread.cpu - (cpuBefore.get(thread.id) ?? 0), 0);
      const now = threadsOf(pid);
      const loweredIds = new Set(lowered.map((thread) => thread.id));
      const onPool = used(now.filter((thread) => loweredIds.has(thread.id)));
      const elsewhere = used(now.filter((thread) => !loweredIds.has(thread.id) && thread.id !== pid));
      assert.ok(onPool >= 10, `the lowered threads used ${onPool} ticks for twelve hashes`);
      assert.ok(onPool > elsewhere, `the lowered threads used ${onPool} ticks, the other helper threads ${elsewhere}`);
    });
  });

  test('follows GATEHOUSE_HASH_NICE and UV_THREADPOOL_SIZE, and 0 leaves every thread alone', async () => {
    await withServer({ GATEHOUSE_PASSWORD_HASH_PROFILE: 'test', GATEHOUSE_HASH_NICE: '5', UV_THREADPOOL_SIZE: '6' }, async (server) => {
      const threads = threadsOf(server.child.pid as number);
      assert.equal(threads.filter((thread) => thread.nice === 5).length, 6, JSON.stringify(threads));
      assert.equal(threads.filter((thread) => thread.nice !== 5 && thread.nice !== 0).length, 0);
      assert.equal(await signIn(server), 201);
    });
    await withServer({ GATEHOUSE_PASSWORD_HASH_PROFILE: 'test', GATEHOUSE_HASH_NICE: '0' }, async (server) => {
      const threads = threadsOf(server.child.pid as number);
      assert.deepEqual(
        threads.map((thread) => thread.nice),
        threads.map(() => 0),
      );
      assert.match(server.output().stdout, /GATEHOUSE_HASH_NICE=0/);
    });
  });

  test('one hash a core by default, a pool thread for each, and one hash more handed to the pool', async () => {
    const cores = availableParallelism();
    // UV_THREADPOOL_SIZE empty: unset, whatever the environment running the tests has.
    await withServer({ GATEHOUSE_PASSWORD_HASH_PROFILE: 'test', UV_THREADPOOL_SIZE: '' }, async (server) => {
      assert.match(server.output().stdout, new RegExp(`"hashes_at_once":${cores},"handed_to_thread_pool":${cores + 1}[,}]`));
      const lowered = threadsOf(server.child.pid as number).filter((thread) => thread.nice === 10);
      assert.equal(lowered.length, cores);
    });
    // The threads follow GATEHOUSE_HASH_CONCURRENCY, so the hash handed ahead still waits for one.
    await withServer(
      { GATEHOUSE_PASSWORD_HASH_PROFILE: 'owasp', GATEHOUSE_HASH_CONCURRENCY: '2', UV_THREADPOOL_SIZE: '' },
      async (server) => {
        assert.match(server.output().stdout, /"hashes_at_once":2,"handed_to_thread_pool":3[,}]/);
        assert.equal(threadsOf(server.child.pid as number).filter((thread) => thread.nice === 10).length, 2);
        const statuses = await Promise.all(Array.from({ length: 6 }, () => signIn(server)));
        assert.deepEqual(statuses, [201, 201, 201, 201, 201, 201]);
      },
    );
    // A pool sized otherwise could run the extra hash beside the others: none is handed ahead.
    await withServer(
      { GATEHOUSE_PASSWORD_HASH_PROFILE: 'test', GATEHOUSE_HASH_CONCURRENCY: '2', UV_THREADPOOL_SIZE: '4' },
      async (server) => {
        assert.match(server.output().stdout, /"hashes_at_once":2,"handed_to_thread_pool":2[,}]/);
      },
    );
    // At the event loop's priority too, the extra hash only waits: it is still handed ahead.
    await withServer({ GATEHOUSE_PASSWORD_HASH_PROFILE: 'test', GATEHOUSE_HASH_NICE: '0', UV_THREADPOOL_SIZE: '' }, async (server) => {
      assert.match(server.output().stdout, new RegExp(`"hashes_at_once":${cores},"handed_to_thread_pool":${cores + 1}[,}]`));
    });
  });

  test('a process that bin/gatehouse.cjs did not start is left as it is, and says why', () => {
    const outcome = setThreadPoolPriority(10);
    assert.equal(outcome.nice, null);
    assert.match('why' in outcome ? outcome.why : '', /bin\/gatehouse\.cjs/);
  });
});
