// The per-instance memory of what authentication read (caller-cache.ts): it saves database reads
// under load, but a change made through any instance is seen at once by that instance and, with
// Redis, by the others; and nothing outlives GATEHOUSE_AUTH_CACHE_MS.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createCallerCache, type LiveSession } from '../src/modules/sessions/caller-cache.js';
import type { UserRow } from '../src/modules/users/users.repository.js';
import { bearer, buildTestApp } from './helpers/app.js';
import { targets } from './helpers/databases.js';
import { cleanup, redisSkip, redisUrl, uniquePrefix } from './helpers/redis.js';
import { assertUnauthorized, me, sleep } from './helpers/sessions.js';

const row = (id: string, email = `${id}@example.com`) => ({ id, email }) as unknown as UserRow;

function counting<T>(value: () => T) {
  const load = async () => {
    load.calls += 1;
    return value();
  };
  load.calls = 0;
  return load;
}

describe('the caller cache', () => {
  test('a session is read once within the TTL, and again after it', async () => {
    const cache = createCallerCache(50);
    const load = counting<LiveSession>(() => ({ user: row('u1'), expiresAt: Date.now() + 60_000 }));
    assert.equal((await cache.session('s1', 'u1', load))?.id, 'u1');
    assert.equal((await cache.session('s1', 'u1', load))?.id, 'u1');
    assert.equal(load.calls, 1);
    await sleep(60);
    await cache.session('s1', 'u1', load);
    assert.equal(load.calls, 2);
  });

  test('cachedSession() and cachedUser() answer at once only what a read stored, while it is valid', async () => {
    const cache = createCallerCache(50);
    assert.equal(cache.cachedSession('s1', 'u1'), undefined, 'nothing read yet');
    assert.equal(cache.cachedUser('u1'), undefined);
    await cache.session('s1', 'u1', async () => ({ user: row('u1'), expiresAt: Date.now() + 60_000 }));
    await cache.user('u1', async () => row('u1'));
    assert.equal(cache.cachedSession('s1', 'u1')?.id, 'u1');
    assert.equal(cache.cachedSession('s1', 'u2'), undefined, "another user's token for the same session");
    assert.equal(cache.cachedUser('u1')?.id, 'u1');
    cache.forget('u1');
    assert.equal(cache.cachedSession('s1', 'u1'), undefined, 'forgotten');
    assert.equal(cache.cachedUser('u1'), undefined);
    await cache.session('s1', 'u1', async () => ({ user: row('u1'), expiresAt: Date.now() + 60_000 }));
    await cache.user('u1', async () => row('u1'));
    await sleep(60);
    assert.equal(cache.cachedSession('s1', 'u1'), undefined, 'past the TTL');
    assert.equal(cache.cachedUser('u1'), undefined);
  });

  test('a session that expires is not served from the cache', async () => {
    const cache = createCallerCache(1_000);
    let expiresAt = Date.now() + 30;
    const load = counting<LiveSession | undefined>(() => (Date.now() < expiresAt ? { user: row('u1'), expiresAt } : undefined));
    assert.ok(await cache.session('s1', 'u1', load));
    await sleep(40);
    assert.equal(await cache.session('s1', 'u1', load), undefined);
    expiresAt = 0;
  });

  test("a session that belongs to another user than the token's is refused", async () => {
    const cache = createCallerCache(1_000);
    const load = async () => ({ user: row('u2'), expiresAt: Date.now() + 60_000 });
    assert.equal(await cache.session('s1', 'u1', load), undefined);
    assert.equal(cache.size, 0);
  });

  test("changed() forgets the user's sessions and row here and announces the user", async () => {
    const announced: string[] = [];
    const cache = createCallerCache(1_000, (userId) => announced.push(userId));
    const load = counting<LiveSession>(() => ({ user: row('u1'), expiresAt: Date.now() + 60_000 }));
    const loadOther = counting<LiveSession>(() => ({ user: row('u2'), expiresAt: Date.now() + 60_000 }));
    const loadRow = counting(() => row('u1'));
    await cache.session('s1', 'u1', load);
    await cache.session('s2', 'u2', loadOther);
    await cache.user('u1', loadRow);
    cache.changed('u1');
    assert.deepEqual(announced, ['u1']);
    await cache.session('s1', 'u1', load);
    await cache.session('s2', 'u2', loadOther);
    await cache.user('u1', loadRow);
    assert.equal(load.calls, 2, 'read again after the change');
    assert.equal(loadRow.calls, 2, 'read again after the change');
    assert.equal(loadOther.calls, 1, 'another user stays cached');
  });

  test('a read that started before a change is not stored when it finishes', async () => {
    const cache = createCallerCache(1_000);
    let release = () => {};
    const slow = new Promise<void>((resolve) => {
      release = resolve;
    });
    const stale = cache.user('u1', async () => {
      await slow;
      return row('u1', 'old@example.com');
    });
    cache.changed('u1');
    release();
    assert.equal((await stale)?.email, 'old@example.com', 'the racing request itself gets what it read');
    assert.equal((await cache.user('u1', async () => row('u1', 'new@example.com')))?.email, 'new@example.com');
  });

  test('clear() forgets everything, including reads in flight', async () => {
    const cache = createCallerCache(1_000);
    const load = counting(() => row('u1'));
    await cache.user('u1', load);
    const inFlight = cache.user('u2', async () => row('u2'));
    cache.clear();
    await inFlight;
    assert.equal(cache.size, 0);
    await cache.user('u1', load);
    assert.equal(load.calls, 2);
  });

  test('a TTL of 0 reads every time and stores nothing', async () => {
    const cache = createCallerCache(0);
    const load = counting(() => row('u1'));
    await cache.user('u1', load);
    await cache.user('u1', load);
    assert.equal(load.calls, 2);
    assert.equal(cache.size, 0);
    // Not even requests at the same moment share a read.
    await Promise.all([cache.user('u1', load), cache.user('u1', load)]);
    assert.equal(load.calls, 4);
  });

  test('requests that miss while a read is under way wait for it instead of reading again', async () => {
    const cache = createCallerCache(1_000);
    const sessionLoad = counting<LiveSession>(() => ({ user: row('u1'), expiresAt: Date.now() + 60_000 }));
    const users = await Promise.all(Array.from({ length: 30 }, () => cache.session('s1', 'u1', sessionLoad)));
    assert.deepEqual(
      users.map((user) => user?.id),
      users.map(() => 'u1'),
    );
    assert.equal(sessionLoad.calls, 1);
    // A token naming another user for the same session takes no part in that read, and gets nothing.
    const other = counting<LiveSession>(() => ({ user: row('u1'), expiresAt: Date.now() + 60_000 }));
    assert.equal(await cache.session('s1', 'u2', other), undefined);
    assert.equal(other.calls, 1);

    const userLoad = counting(() => row('u3'));
    await Promise.all(Array.from({ length: 30 }, () => cache.user('u3', userLoad)));
    assert.equal(userLoad.calls, 1);

    const failing = counting<UserRow>(() => {
      throw new Error('the database did not answer');
    });
    const failures = await Promise.allSettled([cache.user('u4', failing), cache.user('u4', failing)]);
    assert.deepEqual(
      failures.map((each) => each.status),
      ['rejected', 'rejected'],
    );
    assert.equal(failing.calls, 1);
    await assert.rejects(cache.user('u4', failing), /did not answer/);
    assert.equal(failing.calls, 2, 'a failed read is not kept: the next request reads again');
  });

  test('a request after a change does not take a read that started before it', async () => {
    const cache = createCallerCache(1_000);
    let release = () => {};
    const slow = new Promise<void>((resolve) => {
      release = resolve;
    });
    const before = cache.session('s1', 'u1', async () => {
      await slow;
      return { user: row('u1', 'old@example.com'), expiresAt: Date.now() + 60_000 };
    });
    const beforeUser = cache.user('u1', async () => {
      await slow;
      return row('u1', 'old@example.com');
    });
    cache.changed('u1');
    const fresh = { user: row('u1', 'new@example.com'), expiresAt: Date.now() + 60_000 };
    const after = cache.session('s1', 'u1', async () => fresh);
    const afterUser = cache.user('u1', async () => fresh.user);
    release();
    assert.equal((await before)?.email, 'old@example.com');
    assert.equal((await beforeUser)?.email, 'old@example.com');
    assert.equal((await after)?.email, 'new@example.com');
    assert.equal((await afterUser)?.email, 'new@example.com');
    assert.equal(cache.cachedSession('s1', 'u1')?.email, 'new@example.com');
    assert.equal(cache.cachedUser('u1')?.email, 'new@example.com');
  });
});

