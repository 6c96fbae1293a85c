// Sign-in throttling and rate limits shared through Redis (issue "Defend sign-in", point 3): two
// app instances on one database and one Redis count together; without Redis each instance counts
// alone; when Redis goes away (a TCP proxy in front of it is cut, or stops forwarding) sign-in
// keeps answering on a stricter per-instance limiter, says so once in the log, and goes back to
// Redis when it returns. Runs on every database target: the instances share the database too.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import type { Redis } from 'ioredis';
import type { Config } from '../src/config.js';
import { buildTestApp, problem, type TestApp, uniqueName } from './helpers/app.js';
import { type Target, targets } from './helpers/databases.js';
import { cleanup, keysUnder, openRedis, type RedisProxy, redisSkip, redisUrl, startRedisProxy, uniquePrefix } from './helpers/redis.js';

const THRESHOLD = 10;
/** The per-instance limiter that stands in while Redis is away allows half as many failures. */
const FALLBACK_THRESHOLD = THRESHOLD / 2;
/** Generous: a request must never wait on a Redis that is gone for anywhere near this long. */
const ANSWER_WITHIN_MS = 5_000;

function throttled(overrides: Partial<Config> = {}): Partial<Config> {
  return {
    signInFailuresPerUsernameAndIp: THRESHOLD,
    signInFailuresPerIpPerDay: 1000,
    signInFailuresPerUsernamePerHour: 1000,
    hashQueueMax: 1000,
    ...overrides,
  };
}

/** Two instances of the app on one database (the second one leaves the database to the first). */
async function twoInstances(target: Target, overrides: Partial<Config>): Promise<[TestApp, TestApp]> {
  const a = await buildTestApp(target, overrides);
  try {
    return [a, await buildTestApp(target, overrides, { database: a.database, keepDatabase: true })];
  } catch (error) {
    await a.close();
    throw error;
  }
}

