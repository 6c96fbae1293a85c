// The per-instance memory of answers to GET /v1/users (list-cache.ts): an admin polling the same
// page gets it without a database read, but a change through any instance is listed at once by that
// instance and, with Redis, by the others; nothing outlives GATEHOUSE_USER_LIST_CACHE_MS; and a read
// that must see particular writes (read replicas) never comes from the cache.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { readsFromReplica } from '../src/db/replicas.js';
import { createUserListCache } from '../src/modules/users/list-cache.js';
import { ADMIN, bearer, buildTestApp, type TestApp } from './helpers/app.js';
import { createTestDatabase, targets } from './helpers/databases.js';
import { ndjson, upload } from './helpers/imports.js';
import { cleanup, redisSkip, redisUrl, uniquePrefix } from './helpers/redis.js';
import { sleep } from './helpers/sessions.js';

function counting(body: () => string) {
  const load = async () => {
    load.calls += 1;
    return body();
  };
  load.calls = 0;
  return load;
}

describe('the user list cache', () => {
  test('a page is loaded once within the TTL, and again after it', async () => {
    const cache = createUserListCache<string>(50);
    const load = counting(() => 'page');
    assert.equal(await cache.page('/v1/users', load), 'page');
    assert.equal(await cache.page('/v1/users', load), 'page');
    assert.equal(load.calls, 1);
    await sleep(60);
    await cache.page('/v1/users', load);
    assert.equal(load.calls, 2);
  });

  test('different queries are different pages', async () => {
    const cache = createUserListCache<string>(1_000);
    const load = counting(() => 'page');
    await cache.page('/v1/users?limit=1', load);
    await cache.page('/v1/users?limit=2', load);
    assert.equal(load.calls, 2);
    assert.equal(cache.size, 2);
  });

  test('clear() forgets every page', async () => {
    const cache = createUserListCache<string>(1_000);
    let version = 1;
    const load = counting(() => `v${version}`);
    await cache.page('a', load);
    await cache.page('b', load);
    version = 2;
    cache.clear();
    assert.equal(cache.size, 0);
    assert.equal(await cache.page('a', load), 'v2');
  });

  test('a read that a clear() overtook is not stored', async () => {
    const cache = createUserListCache<string>(1_000);
    let release: () => void = () => {};
    const slow = async () => {
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      return 'before the change';
    };
    const pending = cache.page('a', slow);
    await sleep(5);
    cache.clear();
    release();
    assert.equal(await pending, 'before the change', 'the request that raced still gets its own answer');
    assert.equal(cache.size, 0);
    assert.equal(await cache.page('a', async () => 'after the change'), 'after the change');
  });

  test('requests that miss while a page is being read wait for that read', async () => {
    const cache = createUserListCache<string>(1_000);
    const load = counting(() => 'page');
    const bodies = await Promise.all(Array.from({ length: 30 }, () => cache.page('/v1/users', load)));
    assert.deepEqual(
      bodies,
      bodies.map(() => 'page'),
    );
    assert.equal(load.calls, 1);

    // A request after a clear() does not take a read that started before it.
    let release = () => {};
    const slow = new Promise<void>((resolve) => {
      release = resolve;
    });
    const before = cache.page('/v1/users?limit=5', async () => {
      await slow;
      return 'old';
    });
    cache.clear();
    const after = cache.page('/v1/users?limit=5', async () => 'new');
    release();
    assert.equal(await before, 'old');
    assert.equal(await after, 'new');
    assert.equal(cache.cached('/v1/users?limit=5'), 'new');

    const failing = counting(() => {
      throw new Error('the database did not answer');
    });
    const failures = await Promise.allSettled([cache.page('/v1/users?limit=9', failing), cache.page('/v1/users?limit=9', failing)]);
    assert.deepEqual(
      failures.map((each) => each.status),
      ['rejected', 'rejected'],
    );
    assert.equal(failing.calls, 1);
    await assert.rejects(cache.page('/v1/users?limit=9', failing), /did not answer/);
    assert.equal(failing.calls, 2, 'a failed read is not kept');
  });

  test('cached() answers at once only a stored page, while it is valid', async () => {
    const cache = createUserListCache<string>(50);
    assert.equal(cache.cached('a'), undefined);
    await cache.page('a', async () => 'page');
    assert.equal(cache.cached('a'), 'page');
    assert.equal(cache.cached('b'), undefined);
    cache.clear();
    assert.equal(cache.cached('a'), undefined, 'cleared');
    await cache.page('a', async () => 'page');
    await sleep(60);
    assert.equal(cache.cached('a'), undefined, 'past the TTL');
    assert.equal(createUserListCache<string>(0).cached('a'), undefined);
  });

  test('a read that must see a write position (read replicas) neither uses nor fills the cache', async () => {
    const cache = createUserListCache<string>(1_000);
    const load = counting(() => 'page');
    await cache.page('a', load);
    assert.equal(await readsFromReplica(42n, async () => cache.cached('a')), undefined);
    await readsFromReplica(42n, () => cache.page('a', load));
    assert.equal(load.calls, 2, 'not answered from the cache');
    await readsFromReplica(42n, () => cache.page('b', load));
    assert.equal(cache.size, 1, 'not stored');
    // A replica read with nothing in particular to see may use it.
    await readsFromReplica(null, () => cache.page('a', load));
    assert.equal(load.calls, 3);
  });

  test('at most 200 pages are kept, the oldest dropped first', async () => {
    const cache = createUserListCache<string>(1_000);
    for (let n = 0; n < 250; n++) await cache.page(`q${n}`, async () => `p${n}`);
    assert.equal(cache.size, 200);
    const load = counting(() => 'again');
    assert.equal(await cache.page('q0', load), 'again');
    assert.equal(await cache.page('q249', load), 'p249');
  });

  test('a TTL of 0 reads every time and stores nothing', async () => {
    const cache = createUserListCache<string>(0);
    const load = counting(() => 'page');
    await cache.page('a', load);
    await cache.page('a', load);
    assert.equal(load.calls, 2);
    assert.equal(cache.size, 0);
  });
});