const skipRedis = await redisSkip();

for (const { target, skip } of await targets()) {
  describe(`cached authentication on ${target}`, { skip }, () => {
    test('a sign-out, a disable and a profile change are seen on the next request of this instance', async () => {
      const app = await buildTestApp(target, { authCacheMilliseconds: 1_000 });
      try {
        const user = await app.createUser();
        const first = await app.signIn(user.username, user.password);
        const second = await app.signIn(user.username, user.password);
        assert.equal((await me(app, bearer(first.access_token))).statusCode, 200);
        assert.equal((await me(app, bearer(second.access_token))).statusCode, 200);

        const patched = await app.app.inject({
          method: 'PATCH',
          url: `/v1/users/${user.id}`,
          headers: { authorization: bearer(second.access_token) },
          payload: { display_name: 'Changed Name' },
        });
        assert.equal(patched.statusCode, 200);
        assert.equal((await me(app, bearer(first.access_token))).json().display_name, 'Changed Name');

        const out = await app.app.inject({
          method: 'DELETE',
          url: '/v1/sessions/current',
          headers: { authorization: bearer(first.access_token) },
        });
        assert.equal(out.statusCode, 204);
        assertUnauthorized(await me(app, bearer(first.access_token)));
        assert.equal((await me(app, bearer(second.access_token))).statusCode, 200);

        const disabled = await app.app.inject({
          method: 'PATCH',
          url: `/v1/users/${user.id}`,
          headers: { authorization: app.adminBasic },
          payload: { status: 'disabled' },
        });
        assert.equal(disabled.statusCode, 200);
        assertUnauthorized(await me(app, bearer(second.access_token)));
      } finally {
        await app.close();
      }
    });

    test('a change made straight in the database is seen within GATEHOUSE_AUTH_CACHE_MS', async () => {
      const app = await buildTestApp(target, { authCacheMilliseconds: 300 });
      try {
        const user = await app.createUser();
        const { access_token } = await app.signIn(user.username, user.password);
        assert.equal((await me(app, bearer(access_token))).statusCode, 200);
        await app.services.database.db.updateTable('sessions').set({ revoked_at: new Date().toISOString() }).execute();
        await sleep(350);
        assertUnauthorized(await me(app, bearer(access_token)));
      } finally {
        await app.close();
      }
    });

    test('with Redis, a change through one instance is seen by another at once', { skip: skipRedis }, async () => {
      const redisKeyPrefix = uniquePrefix();
      // The TTL is long enough that only the announcement can explain a prompt refusal.
      const settings = { authCacheMilliseconds: 1_000, redisUrl: redisUrl(), redisKeyPrefix };
      const one = await buildTestApp(target, settings);
      const other = await buildTestApp(target, settings, { database: one.database });
      try {
        const user = await one.createUser();
        const { access_token } = await one.signIn(user.username, user.password);
        await sleep(100); // the subscriptions are up
        assert.equal((await me(other, bearer(access_token))).statusCode, 200);
        assert.equal((await me(one, bearer(access_token))).statusCode, 200);
        const out = await one.app.inject({
          method: 'DELETE',
          url: '/v1/sessions/current',
          headers: { authorization: bearer(access_token) },
        });
        assert.equal(out.statusCode, 204);
        const started = Date.now();
        let status = 200;
        while (status === 200 && Date.now() - started < 500) {
          status = (await me(other, bearer(access_token))).statusCode;
          if (status === 200) await sleep(5);
        }
        assert.equal(status, 401, 'refused by the other instance before its cached entry could expire');
      } finally {
        await other.close();
        await one.close();
        await cleanup(redisKeyPrefix);
      }
    });
  });
}
