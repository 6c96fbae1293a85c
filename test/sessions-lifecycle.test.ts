// Login timestamps, stored-hash upgrades, signing keys, several instances on one database and
// restarts, on every database target; and the production hash parameters once.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import argon2 from 'argon2';
import { createLocalJWKSet, decodeProtectedHeader, type JSONWebKeySet, jwtVerify } from 'jose';
import { createPasswordHasher } from '../src/modules/sessions/passwords.js';
import { bearer, buildTestApp, type TestApp, type TestUser } from './helpers/app.js';
import { targets } from './helpers/databases.js';
import {
  assertUnauthorized,
  eventually,
  iso,
  logins,
  me,
  phcParameters,
  refresh,
  setStatus,
  signInResponse,
  sleep,
  storedUser,
} from './helpers/sessions.js';

for (const { target, skip } of await targets()) {
  describe(`sessions on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target);
    });
    after(async () => t?.close());

    describe('login timestamps', () => {
      test('a sign-in sets last_login_at and records a password login event', async () => {
        const user = await t.createUser();
        assert.equal(user.last_login_at, null);
        const response = await t.app.inject({
          method: 'POST',
          url: '/v1/sessions',
          headers: { 'user-agent': 'sessions-test/1.0' },
          payload: { username: user.username, password: user.password },
        });
        assert.equal(response.statusCode, 201, response.body);
        const row = await storedUser(t, user.id);
        assert.ok(row.last_login_at);
        assert.equal(response.json().user.last_login_at, iso(row.last_login_at));
        const events = await logins(t, user.id);
        assert.equal(events.length, 1);
        assert.equal(events[0]?.success, true);
        assert.equal(events[0]?.method, 'password');
        assert.equal(events[0]?.at, iso(row.last_login_at));
        assert.equal(events[0]?.user_agent, 'sessions-test/1.0');
      });

      test('a sign-in with a Basic header records a basic login event', async () => {
        const user = await t.createUser();
        const response = await t.app.inject({
          method: 'POST',
          url: '/v1/sessions',
          headers: { authorization: t.basic(user.username, user.password) },
        });
        assert.equal(response.statusCode, 201, response.body);
        const events = await logins(t, user.id);
        assert.equal(events.length, 1);
        assert.equal(events[0]?.method, 'basic');
        assert.equal(events[0]?.success, true);
        assert.ok((await storedUser(t, user.id)).last_login_at);
      });

      test('a failed sign-in of a known user is recorded as unsuccessful and sets no login time', async () => {
        const user = await t.createUser();
        assertUnauthorized(await signInResponse(t, { username: user.username, password: `${user.password}-wrong` }));
        const events = await logins(t, user.id);
        assert.equal(events.length, 1);
        assert.equal(events[0]?.success, false);
        assert.equal((await storedUser(t, user.id)).last_login_at, null);
      });

      test('a Basic request sets last_seen_at but is not a sign-in', async () => {
        const user = await t.createUser();
        await t.signIn(user.username, user.password);
        const lastLogin = iso((await storedUser(t, user.id)).last_login_at);
        assert.ok(lastLogin);
        await sleep(5);
        const response = await me(t, t.basic(user.username, user.password));
        assert.equal(response.statusCode, 200, response.body);
        const row = await eventually(
          () => storedUser(t, user.id),
          (stored) => stored.last_seen_at !== null,
        );
        assert.ok(row.last_seen_at, 'last_seen_at is written');
        assert.ok((iso(row.last_seen_at) ?? '') > lastLogin);
        assert.equal(iso(row.last_login_at), lastLogin);
        assert.equal((await logins(t, user.id)).length, 1);
      });

      test('a Basic request of a user who never signed in leaves last_login_at empty', async () => {
        const user = await t.createUser();
        assert.equal((await me(t, t.basic(user.username, user.password))).statusCode, 200);
        const row = await eventually(
          () => storedUser(t, user.id),
          (stored) => stored.last_seen_at !== null,
        );
        assert.ok(row.last_seen_at);
        assert.equal(row.last_login_at, null);
        const view = await t.app.inject({ url: `/v1/users/${user.id}`, headers: { authorization: t.adminBasic } });
        assert.equal(view.json().last_login_at, null);
        assert.equal(view.json().last_seen_at, iso(row.last_seen_at));
        assert.deepEqual(await logins(t, user.id), []);
      });

      test('writes last_seen_at at most once per interval', async () => {
        const user = await t.createUser();
        const basic = t.basic(user.username, user.password);
        assert.equal((await me(t, basic)).statusCode, 200);
        const first = await eventually(
          () => storedUser(t, user.id),
          (stored) => stored.last_seen_at !== null,
        );
        assert.ok(first.last_seen_at);
        await sleep(5);
        const pair = await t.signIn(user.username, user.password);
        assert.equal((await me(t, basic)).statusCode, 200);
        assert.equal((await me(t, bearer(pair.access_token))).statusCode, 200);
        // The write is asynchronous: give a wrong one time to land.
        await sleep(200);
        assert.equal(iso((await storedUser(t, user.id)).last_seen_at), iso(first.last_seen_at));
      });

      test('writes last_seen_at again once the interval has passed', async () => {
        const quick = await buildTestApp(target, { lastSeenIntervalSeconds: 1 });
        try {
          const user = await quick.createUser();
          const basic = quick.basic(user.username, user.password);
          assert.equal((await me(quick, basic)).statusCode, 200);
          const first = await eventually(
            () => storedUser(quick, user.id),
            (stored) => stored.last_seen_at !== null,
          );
          const firstSeen = iso(first.last_seen_at);
          assert.ok(firstSeen);
          await sleep(1_100);
          assert.equal((await me(quick, basic)).statusCode, 200);
          const second = await eventually(
            () => storedUser(quick, user.id),
            (stored) => iso(stored.last_seen_at) !== firstSeen,
          );
          assert.ok((iso(second.last_seen_at) ?? '') > firstSeen);
          assert.equal(second.last_login_at, null);
        } finally {
          await quick.close();
        }
      });

      test('GET /api/login sets last_login_at and records a basic login event', async () => {
        const user = await t.createUser();
        const response = await t.app.inject({ url: '/api/login', headers: { authorization: t.basic(user.username, user.password) } });
        assert.equal(response.statusCode, 200, response.body);
        const body = response.json();
        const row = await storedUser(t, user.id);
        assert.ok(row.last_login_at);
        assert.equal(body.last_login, iso(row.last_login_at));
        assert.match(body.message, new RegExp(`^Hello, ${user.username}! Login successful at `));
        const events = await logins(t, user.id);
        assert.equal(events.length, 1);
        assert.equal(events[0]?.method, 'basic');
        assert.equal(events[0]?.success, true);
        assert.equal(events[0]?.at, iso(row.last_login_at));
        assertUnauthorized(
          await t.app.inject({ url: '/api/login', headers: { authorization: t.basic(user.username, 'wrong-password-123') } }),
        );
      });

      test('20 parallel sign-ins all succeed and leave the latest login time', async () => {
        const user = await t.createUser();
        const responses = await Promise.all(
          Array.from({ length: 20 }, () => signInResponse(t, { username: user.username, password: user.password })),
        );
        for (const response of responses) assert.equal(response.statusCode, 201, response.body);
        assert.equal(new Set(responses.map((response) => response.json().refresh_token)).size, 20);
        const events = await logins(t, user.id);
        assert.equal(events.length, 20);
        assert.ok(events.every((event) => event.success && event.method === 'password'));
        const latest = events
          .map((event) => event.at)
          .sort()
          .at(-1);
        const view = await t.app.inject({ url: `/v1/users/${user.id}`, headers: { authorization: t.adminBasic } });
        assert.equal(view.json().last_login_at, latest);
      });
    });

    describe('password hashes', () => {
      test('rehashes a stored hash made with other parameters on sign-in', async () => {
        const user = await t.createUser();
        const oldHash = await argon2.hash(user.password, { type: argon2.argon2id, memoryCost: 2048, timeCost: 1, parallelism: 1 });
        await t.services.usersRepository.update(user.id, { password_hash: oldHash });
        assert.equal((await signInResponse(t, { username: user.username, password: user.password })).statusCode, 201);
        const stored = (await storedUser(t, user.id)).password_hash;
        assert.notEqual(stored, oldHash);
        assert.deepEqual(phcParameters(stored), { algorithm: 'argon2id', m: 1024, t: 1, p: 1 });
        assert.equal(await argon2.verify(stored, user.password), true);
        assert.equal((await signInResponse(t, { username: user.username, password: user.password })).statusCode, 201);
      });

      test('keeps an old hash when the password is wrong', async () => {
        const user = await t.createUser();
        const oldHash = await argon2.hash(user.password, { type: argon2.argon2id, memoryCost: 2048, timeCost: 1, parallelism: 1 });
        await t.services.usersRepository.update(user.id, { password_hash: oldHash });
        assertUnauthorized(await signInResponse(t, { username: user.username, password: `${user.password}-wrong` }));
        assert.equal((await storedUser(t, user.id)).password_hash, oldHash);
      });
    });

    describe('signing keys', () => {
      test('a rotated-in key is published at once but signs only after the activation delay', async () => {
        const app = await buildTestApp(target);
        try {
          const user = await app.createUser();
          const earlier = await app.signIn(user.username, user.password);
          const oldKid = decodeProtectedHeader(earlier.access_token).kid;
          const newKid = await app.services.tokens.rotate();
          const jwks = (await app.app.inject({ url: '/.well-known/jwks.json' })).json() as JSONWebKeySet;
          assert.deepEqual(jwks.keys.map((key) => key.kid).sort(), [oldKid, newKid].sort());
          const later = await app.signIn(user.username, user.password);
          assert.equal(decodeProtectedHeader(later.access_token).kid, oldKid);
        } finally {
          await app.close();
        }
      });

      test('rotating keys publishes both, keeps old tokens valid and signs with the new key once active', async () => {
        const app = await buildTestApp(target, { signingKeyActivationSeconds: 0 });
        try {
          const user = await app.createUser();
          const earlier = await app.signIn(user.username, user.password);
          const oldKid = decodeProtectedHeader(earlier.access_token).kid;
          const newKid = await app.services.tokens.rotate();
          assert.notEqual(newKid, oldKid);

          const jwks = (await app.app.inject({ url: '/.well-known/jwks.json' })).json() as JSONWebKeySet;
          assert.deepEqual(jwks.keys.map((key) => key.kid).sort(), [oldKid, newKid].sort());
          assert.ok(jwks.keys.every((key) => !('d' in key)));

          assert.equal((await me(app, bearer(earlier.access_token))).statusCode, 200);
          const later = await app.signIn(user.username, user.password);
          assert.equal(decodeProtectedHeader(later.access_token).kid, newKid);
          assert.equal((await me(app, bearer(later.access_token))).statusCode, 200);
          const verified = await jwtVerify(later.access_token, createLocalJWKSet(jwks), { issuer: 'gatehouse', audience: 'gatehouse' });
          assert.equal(verified.payload.sub, user.id);
        } finally {
          await app.close();
        }
      });
    });

    describe('two instances on one database', () => {
      let a: TestApp;
      let b: TestApp;
      before(async () => {
        a = await buildTestApp(target);
        b = await buildTestApp(target, {}, { database: a.database, keepDatabase: true });
      });
      after(async () => {
        await b?.close();
        await a?.close();
      });

      test('a token signed by one instance works on the other', async () => {
        const user = await a.createUser();
        const fromA = await a.signIn(user.username, user.password);
        const onB = await me(b, bearer(fromA.access_token));
        assert.equal(onB.statusCode, 200, onB.body);
        assert.equal(onB.json().id, user.id);
        const fromB = await b.signIn(user.username, user.password);
        assert.equal((await me(a, bearer(fromB.access_token))).statusCode, 200);
        const refreshed = await refresh(b, fromA.refresh_token);
        assert.equal(refreshed.statusCode, 200, refreshed.body);
        assertUnauthorized(await refresh(a, fromA.refresh_token));
      });

      // Without Redis nothing announces a change to the other instance: what it remembered of the
      // session (GATEHOUSE_AUTH_CACHE_MS, 500 ms by default) is all it may still use.
      const CACHE_MS = 500;
      async function refusedWithinCacheTime(t: TestApp, accessToken: string, changedAt: number): Promise<void> {
        const answer = await eventually(
          () => me(t, bearer(accessToken)),
          (response) => response.statusCode === 401 || Date.now() - changedAt > CACHE_MS + 300,
        );
        assertUnauthorized(answer);
      }

      test('a sign-out on one instance ends the token on the other within the cache time', async () => {
        const user = await a.createUser();
        const pair = await a.signIn(user.username, user.password);
        assert.equal((await me(b, bearer(pair.access_token))).statusCode, 200);
        const logout = await a.app.inject({
          method: 'DELETE',
          url: '/v1/sessions/current',
          headers: { authorization: bearer(pair.access_token) },
        });
        assert.equal(logout.statusCode, 204, logout.body);
        assertUnauthorized(await refresh(b, pair.refresh_token));
        await refusedWithinCacheTime(b, pair.access_token, Date.now());
      });

      test('disabling a user on one instance ends its token on the other within the cache time', async () => {
        const user = await a.createUser();
        const pair = await a.signIn(user.username, user.password);
        assert.equal((await me(a, bearer(pair.access_token))).statusCode, 200);
        await setStatus(b, user.id, 'disabled');
        assertUnauthorized(await refresh(a, pair.refresh_token));
        await refusedWithinCacheTime(a, pair.access_token, Date.now());
      });

      test('a second instance does not write last_seen_at again within the interval', async () => {
        const user = await a.createUser();
        const basic = a.basic(user.username, user.password);
        assert.equal((await me(a, basic)).statusCode, 200);
        const first = await eventually(
          () => storedUser(a, user.id),
          (stored) => stored.last_seen_at !== null,
        );
        assert.ok(first.last_seen_at);
        await sleep(5);
        assert.equal((await me(b, basic)).statusCode, 200);
        await sleep(200);
        assert.equal(iso((await storedUser(b, user.id)).last_seen_at), iso(first.last_seen_at));
      });
    });

    describe('restart', () => {
      test('users, sessions and signing keys survive a restart', async () => {
        const first = await buildTestApp(target, {}, { keepDatabase: true });
        let firstClosed = false;
        let second: TestApp | null = null;
        try {
          const user: TestUser = await first.createUser();
          const pair = await first.signIn(user.username, user.password);
          const kids = ((await first.app.inject({ url: '/.well-known/jwks.json' })).json() as JSONWebKeySet).keys.map((key) => key.kid);
          await first.close();
          firstClosed = true;

          second = await buildTestApp(target, {}, { database: first.database });
          const restarted = second;
          const again = await signInResponse(restarted, { username: user.username, password: user.password });
          assert.equal(again.statusCode, 201, again.body);
          const old = await me(restarted, bearer(pair.access_token));
          assert.equal(old.statusCode, 200, old.body);
          assert.equal(old.json().id, user.id);
          const refreshed = await refresh(restarted, pair.refresh_token);
          assert.equal(refreshed.statusCode, 200, refreshed.body);
          const jwks = (await restarted.app.inject({ url: '/.well-known/jwks.json' })).json() as JSONWebKeySet;
          assert.deepEqual(
            jwks.keys.map((key) => key.kid),
            kids,
          );
        } finally {
          if (!firstClosed) await first.close();
          if (second) await second.close();
          else await first.database.drop();
        }
      });
    });
  });
}

describe('production password hashing', () => {
  test('hashes with argon2id at the OWASP parameters and verifies', async () => {
    const hasher = await createPasswordHasher('owasp');
    const hash = await hasher.hash('correct horse battery staple');
    assert.deepEqual(phcParameters(hash), { algorithm: 'argon2id', m: 19_456, t: 2, p: 1 });
    assert.deepEqual(await hasher.verify(hash, 'correct horse battery staple'), { ok: true, needsRehash: false });
    assert.equal((await hasher.verify(hash, 'correct horse battery stable')).ok, false);
  });
});