async function listed(
  t: TestApp,
  query: string,
): Promise<{ id: string; username: string; display_name: string | null; last_login_at: string | null }[]> {
  const response = await t.app.inject({ url: `/v1/users?${query}`, headers: { authorization: t.adminBasic } });
  assert.equal(response.statusCode, 200, response.body);
  assert.match(String(response.headers['content-type']), /^application\/json; charset=utf-8$/);
  return response.json().items;
}

const skipRedis = await redisSkip();

for (const { target, skip } of await targets()) {
  if (target === 'postgres') {
    // With replicas configured, the list route runs inside the read-consistency wrapper (an async
    // handler around it), and answers from the cache without a promise of its own: each answer must
    // still be sent once, whole. The primary stands in for the replica (it is never used as one).
    describe('cached user lists with read replicas configured', { skip }, () => {
      test('answers from memory and from the database are sent once, whole', async () => {
        const database = await createTestDatabase('postgres');
        const app = await buildTestApp('postgres', { userListCacheMilliseconds: 1_000, databaseReplicaUrls: [database.url] }, { database });
        try {
          const user = await app.createUser();
          const bodies: string[] = [];
          for (let n = 0; n < 3; n++) {
            const response = await app.app.inject({
              method: 'GET',
              url: `/v1/users?q=${user.username}`,
              headers: { authorization: app.adminBasic },
            });
            assert.equal(response.statusCode, 200, response.body);
            bodies.push(response.body);
          }
          assert.equal(JSON.parse(bodies[0] ?? '').items[0]?.id, user.id);
          assert.deepEqual(bodies.slice(1), [bodies[0], bodies[0]], 'the same page, whole, each time');
          const { access_token } = await app.signIn(user.username, user.password);
          for (let n = 0; n < 2; n++) {
            const me = await app.app.inject({ method: 'GET', url: '/v1/users/me', headers: { authorization: bearer(access_token) } });
            assert.equal(me.statusCode, 200, me.body);
            assert.equal(JSON.parse(me.body).id, user.id);
          }
          assert.ok(!app.logs.some((line) => line.includes('FST_ERR_REP_ALREADY_SENT')), 'no reply was sent twice');
        } finally {
          await app.close();
        }
      });
    });
  }

  describe(`cached user lists on ${target}`, { skip }, () => {
    test('creations, changes, sign-ins, deletions and imports through this instance are listed on its next request', async () => {
      const app = await buildTestApp(target, { userListCacheMilliseconds: 1_000 });
      try {
        const prefix = `lc${Date.now().toString(36)}`;
        const query = `q=${prefix}&limit=100`;
        assert.deepEqual(await listed(app, query), []);

        const user = await app.createUser({ username: `${prefix}a` });
        assert.deepEqual(
          (await listed(app, query)).map((each) => each.id),
          [user.id],
        );

        const patched = await app.app.inject({
          method: 'PATCH',
          url: `/v1/users/${user.id}`,
          headers: { authorization: app.adminBasic },
          payload: { display_name: 'Listed At Once' },
        });
        assert.equal(patched.statusCode, 200, patched.body);
        assert.equal((await listed(app, query))[0]?.display_name, 'Listed At Once');

        await app.signIn(user.username, user.password);
        assert.ok((await listed(app, query))[0]?.last_login_at, 'the sign-in time is listed');

        const imported = await upload(
          app,
          ndjson([{ username: `${prefix}b`, email: `${prefix}b@example.com`, password: 'imported-password-1' }]),
        );
        assert.equal(imported.statusCode, 202, imported.body);
        await app.services.importWorker.drain();
        assert.deepEqual(
          (await listed(app, query)).map((each) => each.username),
          [`${prefix}a`, `${prefix}b`],
        );

        const deleted = await app.app.inject({ method: 'DELETE', url: `/v1/users/${user.id}`, headers: { authorization: app.adminBasic } });
        assert.equal(deleted.statusCode, 204, deleted.body);
        assert.deepEqual(
          (await listed(app, query)).map((each) => each.username),
          [`${prefix}b`],
        );
      } finally {
        await app.close();
      }
    });

    test('a page answered from memory is the same bytes, with the same JSON type and byte length, as the one read', async () => {
      const app = await buildTestApp(target, { userListCacheMilliseconds: 60_000 });
      try {
        // Characters of two, three and four bytes in UTF-8: Content-Length counts bytes, not characters.
        const user = await app.createUser({ display_name: 'Zoë Ōkubo 🙂 ✓' });
        const url = `/v1/users?q=${user.username}`;
        const get = () => app.app.inject({ method: 'GET', url, headers: { authorization: app.adminBasic } });
        const read = await get();
        await app.services.database.db
          .updateTable('users')
          .set({ display_name: 'Edited In The Database' })
          .where('id', '=', user.id)
          .execute();
        const remembered = await get();
        for (const response of [read, remembered]) {
          assert.equal(response.statusCode, 200, response.body);
          assert.equal(response.headers['content-type'], 'application/json; charset=utf-8');
          assert.equal(Number(response.headers['content-length']), response.rawPayload.length);
        }
        assert.equal(JSON.parse(read.body).items[0]?.display_name, 'Zoë Ōkubo 🙂 ✓');
        assert.ok(remembered.rawPayload.equals(read.rawPayload), 'the page from memory (the edit is not in it yet) is the page read');
      } finally {
        await app.close();
      }
    });

    test('the same query is answered from memory, and a change made straight in the database is listed within the TTL', async () => {
      const app = await buildTestApp(target, { userListCacheMilliseconds: 300 });
      try {
        const user = await app.createUser();
        const query = `q=${user.username}`;
        assert.equal((await listed(app, query))[0]?.display_name, user.display_name ?? null);
        await app.services.database.db
          .updateTable('users')
          .set({ display_name: 'Edited In The Database' })
          .where('id', '=', user.id)
          .execute();
        // Nothing announced this edit: the page read a moment ago is still the answer...
        assert.equal((await listed(app, query))[0]?.display_name, user.display_name ?? null);
        await sleep(350);
        // ...until it expires.
        assert.equal((await listed(app, query))[0]?.display_name, 'Edited In The Database');
      } finally {
        await app.close();
      }
    });

    test('with GATEHOUSE_USER_LIST_CACHE_MS=0 every request reads the database', async () => {
      const app = await buildTestApp(target, { userListCacheMilliseconds: 0 });
      try {
        const user = await app.createUser();
        const query = `q=${user.username}`;
        await listed(app, query);
        await app.services.database.db.updateTable('users').set({ display_name: 'Read Every Time' }).where('id', '=', user.id).execute();
        assert.equal((await listed(app, query))[0]?.display_name, 'Read Every Time');
        assert.equal(app.services.userPages.size, 0);
      } finally {
        await app.close();
      }
    });

    test('a Bearer admin and a Basic admin get the same page, and a non-admin is still refused', async () => {
      const app = await buildTestApp(target, { userListCacheMilliseconds: 1_000 });
      try {
        const member = await app.createUser();
        const query = `q=${member.username}`;
        const basic = await listed(app, query);
        const token = (await app.signIn(ADMIN.username, ADMIN.password)).access_token;
        const viaBearer = await app.app.inject({ url: `/v1/users?${query}`, headers: { authorization: bearer(token) } });
        assert.equal(viaBearer.statusCode, 200);
        assert.deepEqual(viaBearer.json().items, basic);
        const memberToken = (await app.signIn(member.username, member.password)).access_token;
        const refused = await app.app.inject({ url: `/v1/users?${query}`, headers: { authorization: bearer(memberToken) } });
        assert.equal(refused.statusCode, 403);
      } finally {
        await app.close();
      }
    });

    test('with Redis, a change and an import through one instance are listed by another at once', { skip: skipRedis }, async () => {
      const redisKeyPrefix = uniquePrefix();
      // The TTL is long enough that only the announcement can explain a prompt listing.
      const settings = { userListCacheMilliseconds: 1_000, redisUrl: redisUrl(), redisKeyPrefix };
      const one = await buildTestApp(target, settings);
      const other = await buildTestApp(target, settings, { database: one.database });
      try {
        const prefix = `lr${Date.now().toString(36)}`;
        const query = `q=${prefix}&limit=100`;
        await sleep(100); // the subscriptions are up
        assert.deepEqual(await listed(other, query), []);

        const listedBy = async (t: TestApp, username: string) => {
          const started = Date.now();
          while (Date.now() - started < 500) {
            if ((await listed(t, query)).some((each) => each.username === username)) return true;
            await sleep(5);
          }
          return false;
        };
        await one.createUser({ username: `${prefix}a` });
        assert.ok(await listedBy(other, `${prefix}a`), 'listed by the other instance before its page could expire');

        const imported = await upload(
          one,
          ndjson([{ username: `${prefix}b`, email: `${prefix}b@example.com`, password: 'imported-password-1' }]),
        );
        assert.equal(imported.statusCode, 202, imported.body);
        await one.services.importWorker.drain();
        assert.ok(await listedBy(other, `${prefix}b`), 'an import is announced too');
      } finally {
        await other.close();
        await one.close();
        await cleanup(redisKeyPrefix);
      }
    });
  });
}