let addresses = 0;
/** A client address no other test uses, so that each test starts with fresh counters. */
function freshIp(): string {
  addresses += 1;
  return `198.51.${Math.floor(addresses / 250)}.${(addresses % 250) + 1}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The response, or a failure when it takes longer than ANSWER_WITHIN_MS. */
async function answered(request: PromiseLike<LightMyRequestResponse>): Promise<LightMyRequestResponse> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ANSWER_WITHIN_MS} ms`)), ANSWER_WITHIN_MS);
  });
  try {
    return await Promise.race([request, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function attempt(t: TestApp, username: string, password: string, ip: string): Promise<LightMyRequestResponse> {
  return answered(t.app.inject({ method: 'POST', url: '/v1/sessions', remoteAddress: ip, payload: { username, password } }));
}

function assertBlocked(response: LightMyRequestResponse): void {
  assert.equal(response.statusCode, 429, response.body);
  assert.equal(problem(response).code, 'too_many_requests');
  const retryAfter = Number(response.headers['retry-after']);
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `Retry-After is a number of seconds: ${response.headers['retry-after']}`);
}

/** Sequential wrong guesses; returns the status codes. */
async function wrongGuesses(t: TestApp, username: string, ip: string, count: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < count; i += 1) statuses.push((await attempt(t, username, `wrong-guess-${i}`, ip)).statusCode);
  return statuses;
}

function times(status: number, count: number): number[] {
  return Array.from({ length: count }, () => status);
}

/** gatehouse_password_verifications_total over every result (match, mismatch, dummy), from /metrics. */
async function verifications(t: TestApp): Promise<number> {
  const response = await t.app.inject({ url: '/metrics' });
  assert.equal(response.statusCode, 200, response.body);
  let total = 0;
  for (const line of response.body.split('\n')) {
    const match = /^gatehouse_password_verifications_total\{result="(?:match|mismatch|dummy)"\} (\d+)$/.exec(line);
    if (match) total += Number(match[1]);
  }
  return total;
}

function logLines(t: TestApp, pattern: RegExp): string[] {
  return t.logs.filter((line) => {
    try {
      return pattern.test(String(JSON.parse(line).msg));
    } catch {
      return false;
    }
  });
}

const UNREACHABLE = /redis.*unreachable/i;
const ANSWERS_AGAIN = /redis answers again/i;

/** 50 wrong guesses at once for one username from one address, alternating between the instances. */
async function parallelGuesses(instances: TestApp[], username: string, ip: string) {
  const before = await Promise.all(instances.map(verifications));
  const responses = await Promise.all(
    Array.from({ length: 50 }, (_, i) => {
      const instance = instances[i % instances.length] as TestApp;
      return attempt(instance, username, `wrong-guess-${i}`, ip).then((response) => ({ instance, response }));
    }),
  );
  const afterwards = await Promise.all(instances.map(verifications));
  for (const { response } of responses) {
    assert.ok([401, 429].includes(response.statusCode), `${response.statusCode} ${response.body}`);
    if (response.statusCode === 429) assertBlocked(response);
  }
  const count = (instance: TestApp | null, status: number) =>
    responses.filter((r) => (instance === null || r.instance === instance) && r.response.statusCode === status).length;
  return {
    verified: afterwards.reduce((sum, n) => sum + n, 0) - before.reduce((sum, n) => sum + n, 0),
    unauthorized: count(null, 401),
    blocked: count(null, 429),
    unauthorizedOn: (instance: TestApp) => count(instance, 401),
  };
}

const skipRedis = await redisSkip();

for (const { target, skip } of await targets()) {
  describe(`sign-in throttling across instances on ${target}`, { skip: skip || skipRedis }, () => {
    let inspector: Redis;
    before(async () => {
      inspector = openRedis();
      await inspector.connect();
    });
    after(() => inspector?.disconnect());

    /** Throttling counters in Redis for a client address (rate-limiter-flexible's `<prefix>signin:<rule>:…:<ip>`). */
    async function throttleKeysFor(prefix: string, ip: string): Promise<string[]> {
      return (await keysUnder(inspector, prefix)).filter((key) => key.startsWith(`${prefix}signin:`) && key.endsWith(`:${ip}`));
    }

    /** Failed sign-ins from a probe address until its counters show up in Redis (or 10 s pass). */
    async function backOnRedis(t: TestApp, prefix: string): Promise<boolean> {
      const ip = freshIp();
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const response = await attempt(t, uniqueName('probe'), 'wrong-guess', ip);
        assert.ok([401, 429].includes(response.statusCode), `${response.statusCode} ${response.body}`);
        if ((await throttleKeysFor(prefix, ip)).length > 0) return true;
        await sleep(200);
      }
      return false;
    }

    describe('two instances sharing one Redis', () => {
      const prefix = uniquePrefix();
      let a: TestApp;
      let b: TestApp;
      before(async () => {
        [a, b] = await twoInstances(target, throttled({ redisUrl: redisUrl(), redisKeyPrefix: prefix }));
      });
      after(async () => {
        await b?.close();
        await a?.close();
        await cleanup(prefix);
      });

      test('50 parallel wrong guesses split over both instances verify no more passwords than the threshold', async () => {
        const user = await a.createUser();
        const ip = freshIp();
        const outcome = await parallelGuesses([a, b], user.username, ip);
        assert.equal(outcome.verified, THRESHOLD, 'password verifications on both instances together');
        assert.equal(outcome.unauthorized, THRESHOLD);
        assert.equal(outcome.blocked, 50 - THRESHOLD);
        // Counted in Redis (a per-instance fallback, 5 each, would also add up to 10 here).
        assert.ok((await throttleKeysFor(prefix, ip)).length > 0, 'throttling keys under the prefix in Redis');
        // The block holds on both instances, even for the right password.
        assertBlocked(await attempt(a, user.username, user.password, ip));
        assertBlocked(await attempt(b, user.username, user.password, ip));
      });

      test('keeps the counters in Redis, and a success on one instance clears what the other counted', async () => {
        const user = await a.createUser();
        const ip = freshIp();
        assert.deepEqual(await wrongGuesses(a, user.username, ip, THRESHOLD - 1), times(401, THRESHOLD - 1));
        const keys = await throttleKeysFor(prefix, ip);
        assert.ok(keys.length > 0, 'throttling keys under the prefix in Redis');
        const counts = await Promise.all(keys.map((key) => inspector.get(key)));
        assert.ok(counts.includes(String(THRESHOLD - 1)), `the ${THRESHOLD - 1} failures are counted in Redis: ${counts}`);

        assert.equal((await attempt(b, user.username, user.password, ip)).statusCode, 201);
        // Without the reset the next guess on A would be the 11th; with per-instance counters A would
        // block after its 10th failure in all, that is after one more.
        assert.deepEqual(await wrongGuesses(a, user.username, ip, THRESHOLD), times(401, THRESHOLD));
        assertBlocked(await attempt(a, user.username, 'wrong-guess', ip));
        assertBlocked(await attempt(b, user.username, user.password, ip));
      });
    });

    describe('rate limits shared through Redis', () => {
      const prefix = uniquePrefix();
      let a: TestApp;
      let b: TestApp;
      before(async () => {
        [a, b] = await twoInstances(
          target,
          throttled({ redisUrl: redisUrl(), redisKeyPrefix: prefix, rateLimitPerMinute: 5, signInRateLimitPerMinute: 3 }),
        );
      });
      after(async () => {
        await b?.close();
        await a?.close();
        await cleanup(prefix);
      });

      test('the general rate limit counts the requests to every instance together', async () => {
        const ip = freshIp();
        const responses: LightMyRequestResponse[] = [];
        for (let i = 0; i < 10; i += 1) {
          responses.push(await answered((i % 2 === 0 ? a : b).app.inject({ url: '/healthz', remoteAddress: ip })));
        }
        assert.deepEqual(
          responses.map((r) => r.statusCode),
          [...times(200, 5), ...times(429, 5)],
        );
        for (const response of responses.slice(5)) assertBlocked(response);
        // Another address is not affected, on either instance.
        const other = freshIp();
        assert.equal((await a.app.inject({ url: '/healthz', remoteAddress: other })).statusCode, 200);
        assert.equal((await b.app.inject({ url: '/healthz', remoteAddress: other })).statusCode, 200);
      });

      test('the sign-in rate limit counts the sign-ins on every instance together', async () => {
        const ip = freshIp();
        const statuses: number[] = [];
        for (let i = 0; i < 6; i += 1)
          statuses.push((await attempt(i % 2 === 0 ? a : b, uniqueName('nobody'), 'wrong-guess', ip)).statusCode);
        // Below the failure threshold (10): the 429s come from the sign-in rate limit (3 a minute).
        assert.deepEqual(statuses, [...times(401, 3), ...times(429, 3)]);
      });
    });

    describe('when Redis becomes unreachable', () => {
      const prefix = uniquePrefix();
      let proxy: RedisProxy;
      let a: TestApp;
      let b: TestApp;
      before(async () => {
        proxy = await startRedisProxy();
        [a, b] = await twoInstances(target, throttled({ redisUrl: proxy.url, redisKeyPrefix: prefix }));
      });
      after(async () => {
        await proxy?.restore();
        await b?.close();
        await a?.close();
        await proxy?.close();
        await cleanup(prefix);
      });

      test('sign-in keeps answering on stricter per-instance limits, logs it once, and goes back to Redis when it returns', async () => {
        const user = await a.createUser();
        const victim = await a.createUser();
        const before = freshIp();
        assert.equal((await attempt(a, user.username, 'wrong-guess', before)).statusCode, 401);
        assert.ok((await throttleKeysFor(prefix, before)).length > 0, 'counters are in Redis while it answers');

        await proxy.cut();
        const ip = freshIp();
        assert.equal((await attempt(a, user.username, user.password, ip)).statusCode, 201);
        assert.equal((await attempt(b, user.username, user.password, ip)).statusCode, 201);
        // Each instance now counts alone, and allows half as many failures.
        const victimIp = freshIp();
        assert.deepEqual(await wrongGuesses(a, victim.username, victimIp, FALLBACK_THRESHOLD), times(401, FALLBACK_THRESHOLD));
        assertBlocked(await attempt(a, victim.username, 'wrong-guess', victimIp));
        assertBlocked(await attempt(a, victim.username, victim.password, victimIp));
        assert.deepEqual(await wrongGuesses(b, victim.username, victimIp, FALLBACK_THRESHOLD), times(401, FALLBACK_THRESHOLD));
        assertBlocked(await attempt(b, victim.username, 'wrong-guess', victimIp));

        // Past the moment Redis is tried again (and found still away): more attempts, still no new log line.
        await sleep(1_500);
        const later = freshIp();
        assert.deepEqual(await wrongGuesses(a, user.username, later, 3), times(401, 3));
        assert.deepEqual(await wrongGuesses(b, user.username, later, 3), times(401, 3));
        assert.equal((await attempt(a, user.username, user.password, freshIp())).statusCode, 201);
        assert.equal((await attempt(b, user.username, user.password, freshIp())).statusCode, 201);
        assert.equal(logLines(a, UNREACHABLE).length, 1, 'instance A says once that Redis is unreachable');
        assert.equal(logLines(b, UNREACHABLE).length, 1, 'instance B says once that Redis is unreachable');
        assert.equal(logLines(a, ANSWERS_AGAIN).length, 0);

        await proxy.restore();
        assert.ok(await backOnRedis(a, prefix), 'instance A counts in Redis again');
        assert.ok(await backOnRedis(b, prefix), 'instance B counts in Redis again');
        assert.equal(logLines(a, ANSWERS_AGAIN).length, 1, 'instance A says once that Redis answers again');
        assert.equal(logLines(b, ANSWERS_AGAIN).length, 1, 'instance B says once that Redis answers again');
        assert.equal(logLines(a, UNREACHABLE).length, 1);
        // Shared again: more failures than the fallback allows on A, then B blocks too.
        const shared = freshIp();
        const other = await a.createUser();
        assert.deepEqual(await wrongGuesses(a, other.username, shared, THRESHOLD), times(401, THRESHOLD));
        assertBlocked(await attempt(b, other.username, 'wrong-guess', shared));
      });

      test('a Redis that hangs costs sign-in a bounded wait, never a 500, and the fallback limits apply', async () => {
        const user = await a.createUser();
        const victim = await a.createUser();
        const unreachableBefore = logLines(a, UNREACHABLE).length;
        await proxy.stall();
        // The first sign-in may wait out the command timeouts (half a second each). Then the silent
        // connection is dropped and nothing waits on Redis any more: waiting on it, the next 8 would
        // take at least 4 s (the sign-in rate limit alone asks Redis once per request).
        assert.equal((await attempt(a, user.username, user.password, freshIp())).statusCode, 201);
        const started = Date.now();
        const victimIp = freshIp();
        assert.deepEqual(await wrongGuesses(a, victim.username, victimIp, FALLBACK_THRESHOLD), times(401, FALLBACK_THRESHOLD));
        assertBlocked(await attempt(a, victim.username, 'wrong-guess', victimIp));
        assertBlocked(await attempt(a, victim.username, victim.password, victimIp));
        assert.equal((await attempt(a, user.username, user.password, freshIp())).statusCode, 201);
        const elapsed = Date.now() - started;
        assert.ok(elapsed < 3_000, `8 sign-ins took ${elapsed} ms while Redis hangs`);
        await sleep(1_500);
        assert.equal((await attempt(a, user.username, user.password, freshIp())).statusCode, 201);
        assert.deepEqual(await wrongGuesses(a, user.username, freshIp(), 3), times(401, 3));
        assert.equal(logLines(a, UNREACHABLE).length, unreachableBefore + 1, 'said once that Redis is unreachable');
        assert.equal((await throttleKeysFor(prefix, victimIp)).length, 0, 'nothing reached Redis');

        await proxy.restore();
        assert.ok(await backOnRedis(a, prefix), 'counts in Redis again');
      });
    });

    describe('when Redis is away at start-up', () => {
      const prefix = uniquePrefix();
      let proxy: RedisProxy;
      let t: TestApp;
      before(async () => {
        proxy = await startRedisProxy();
        await proxy.cut();
        t = await buildTestApp(target, throttled({ redisUrl: proxy.url, redisKeyPrefix: prefix }));
      });
      after(async () => {
        await proxy?.restore();
        await t?.close();
        await proxy?.close();
        await cleanup(prefix);
      });

      test('the instance starts, signs in on the fallback limits, and moves to Redis once it answers', async () => {
        const user = await t.createUser();
        assert.equal((await attempt(t, user.username, user.password, freshIp())).statusCode, 201);
        const ip = freshIp();
        assert.deepEqual(await wrongGuesses(t, user.username, ip, FALLBACK_THRESHOLD), times(401, FALLBACK_THRESHOLD));
        assertBlocked(await attempt(t, user.username, user.password, ip));
        assert.equal(logLines(t, UNREACHABLE).length, 1);

        await proxy.restore();
        assert.ok(await backOnRedis(t, prefix), 'counts in Redis once it answers');
        assert.equal(logLines(t, ANSWERS_AGAIN).length, 1);
        const shared = freshIp();
        assert.deepEqual(await wrongGuesses(t, user.username, shared, THRESHOLD), times(401, THRESHOLD));
        assertBlocked(await attempt(t, user.username, 'wrong-guess', shared));
      });
    });

    describe('without Redis', () => {
      let a: TestApp;
      let b: TestApp;
      before(async () => {
        [a, b] = await twoInstances(target, throttled());
      });
      after(async () => {
        await b?.close();
        await a?.close();
      });

      test('each instance applies the limits alone', async () => {
        const user = await a.createUser();
        const outcome = await parallelGuesses([a, b], user.username, freshIp());
        assert.equal(outcome.unauthorizedOn(a), THRESHOLD);
        assert.equal(outcome.unauthorizedOn(b), THRESHOLD);
        assert.equal(outcome.verified, 2 * THRESHOLD);
        assert.equal(outcome.blocked, 50 - 2 * THRESHOLD);
      });
    });
  });
}
