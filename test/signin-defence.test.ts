// Sign-in defence through the HTTP API on every database target: no account enumeration, sign-in
// throttling per (username, address), per address and per username, bounded password hashing and
// the Basic credential cache (ASVS 4.0.3 2.2.1 and 11.1.4, ASVS 5.0 6.1.1 and 6.3.8; OWASP API2, API4).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import type { Config } from '../src/config.js';
import {
  bearer,
  buildTestApp,
  problem,
  SHIPPED_SIGNIN_LIMITS,
  type TestApp,
  type TestUser,
  uniqueName,
  withTestApp,
} from './helpers/app.js';
import { targets } from './helpers/databases.js';
import { passwordVerifications, readMetrics } from './helpers/metrics.js';
import { sleep } from './helpers/sessions.js';

/** The shipped limits: buildTestApp raises them so that other suites are never throttled. */
const REAL_LIMITS = SHIPPED_SIGNIN_LIMITS;
const WWW_AUTHENTICATE = 'Basic realm="gatehouse", Bearer realm="gatehouse"';

let addressCount = 0;
/** A client address that no other test uses, so that no two tests share a throttle counter. */
function newAddress(): string {
  addressCount += 1;
  return `10.${(addressCount >> 16) & 255}.${(addressCount >> 8) & 255}.${addressCount & 255}`;
}

type Attempt = (t: TestApp, username: string, password: string, ip: string) => Promise<LightMyRequestResponse>;

const jsonSignIn: Attempt = (t, username, password, ip) =>
  t.app.inject({ method: 'POST', url: '/v1/sessions', payload: { username, password }, remoteAddress: ip });
const basicSignIn: Attempt = (t, username, password, ip) =>
  t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { authorization: t.basic(username, password) }, remoteAddress: ip });
const basicMe: Attempt = (t, username, password, ip) =>
  t.app.inject({ url: '/v1/users/me', headers: { authorization: t.basic(username, password) }, remoteAddress: ip });
const apiLogin: Attempt = (t, username, password, ip) =>
  t.app.inject({ url: '/api/login', headers: { authorization: t.basic(username, password) }, remoteAddress: ip });

/** The sign-in paths that share one set of throttle counters. */
const SIGN_IN_PATHS: [string, Attempt][] = [
  ['POST /v1/sessions with JSON', jsonSignIn],
  ['POST /v1/sessions with Basic', basicSignIn],
  ['Basic on GET /v1/users/me', basicMe],
  ['GET /api/login', apiLogin],
];

/** Basic on other endpoints than /v1/users/me: every endpoint that takes a caller is a sign-in path. */
function basicOn(method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE', url: string, payload?: object): Attempt {
  return (t, username, password, ip) =>
    t.app.inject({
      method,
      url,
      headers: { authorization: t.basic(username, password) },
      remoteAddress: ip,
      ...(payload ? { payload } : {}),
    });
}

/** What a client can see of an answer, minus what differs on every request anyway. */
function visible(response: LightMyRequestResponse, volatile: string[] = []) {
  const headers: Record<string, unknown> = { ...response.headers };
  for (const name of ['x-request-id', 'date', ...volatile]) delete headers[name];
  const { request_id, ...body } = response.json();
  assert.equal(request_id, response.headers['x-request-id']);
  return { status: response.statusCode, headers, body };
}

function assertUnauthorized(response: LightMyRequestResponse, context = ''): void {
  assert.equal(response.statusCode, 401, `${context} ${response.body}`);
  assert.equal(problem(response).code, 'unauthorized');
  assert.equal(response.headers['www-authenticate'], WWW_AUTHENTICATE);
}

function assertBlocked(response: LightMyRequestResponse, context = '', windowSeconds = 3600): void {
  assert.equal(response.statusCode, 429, `${context} ${response.body}`);
  const body = problem(response);
  assert.equal(body.code, 'too_many_requests');
  assert.match(body.contentType, /^application\/problem\+json/);
  const retryAfter = Number(response.headers['retry-after']);
  assert.ok(
    Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= windowSeconds,
    `Retry-After ${response.headers['retry-after']}`,
  );
}

async function patchUser(t: TestApp, id: string, payload: object): Promise<void> {
  const response = await t.app.inject({ method: 'PATCH', url: `/v1/users/${id}`, headers: { authorization: t.adminBasic }, payload });
  assert.equal(response.statusCode, 200, response.body);
}

async function disabledUser(t: TestApp): Promise<TestUser> {
  const user = await t.createUser();
  await patchUser(t, user.id, { status: 'disabled' });
  return user;
}

/** Runs `count` failed attempts; each must be an ordinary 401 (not yet throttled). */
async function fail(t: TestApp, attempt: Attempt, username: string, ip: string, count: number): Promise<void> {
  for (let i = 0; i < count; i += 1) assertUnauthorized(await attempt(t, username, `wrong-password-${i}-x`, ip), `failure ${i + 1}`);
}

for (const { target, skip } of await targets()) {
  describe(`sign-in defence on ${target}`, { skip }, () => {
    // One app with the shipped limits; tests that need other limits build their own.
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target, REAL_LIMITS);
    });
    after(async () => t?.close());

    const withApp = (overrides: Partial<Config>, run: (app: TestApp) => Promise<void>) =>
      withTestApp(target, { ...REAL_LIMITS, ...overrides }, run);

    describe('no account enumeration', () => {
      test('ASVS 2.2.1, 5.0 6.3.8: every sign-in path answers unknown user, wrong password and disabled user alike', async () => {
        const user = await t.createUser();
        const disabled = await disabledUser(t);
        const attempts: [string, string][] = [
          [uniqueName('ghost'), user.password],
          [user.username, `${user.password}-wrong`],
          [disabled.username, disabled.password],
        ];
        const paths: [string, Attempt][] = [
          ...SIGN_IN_PATHS,
          ['Basic on GET /v1/users', basicOn('GET', '/v1/users')],
          ['Basic on GET /v1/users/{id}', basicOn('GET', `/v1/users/${user.id}`)],
          ['Basic on PATCH /v1/users/{id}', basicOn('PATCH', `/v1/users/${user.id}`, { display_name: 'Changed' })],
          ['Basic on PUT /v1/users/me/password', basicOn('PUT', '/v1/users/me/password', { current_password: 'a', new_password: 'b' })],
          ['Basic on DELETE /v1/sessions/current', basicOn('DELETE', '/v1/sessions/current')],
          ['Basic on POST /v1/users', basicOn('POST', '/v1/users', { username: uniqueName(), email: 'x@example.com', password: 'p' })],
          ['Basic on GET /api/users', basicOn('GET', '/api/users')],
        ];
        for (const [path, attempt] of paths) {
          // Each attempt from its own address, so that even the rate-limit headers are comparable.
          const answers = [];
          for (const [username, password] of attempts) answers.push(await attempt(t, username, password, newAddress()));
          assertUnauthorized(answers[0] as LightMyRequestResponse, path);
          for (const answer of answers.slice(1)) assert.deepEqual(visible(answer), visible(answers[0] as LightMyRequestResponse), path);
        }
        assert.equal(
          (await t.app.inject({ url: `/v1/users/${user.id}`, headers: { authorization: t.adminBasic } })).json().display_name,
          null,
        );
      });

      test('ASVS 2.2.1, 5.0 6.3.8: an unknown username is verified against a dummy argon2id hash on every sign-in path', async () => {
        const user = await t.createUser();
        for (const [path, attempt] of SIGN_IN_PATHS) {
          const before = await readMetrics(t.app);
          assertUnauthorized(await attempt(t, uniqueName('ghost'), user.password, newAddress()), path);
          const afterUnknown = await readMetrics(t.app);
          const dummy = { result: 'dummy' };
          const mismatch = { result: 'mismatch' };
          assert.equal(
            afterUnknown.value('gatehouse_password_verifications_total', dummy),
            before.value('gatehouse_password_verifications_total', dummy) + 1,
            path,
          );
          assert.equal(
            afterUnknown.value('gatehouse_password_verifications_total', mismatch),
            before.value('gatehouse_password_verifications_total', mismatch),
            path,
          );

          assertUnauthorized(await attempt(t, user.username, 'not-the-password-1', newAddress()), path);
          const afterWrong = await readMetrics(t.app);
          assert.equal(
            afterWrong.value('gatehouse_password_verifications_total', dummy),
            afterUnknown.value('gatehouse_password_verifications_total', dummy),
            path,
          );
          assert.equal(
            afterWrong.value('gatehouse_password_verifications_total', mismatch),
            afterUnknown.value('gatehouse_password_verifications_total', mismatch) + 1,
            path,
          );
        }
      });

      test('ASVS 2.2.1, 5.0 6.3.8: a blocked attempt is the same 429 whether the account exists and whether the password is right', async () => {
        const ip = newAddress();
        const user = await t.createUser();
        const disabled = await disabledUser(t);
        const ghost = uniqueName('ghost');
        for (const username of [user.username, disabled.username, ghost]) await fail(t, basicMe, username, ip, 10);
        const verifiedBefore = await passwordVerifications(t.app);
        for (const [path, attempt] of SIGN_IN_PATHS) {
          const answers = [
            await attempt(t, user.username, user.password, ip),
            await attempt(t, user.username, 'not-the-password-2', ip),
            await attempt(t, disabled.username, disabled.password, ip),
            await attempt(t, ghost, user.password, ip),
          ];
          for (const answer of answers) assertBlocked(answer, path);
          // Retry-After and the request-rate headers count time and requests, not accounts.
          const volatile = ['retry-after', 'x-ratelimit-remaining', 'x-ratelimit-reset'];
          for (const answer of answers.slice(1))
            assert.deepEqual(visible(answer, volatile), visible(answers[0] as LightMyRequestResponse, volatile), path);
        }
        assert.equal(await passwordVerifications(t.app), verifiedBefore, 'no password is verified while blocked');
      });
    });

    describe('throttling', () => {
      test('ASVS 2.2.1, 5.0 6.1.1: after 10 failures for a username from one address, 429 with Retry-After and no password is verified', async () => {
        const ip = newAddress();
        const user = await t.createUser();
        await fail(t, jsonSignIn, user.username, ip, 10);
        const before = await readMetrics(t.app);
        assertBlocked(await jsonSignIn(t, user.username, 'wrong-password-again', ip));
        assertBlocked(await jsonSignIn(t, user.username, user.password, ip), 'the right password');
        const afterBlocked = await readMetrics(t.app);
        assert.equal(afterBlocked.value('gatehouse_password_verifications_total'), before.value('gatehouse_password_verifications_total'));
        const blocked = { reason: 'blocked' };
        assert.equal(
          afterBlocked.value('gatehouse_signin_throttled_total', blocked),
          before.value('gatehouse_signin_throttled_total', blocked) + 2,
        );
      });

      test('ASVS 2.2.1: every sign-in path and every spelling of the username share the same counters', async () => {
        const ip = newAddress();
        const user = await t.createUser();
        const spellings = [user.username, user.username.toUpperCase()];
        for (let i = 0; i < 10; i += 1) {
          const [path, attempt] = SIGN_IN_PATHS[i % SIGN_IN_PATHS.length] as [string, Attempt];
          assertUnauthorized(await attempt(t, spellings[i % 2] as string, `wrong-password-${i}-x`, ip), `${path}, failure ${i + 1}`);
        }
        for (const [path, attempt] of SIGN_IN_PATHS) assertBlocked(await attempt(t, user.username, user.password, ip), path);
      });

      test('ASVS 2.2.1: a successful sign-in resets the counter of its username and address', async () => {
        const ip = newAddress();
        const user = await t.createUser();
        await fail(t, jsonSignIn, user.username, ip, 9);
        assert.equal((await jsonSignIn(t, user.username, user.password, ip)).statusCode, 201);
        await fail(t, basicMe, user.username, ip, 10);
        assertBlocked(await basicMe(t, user.username, user.password, ip));
      });

      test('ASVS 2.2.1: the real user signs in from another address while an attacker address is blocked', async () => {
        const attacker = newAddress();
        const user = await t.createUser();
        await fail(t, jsonSignIn, user.username, attacker, 10);
        assertBlocked(await jsonSignIn(t, user.username, 'guess-number-eleven', attacker));
        const home = newAddress();
        assert.equal((await jsonSignIn(t, user.username, user.password, home)).statusCode, 201);
        assert.equal((await basicMe(t, user.username, user.password, home)).statusCode, 200);
        assert.equal((await apiLogin(t, user.username, user.password, home)).statusCode, 200);
        assertBlocked(await jsonSignIn(t, user.username, user.password, attacker), 'the attacker address stays blocked');
      });

      test('ASVS 2.2.1: the block of a username and address lifts once the failure window is over', async () => {
        await withApp({ signInFailuresPerUsernameAndIp: 3, signInFailureWindowSeconds: 1 }, async (own) => {
          const ip = newAddress();
          const user = await own.createUser();
          await fail(own, jsonSignIn, user.username, ip, 3);
          assertBlocked(await jsonSignIn(own, user.username, user.password, ip), '', 1);
          await new Promise((resolve) => setTimeout(resolve, 1_200));
          assert.equal((await jsonSignIn(own, user.username, user.password, ip)).statusCode, 201);
        });
      });

      test('ASVS 2.2.1, 5.0 6.1.1: past the hourly failures of a username every attempt is slowed down, never refused', async () => {
        await withApp({ signInFailuresPerUsernamePerHour: 3, signInSlowdownMilliseconds: 50 }, async (own) => {
          const user = await own.createUser();
          const slowed = async () => (await readMetrics(own.app)).value('gatehouse_signin_throttled_total', { reason: 'slowed' });
          for (let i = 0; i < 3; i += 1) await fail(own, jsonSignIn, user.username, newAddress(), 1);
          assert.equal(await slowed(), 0);
          for (let i = 1; i <= 5; i += 1) {
            const [path, attempt] = SIGN_IN_PATHS[i % SIGN_IN_PATHS.length] as [string, Attempt];
            assertUnauthorized(await attempt(own, user.username, 'from-yet-another-address', newAddress()), path);
            assert.equal(await slowed(), i, path);
          }
          assert.equal((await jsonSignIn(own, user.username, user.password, newAddress())).statusCode, 201, 'the real user still signs in');
          assert.equal((await basicMe(own, user.username, user.password, newAddress())).statusCode, 200);
          assert.equal(await slowed(), 7);
          assert.equal((await readMetrics(own.app)).value('gatehouse_signin_throttled_total', { reason: 'blocked' }), 0);
        });
      });

      test('ASVS 2.2.1: an address is blocked once its failures across usernames reach the daily limit', async () => {
        await withApp({ signInFailuresPerIpPerDay: 5 }, async (own) => {
          const ip = newAddress();
          const user = await own.createUser();
          for (let i = 0; i < 5; i += 1) {
            const [path, attempt] = SIGN_IN_PATHS[i % SIGN_IN_PATHS.length] as [string, Attempt];
            assertUnauthorized(await attempt(own, i === 0 ? user.username : uniqueName('ghost'), 'wrong-password-x', ip), path);
          }
          const verifiedBefore = await passwordVerifications(own.app);
          assertBlocked(await jsonSignIn(own, uniqueName('ghost'), 'a-fresh-username', ip), 'a new username', 86_400);
          assertBlocked(await basicMe(own, user.username, user.password, ip), 'the right password', 86_400);
          assert.equal(await passwordVerifications(own.app), verifiedBefore);
          assert.equal((await jsonSignIn(own, user.username, user.password, newAddress())).statusCode, 201, 'from another address');
        });
      });

      test('ASVS 2.2.1: with the shipped limits, 100 failures a day from one address block it, 10 per username not yet', async () => {
        const ip = newAddress();
        const names: string[] = [];
        for (let i = 0; i < 5; i += 1) names.push((await t.createUser()).username, uniqueName('ghost'));
        for (const username of names) {
          await fail(t, jsonSignIn, username, ip, 1);
          await fail(t, basicMe, username, ip, 9);
        }
        const user = await t.createUser();
        assertBlocked(await jsonSignIn(t, uniqueName('ghost'), 'failure-101', ip), 'failure 101', 86_400);
        assertBlocked(await basicMe(t, user.username, user.password, ip), 'an untouched user from that address', 86_400);
        assert.equal((await basicMe(t, user.username, user.password, newAddress())).statusCode, 200, 'from another address');
      });

      test('ASVS 2.2.1: without Redis each instance applies the same limits on its own', async () => {
        const a = await buildTestApp(target, { ...REAL_LIMITS, signInFailuresPerUsernameAndIp: 3 });
        const b = await buildTestApp(
          target,
          { ...REAL_LIMITS, signInFailuresPerUsernameAndIp: 3 },
          { database: a.database, keepDatabase: true },
        );
        try {
          assert.equal(a.services.throttle.shared, false);
          const ip = newAddress();
          const user = await a.createUser();
          await fail(a, jsonSignIn, user.username, ip, 3);
          assertBlocked(await jsonSignIn(a, user.username, user.password, ip));
          await fail(b, jsonSignIn, user.username, ip, 3);
          assertBlocked(await jsonSignIn(b, user.username, user.password, ip));
        } finally {
          await b.close();
          await a.close();
        }
      });
    });

    describe('bounded password hashing', () => {
      /**
       * Takes the only hashing lane, and with `places` 2 the one place in line as well, with
       * sign-ins against a stored hash that takes a while to verify (two million PBKDF2 rounds; it
       * matches nothing, so they fail with 401), and returns once they hash or wait. Concurrent
       * sign-ins with the test profile's cheap hash may or may not overlap; these always do.
       */
      async function holdHashing(own: TestApp, places: 1 | 2): Promise<{ held: Promise<LightMyRequestResponse[]> }> {
        const holder = await own.createUser();
        await own.services.usersRepository.update(holder.id, { password_hash: `pbkdf2:sha256:2000000$saltsalt$${'0'.repeat(64)}` });
        const held = Promise.all(Array.from({ length: places }, () => jsonSignIn(own, holder.username, holder.password, newAddress())));
        const deadline = Date.now() + 5_000;
        for (;;) {
          const metrics = await readMetrics(own.app);
          if (metrics.value('gatehouse_password_hash_active') === 1 && metrics.value('gatehouse_password_hash_queue_depth') === places - 1)
            return { held };
          assert.ok(Date.now() < deadline, 'the lane (and the line) are taken');
          await sleep(5);
        }
      }

      test('ASVS 11.1.4, OWASP API4: sign-ins beyond the hashing queue get 503 overloaded with Retry-After, a Bearer request still 200', async () => {
        await withApp({ hashConcurrency: 1, hashQueueMax: 1 }, async (own) => {
          const users: TestUser[] = [];
          for (let i = 0; i < 10; i += 1) users.push(await own.createUser());
          const reader = await own.createUser();
          const token = (await own.signIn(reader.username, reader.password)).access_token;
          const { held } = await holdHashing(own, 1);
          const signIns = users.map((user) => jsonSignIn(own, user.username, user.password, newAddress()));
          const bearerCall = own.app.inject({ url: '/v1/users/me', headers: { authorization: bearer(token) } });
          const [answers, bearerAnswer] = await Promise.all([Promise.all(signIns), bearerCall]);
          assert.equal(bearerAnswer.statusCode, 200, bearerAnswer.body);
          const statuses = answers.map((answer) => answer.statusCode);
          // One waits in the one place in line and signs in once the lane is free; the rest are shed.
          assert.deepEqual([...statuses].sort(), [201, ...Array(9).fill(503)], `one 201, the rest 503: ${statuses}`);
          const shed = answers.filter((answer) => answer.statusCode === 503);
          for (const answer of shed) {
            assert.equal(problem(answer).code, 'overloaded');
            assert.match(problem(answer).contentType, /^application\/problem\+json/);
            assert.ok(Number(answer.headers['retry-after']) >= 1, `Retry-After ${answer.headers['retry-after']}`);
          }
          const metrics = await readMetrics(own.app);
          assert.equal(metrics.value('gatehouse_password_hash_rejections_total'), shed.length);
          assert.notEqual(metrics.find('gatehouse_password_hash_queue_depth'), undefined);
          assert.deepEqual(
            (await held).map((answer) => answer.statusCode),
            [401],
          );
        });
      });

      test('ASVS 2.2.1, 11.1.4: a sign-in shed as overloaded does not count as a failed attempt', async () => {
        await withApp({ hashConcurrency: 1, hashQueueMax: 1, signInFailuresPerUsernameAndIp: 1 }, async (own) => {
          const user = await own.createUser();
          const { held } = await holdHashing(own, 1);
          const addresses = Array.from({ length: 10 }, () => newAddress());
          const answers = await Promise.all(addresses.map((ip) => jsonSignIn(own, user.username, user.password, ip)));
          const shedFrom = addresses.filter((_ip, i) => answers[i]?.statusCode === 503);
          assert.equal(shedFrom.length, 9, `nine sign-ins are shed: ${answers.map((answer) => answer.statusCode)}`);
          await held;
          for (const ip of shedFrom) assert.equal((await jsonSignIn(own, user.username, user.password, ip)).statusCode, 201, ip);
        });
      });

      test('OWASP API4: a sign-in the full hashing queue refuses is answered without reading its user', async () => {
        await withApp({ hashConcurrency: 1, hashQueueMax: 1, hashShedDelayMilliseconds: 0 }, async (own) => {
          const user = await own.createUser();
          const { held } = await holdHashing(own, 2);
          const repository = own.services.usersRepository;
          const findByUsername = repository.findByUsername;
          let lookups = 0;
          repository.findByUsername = (...args) => {
            lookups += 1;
            return findByUsername(...args);
          };
          try {
            const ip = newAddress();
            for (let i = 0; i < 3; i += 1) assert.equal((await jsonSignIn(own, user.username, user.password, ip)).statusCode, 503);
            assert.equal(lookups, 0, 'no user was read for a refused sign-in');
            assert.deepEqual(
              (await held).map((answer) => answer.statusCode),
              [401, 401],
            );
            assert.equal((await jsonSignIn(own, user.username, user.password, ip)).statusCode, 201, 'signs in once the lane is free');
            assert.equal(lookups, 1);
          } finally {
            repository.findByUsername = findByUsername;
          }
        });
      });

      test('ASVS 2.2.1: sign-ins that fail because the database does not answer are 503 and count as no failed attempt', async () => {
        const user = await t.createUser();
        const ip = newAddress();
        const repository = t.services.usersRepository;
        const findByUsername = repository.findByUsername;
        repository.findByUsername = async () => {
          throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
        };
        try {
          // More than the 10 failures a (username, address) may have before it is blocked.
          for (let i = 0; i < 12; i += 1) {
            const answer = await jsonSignIn(t, user.username, user.password, ip);
            assert.equal(answer.statusCode, 503, answer.body);
            assert.equal(answer.json().code, 'unavailable');
          }
        } finally {
          repository.findByUsername = findByUsername;
        }
        assert.equal((await jsonSignIn(t, user.username, user.password, ip)).statusCode, 201, 'not locked out after the outage');
      });
    });

    describe('Basic credential cache', () => {
      test('ASVS 2.2.1: a repeated Basic request with the same credentials verifies no password again', async () => {
        const user = await t.createUser();
        assert.equal((await basicMe(t, user.username, user.password, newAddress())).statusCode, 200);
        const verified = await passwordVerifications(t.app);
        for (let i = 0; i < 3; i += 1) assert.equal((await basicMe(t, user.username, user.password, newAddress())).statusCode, 200);
        assert.equal(await passwordVerifications(t.app), verified);
        assertUnauthorized(await basicMe(t, user.username, `${user.password}-other`, newAddress()), 'another password is not cached');
        assert.equal(await passwordVerifications(t.app), verified + 1);
      });

      test('concurrent Basic requests with the same uncached credentials verify the password once', async () => {
        // As when a busy client's cached credential expires: all its connections miss at once.
        const user = await t.createUser();
        const verified = await passwordVerifications(t.app);
        const answers = await Promise.all(Array.from({ length: 6 }, () => basicMe(t, user.username, user.password, newAddress())));
        assert.deepEqual(
          answers.map((answer) => answer.statusCode),
          Array(6).fill(200),
        );
        assert.equal(await passwordVerifications(t.app), verified + 1);
      });

      test('concurrent Basic requests with the same wrong password are each verified and refused', async () => {
        const user = await t.createUser();
        const verified = await passwordVerifications(t.app);
        const answers = await Promise.all(
          Array.from({ length: 4 }, () => basicMe(t, user.username, `${user.password}-wrong`, newAddress())),
        );
        for (const answer of answers) assertUnauthorized(answer);
        assert.equal(await passwordVerifications(t.app), verified + 4, 'a failure is not shared: each attempt counts');
      });

      test('ASVS 2.2.1: after a password change the old Basic credentials get 401 at once', async () => {
        const user = await t.createUser();
        const ip = newAddress();
        assert.equal((await basicMe(t, user.username, user.password, ip)).statusCode, 200);
        const newPassword = `${user.password}-renewed`;
        const change = await t.app.inject({
          method: 'PUT',
          url: '/v1/users/me/password',
          headers: { authorization: t.basic(user.username, user.password) },
          payload: { current_password: user.password, new_password: newPassword },
          remoteAddress: ip,
        });
        assert.equal(change.statusCode, 204, change.body);
        assertUnauthorized(await basicMe(t, user.username, user.password, ip));
        assert.equal((await basicMe(t, user.username, newPassword, ip)).statusCode, 200);
      });

      test('ASVS 2.2.1: after an admin disables the user its cached Basic credentials get 401 at once', async () => {
        const user = await t.createUser();
        assert.equal((await basicMe(t, user.username, user.password, newAddress())).statusCode, 200);
        await patchUser(t, user.id, { status: 'disabled' });
        assertUnauthorized(await basicMe(t, user.username, user.password, newAddress()));
      });

      test('ASVS 4.1.3: after an admin demotes an admin its cached Basic credentials no longer pass admin-only endpoints', async () => {
        const admin = await t.createUser({ roles: ['admin'] });
        const listUsers = () => t.app.inject({ url: '/v1/users', headers: { authorization: t.basic(admin.username, admin.password) } });
        assert.equal((await listUsers()).statusCode, 200);
        await patchUser(t, admin.id, { roles: ['user'] });
        const demoted = await listUsers();
        assert.equal(demoted.statusCode, 403, demoted.body);
        assert.equal(problem(demoted).code, 'forbidden');
        assert.equal((await basicMe(t, admin.username, admin.password, newAddress())).statusCode, 200);
      });

      test('ASVS 2.2.1: after a user is deleted its cached Basic credentials get 401 at once', async () => {
        const user = await t.createUser();
        assert.equal((await basicMe(t, user.username, user.password, newAddress())).statusCode, 200);
        const removed = await t.app.inject({ method: 'DELETE', url: `/v1/users/${user.id}`, headers: { authorization: t.adminBasic } });
        assert.equal(removed.statusCode, 204, removed.body);
        assertUnauthorized(await basicMe(t, user.username, user.password, newAddress()));
      });

      test('ASVS 2.2.1: with basicAuthCacheSeconds 0 every Basic request verifies the password', async () => {
        await withApp({ basicAuthCacheSeconds: 0 }, async (own) => {
          const user = await own.createUser();
          const verified = await passwordVerifications(own.app);
          for (let i = 0; i < 3; i += 1) assert.equal((await basicMe(own, user.username, user.password, newAddress())).statusCode, 200);
          assert.equal(await passwordVerifications(own.app), verified + 3);
        });
      });
    });
  });
}
