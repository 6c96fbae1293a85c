// The hardened HTTP surface through the HTTP API on every database target: request rate limits
// (general and sign-in, client addresses behind trusted proxies only), security headers on every
// answer, CORS from an allow-list, body size, JSON nesting and media-type limits, no TRACE and no
// credentials in query strings (ASVS 4.0.3 3.1.1, 8.2.1, 11.1.4, 13.1.5, 14.3.3, 14.4, 14.5;
// ASVS 5.0 3.4; OWASP API4, API8).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import type { Config } from '../src/config.js';
import { bearer, buildTestApp, problem, SHIPPED_SIGNIN_LIMITS, type TestApp, uniqueName, withTestApp } from './helpers/app.js';
import { targets } from './helpers/databases.js';
import { passwordVerifications } from './helpers/metrics.js';

const REAL_LIMITS = SHIPPED_SIGNIN_LIMITS;
const APP_ORIGIN = 'https://app.example.com';

let addressCount = 0;
/** A client address that no other test uses, so that no two tests share a rate-limit budget. */
function newAddress(): string {
  addressCount += 1;
  return `172.16.${(addressCount >> 8) & 255}.${addressCount & 255}`;
}

function assertTooManyRequests(response: LightMyRequestResponse, context = ''): void {
  assert.equal(response.statusCode, 429, `${context} ${response.body}`);
  assert.equal(problem(response).code, 'too_many_requests');
  const retryAfter = Number(response.headers['retry-after']);
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After ${response.headers['retry-after']}`);
}

function assertHardenedHeaders(response: LightMyRequestResponse, context: string): void {
  const headers = response.headers;
  assert.equal(headers['x-content-type-options'], 'nosniff', context);
  assert.equal(headers['cache-control'], 'no-store', context);
  const csp = String(headers['content-security-policy'] ?? '');
  assert.match(csp, /(^|;)\s*default-src 'none'\s*(;|$)/, `${context}: CSP ${csp}`);
  assert.match(csp, /(^|;)\s*frame-ancestors 'none'\s*(;|$)/, `${context}: CSP ${csp}`);
  assert.match(String(headers['referrer-policy']), /^(no-referrer|same-origin|strict-origin|strict-origin-when-cross-origin)$/, context);
  assert.equal(headers['x-powered-by'], undefined, context);
  assert.equal(headers.server, undefined, context);
}

function assertNoCors(response: LightMyRequestResponse, context: string): void {
  const cors = Object.keys(response.headers).filter((name) => name.startsWith('access-control-'));
  assert.deepEqual(cors, [], `${context}: ${JSON.stringify(response.headers)}`);
}

/** A JSON sign-in body whose username sits `depth` arrays and objects deep. */
function nestedSignIn(depth: number): string {
  return `{"username":${'['.repeat(depth - 1)}"alice"${']'.repeat(depth - 1)},"password":"x"}`;
}

for (const { target, skip } of await targets()) {
  describe(`request rate limits on ${target}`, { skip }, () => {
    const withApp = (overrides: Partial<Config>, run: (app: TestApp) => Promise<void>) =>
      withTestApp(target, { ...REAL_LIMITS, ...overrides }, run);

    test('ASVS 11.1.4, OWASP API4: the general limit holds on every route, unknown paths included', async () => {
      await withApp({ rateLimitPerMinute: 5 }, async (own) => {
        const ip = newAddress();
        const statuses = [];
        for (const url of ['/healthz', '/no/such/path', '/v1/users/me', '/.well-known/jwks.json', '/no/such/path']) {
          statuses.push((await own.app.inject({ url, remoteAddress: ip })).statusCode);
        }
        assert.deepEqual(statuses, [200, 404, 401, 200, 404]);
        assertTooManyRequests(await own.app.inject({ url: '/no/such/path', remoteAddress: ip }), 'an unknown path');
        assertTooManyRequests(await own.app.inject({ url: '/healthz', remoteAddress: ip }), 'a known path');
        assertTooManyRequests(await own.app.inject({ method: 'DELETE', url: '/healthz', remoteAddress: ip }), 'a wrong method');
        assert.equal((await own.app.inject({ url: '/healthz', remoteAddress: newAddress() })).statusCode, 200, 'another client');
      });
    });

    test('ASVS 11.1.4: requests refused 401 count toward the general limit, and past it no password is verified', async () => {
      await withApp({ rateLimitPerMinute: 3 }, async (own) => {
        const ip = newAddress();
        for (let i = 0; i < 3; i += 1) {
          const response = await own.app.inject({ url: '/v1/users/me', remoteAddress: ip });
          assert.equal(response.statusCode, 401, `request ${i + 1}`);
        }
        assertTooManyRequests(await own.app.inject({ url: '/v1/users/me', remoteAddress: ip }), 'without credentials');
        const verified = await passwordVerifications(own.app);
        const wrongBasic = { authorization: own.basic(uniqueName('ghost'), 'some-password-guess') };
        assertTooManyRequests(await own.app.inject({ url: '/v1/users/me', headers: wrongBasic, remoteAddress: ip }), 'with Basic');
        assert.equal(await passwordVerifications(own.app), verified);
      });
    });

    test('ASVS 2.2.1, 11.1.4: the sign-in limit holds on every sign-in and sign-up route and stays on without the general limit', async () => {
      await withApp({ rateLimitPerMinute: 0, openSignup: true }, async (own) => {
        const user = await own.createUser();
        const signUp = (url: string, ip: string) => {
          const username = uniqueName('signup');
          const payload = { username, email: `${username}@example.com`, password: `pw-${username}-long` };
          return own.app.inject({ method: 'POST', url, payload, remoteAddress: ip });
        };
        const routes: [string, (ip: string) => Promise<LightMyRequestResponse>, number][] = [
          [
            'POST /v1/sessions',
            (ip) =>
              own.app.inject({
                method: 'POST',
                url: '/v1/sessions',
                payload: { username: user.username, password: user.password },
                remoteAddress: ip,
              }),
            201,
          ],
          [
            'GET /api/login',
            (ip) =>
              own.app.inject({ url: '/api/login', headers: { authorization: own.basic(user.username, user.password) }, remoteAddress: ip }),
            200,
          ],
          ['anonymous POST /v1/users', (ip) => signUp('/v1/users', ip), 201],
          ['anonymous POST /api/users', (ip) => signUp('/api/users', ip), 201],
        ];
        for (const [route, call, expected] of routes) {
          const ip = newAddress();
          for (let i = 0; i < 30; i += 1) {
            const response = await call(ip);
            assert.equal(response.statusCode, expected, `${route}, request ${i + 1}: ${response.body}`);
          }
          assertTooManyRequests(await call(ip), route);
          assert.equal((await call(newAddress())).statusCode, expected, `${route} from another client`);
        }
      });
    });

    test('ASVS 11.1.4: an admin creating users is not held to the sign-in limit, an anonymous caller is', async () => {
      await withApp({ signInRateLimitPerMinute: 3, openSignup: true }, async (own) => {
        const ip = newAddress();
        const create = (authorization?: string) => {
          const username = uniqueName('made');
          return own.app.inject({
            method: 'POST',
            url: '/v1/users',
            headers: authorization ? { authorization } : {},
            payload: { username, email: `${username}@example.com`, password: `pw-${username}-long` },
            remoteAddress: ip,
          });
        };
        for (let i = 0; i < 6; i += 1) assert.equal((await create(own.adminBasic)).statusCode, 201, `admin request ${i + 1}`);
        for (let i = 0; i < 3; i += 1) assert.equal((await create()).statusCode, 201, `anonymous request ${i + 1}`);
        assertTooManyRequests(await create(), 'anonymous request 4');
        assert.equal((await create(own.adminBasic)).statusCode, 201, 'the admin still creates users');
      });
    });

    test('ASVS 11.1.4: callers with credentials on the sign-up routes are held to the general limit', async () => {
      await withApp({ rateLimitPerMinute: 4, signInRateLimitPerMinute: 2 }, async (own) => {
        const ip = newAddress();
        const create = (url: string, authorization?: string) => {
          const username = uniqueName('made');
          return own.app.inject({
            method: 'POST',
            url,
            headers: authorization ? { authorization } : {},
            payload: { username, email: `${username}@example.com`, password: `pw-${username}-long` },
            remoteAddress: ip,
          });
        };
        for (let i = 0; i < 4; i += 1) assert.equal((await create('/v1/users', own.adminBasic)).statusCode, 201, `admin request ${i + 1}`);
        assertTooManyRequests(await create('/v1/users', own.adminBasic), 'admin request 5');
        for (let i = 0; i < 4; i += 1) assert.equal((await create('/api/users', bearer('not-a-token'))).statusCode, 401);
        assertTooManyRequests(await create('/api/users', bearer('not-a-token')), 'a bogus token, request 5');
        // Anonymous sign-ups from that address keep their own, stricter budget.
        for (let i = 0; i < 2; i += 1) assert.equal((await create('/v1/users')).statusCode, 401, `anonymous request ${i + 1}`);
        assertTooManyRequests(await create('/v1/users'), 'anonymous request 3');
      });
    });

    test('ASVS 11.1.4: X-Forwarded-For from an untrusted client does not make it a new client', async () => {
      await withApp({ signInRateLimitPerMinute: 3, rateLimitPerMinute: 5 }, async (own) => {
        const ip = newAddress();
        const user = await own.createUser();
        const signIn = (forwarded: string) =>
          own.app.inject({
            method: 'POST',
            url: '/v1/sessions',
            headers: { 'x-forwarded-for': forwarded },
            payload: { username: user.username, password: user.password },
            remoteAddress: ip,
          });
        for (let i = 1; i <= 3; i += 1) assert.equal((await signIn(`198.51.100.${i}`)).statusCode, 201);
        assertTooManyRequests(await signIn('198.51.100.4'), 'sign-in limit');
        const health = (forwarded: string) =>
          own.app.inject({ url: '/healthz', headers: { 'x-forwarded-for': forwarded }, remoteAddress: ip });
        for (let i = 1; i <= 5; i += 1) assert.equal((await health(`198.51.100.${i}`)).statusCode, 200);
        assertTooManyRequests(await health('198.51.100.6'), 'general limit');
      });
    });

    test('ASVS 11.1.4: behind a trusted proxy, X-Forwarded-For tells clients apart for rate limits and throttling', async () => {
      await withApp({ signInRateLimitPerMinute: 3, signInFailuresPerUsernameAndIp: 2, trustProxy: '127.0.0.1' }, async (own) => {
        const user = await own.createUser();
        const signIn = (forwarded: string, password = user.password, remoteAddress = '127.0.0.1') =>
          own.app.inject({
            method: 'POST',
            url: '/v1/sessions',
            headers: { 'x-forwarded-for': forwarded },
            payload: { username: user.username, password },
            remoteAddress,
          });
        for (let i = 0; i < 3; i += 1) assert.equal((await signIn('203.0.113.1')).statusCode, 201);
        assertTooManyRequests(await signIn('203.0.113.1'), 'the same forwarded client');
        assert.equal((await signIn('203.0.113.2')).statusCode, 201, 'another forwarded client');
        const logins = await own.app.inject({ url: `/v1/users/${user.id}/logins`, headers: { authorization: own.adminBasic } });
        assert.ok(
          logins.json().items.some((login: { ip: string }) => login.ip === '203.0.113.1'),
          logins.body,
        );

        // The sign-in throttle is keyed on the forwarded client too.
        for (let i = 0; i < 2; i += 1) assert.equal((await signIn('203.0.113.3', 'wrong-password-x')).statusCode, 401);
        assert.equal((await signIn('203.0.113.3')).statusCode, 429, 'the throttled forwarded client');
        assert.equal((await signIn('203.0.113.4')).statusCode, 201, 'another forwarded client');

        // A client that is not a listed proxy cannot choose its address.
        const untrusted = newAddress();
        for (let i = 1; i <= 3; i += 1) assert.equal((await signIn(`203.0.113.${10 + i}`, user.password, untrusted)).statusCode, 201);
        assertTooManyRequests(await signIn('203.0.113.20', user.password, untrusted), 'an untrusted client');
      });
    });
  });

  describe(`hardened HTTP surface on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target, { ...REAL_LIMITS, corsOrigins: [APP_ORIGIN] });
    });
    after(async () => t?.close());

    test('ASVS 14.4, 8.2.1, 14.3.3, 5.0 3.4: security headers on every answer, errors included', async () => {
      const user = await t.createUser();
      const token = (await t.signIn(user.username, user.password)).access_token;
      const answers: [string, number, LightMyRequestResponse][] = [
        ['GET /healthz', 200, await t.app.inject({ url: '/healthz' })],
        ['GET /v1/users/me', 200, await t.app.inject({ url: '/v1/users/me', headers: { authorization: bearer(token) } })],
        [
          'POST /v1/sessions',
          201,
          await t.app.inject({ method: 'POST', url: '/v1/sessions', payload: { username: user.username, password: user.password } }),
        ],
        ['invalid body', 400, await t.app.inject({ method: 'POST', url: '/v1/sessions', payload: {} })],
        ['no credentials', 401, await t.app.inject({ url: '/v1/users/me' })],
        ['not an admin', 403, await t.app.inject({ url: '/v1/users', headers: { authorization: bearer(token) } })],
        ['unknown path', 404, await t.app.inject({ url: '/no/such/path' })],
        ['wrong method', 405, await t.app.inject({ method: 'DELETE', url: '/healthz' })],
        [
          'large body',
          413,
          await t.app.inject({ method: 'POST', url: '/v1/sessions', payload: { username: 'x', password: 'y'.repeat(70_000) } }),
        ],
        [
          'text body',
          415,
          await t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { 'content-type': 'text/plain' }, payload: 'username=x' }),
        ],
      ];
      const limited = await buildTestApp(target, { ...REAL_LIMITS, rateLimitPerMinute: 1 });
      try {
        await limited.app.inject({ url: '/healthz' });
        answers.push(['rate limited', 429, await limited.app.inject({ url: '/healthz' })]);
      } finally {
        await limited.close();
      }
      for (const [what, status, response] of answers) {
        assert.equal(response.statusCode, status, `${what}: ${response.body}`);
        assertHardenedHeaders(response, what);
      }
    });

    test('ASVS 14.3.3: over real HTTP there is no Server or X-Powered-By header', async () => {
      const address = await t.app.listen({ port: 0, host: '127.0.0.1' });
      for (const path of ['/healthz', '/no/such/path', '/v1/users/me']) {
        const response = await fetch(`${address}${path}`);
        assert.equal(response.headers.get('server'), null, path);
        assert.equal(response.headers.get('x-powered-by'), null, path);
        assert.equal(response.headers.get('x-content-type-options'), 'nosniff', path);
        await response.arrayBuffer();
      }
    });

    test('ASVS 14.5.3: CORS answers the listed origin, also on a preflight', async () => {
      const simple = await t.app.inject({ url: '/healthz', headers: { origin: APP_ORIGIN } });
      assert.equal(simple.headers['access-control-allow-origin'], APP_ORIGIN);
      assert.notEqual(simple.headers['access-control-allow-credentials'], 'true');
      const preflight = await t.app.inject({
        method: 'OPTIONS',
        url: '/v1/users',
        headers: {
          origin: APP_ORIGIN,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization, content-type',
        },
      });
      assert.ok(preflight.statusCode === 200 || preflight.statusCode === 204, `${preflight.statusCode}`);
      assert.equal(preflight.headers['access-control-allow-origin'], APP_ORIGIN);
      assert.match(String(preflight.headers['access-control-allow-methods']), /POST/);
      assert.match(String(preflight.headers['access-control-allow-headers']), /authorization/i);
      assertHardenedHeaders(preflight, 'preflight');
    });

    test('ASVS 14.5.3: CORS gives another origin, a look-alike and null no Access-Control-Allow-Origin', async () => {
      for (const origin of ['https://evil.example.com', 'https://app.example.com.evil.net', 'http://app.example.com', 'null']) {
        const simple = await t.app.inject({ url: '/healthz', headers: { origin } });
        assert.equal(simple.statusCode, 200);
        assert.equal(simple.headers['access-control-allow-origin'], undefined, origin);
        const preflight = await t.app.inject({
          method: 'OPTIONS',
          url: '/v1/users',
          headers: { origin, 'access-control-request-method': 'POST' },
        });
        assert.equal(preflight.headers['access-control-allow-origin'], undefined, `preflight from ${origin}`);
        assert.equal(preflight.headers['access-control-allow-methods'], undefined, `preflight from ${origin}`);
      }
    });

    test('ASVS 14.5.3: without allowed origins there are no CORS headers at all', async () => {
      const plain = await buildTestApp(target, REAL_LIMITS);
      try {
        assertNoCors(await plain.app.inject({ url: '/healthz', headers: { origin: APP_ORIGIN } }), 'GET');
        assertNoCors(
          await plain.app.inject({
            method: 'OPTIONS',
            url: '/v1/users',
            headers: { origin: APP_ORIGIN, 'access-control-request-method': 'POST' },
          }),
          'preflight',
        );
      } finally {
        await plain.close();
      }
    });

    test('OWASP API4: a body over the limit is 413 payload_too_large', async () => {
      const response = await t.app.inject({
        method: 'POST',
        url: '/v1/users',
        headers: { authorization: t.adminBasic },
        payload: { username: uniqueName(), email: 'big@example.com', password: 'p'.repeat(70_000) },
      });
      assert.equal(response.statusCode, 413, response.body);
      assert.equal(problem(response).code, 'payload_too_large');
    });

    test('OWASP API4: JSON nested deeper than jsonMaxDepth is 400 invalid_request, before any other check', async () => {
      const post = (payload: string) =>
        t.app.inject({ method: 'POST', url: '/v1/sessions', headers: { 'content-type': 'application/json' }, payload });
      const atLimit = await post(nestedSignIn(20));
      assert.equal(atLimit.statusCode, 400, atLimit.body);
      assert.ok(!problem(atLimit).errors?.some((error) => error.field === 'body'), `depth 20 is parsed: ${atLimit.body}`);
      for (const payload of [
        nestedSignIn(21),
        '['.repeat(21) + ']'.repeat(21),
        '['.repeat(10_000) + ']'.repeat(10_000),
        '{"a":'.repeat(10_000),
      ]) {
        const response = await post(payload);
        assert.equal(response.statusCode, 400, response.body);
        assert.equal(problem(response).code, 'invalid_request');
        assert.ok(
          problem(response).errors?.some((error) => error.field === 'body'),
          response.body,
        );
      }
    });

    test('OWASP API4: brackets and quotes inside JSON strings do not count as nesting', async () => {
      const password = `[{"\\[${'['.repeat(30)}{`;
      const user = await t.createUser({ password: `${password}-long-enough` });
      const response = await t.app.inject({
        method: 'POST',
        url: '/v1/sessions',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ username: user.username, password: user.password }),
      });
      assert.equal(response.statusCode, 201, response.body);
    });

    test('ASVS 13.1.5: a body of another media type is 415 unsupported_media_type', async () => {
      for (const contentType of ['text/plain', 'application/xml', 'multipart/form-data; boundary=x']) {
        const response = await t.app.inject({
          method: 'POST',
          url: '/v1/sessions',
          headers: { 'content-type': contentType },
          payload: 'username=a',
        });
        assert.equal(response.statusCode, 415, `${contentType}: ${response.body}`);
        assert.equal(problem(response).code, 'unsupported_media_type');
      }
    });

    test('ASVS 14.5.1: TRACE is 405 method_not_allowed', async () => {
      for (const url of ['/v1/users', '/v1/sessions', '/healthz']) {
        const response = await t.app.inject({ method: 'TRACE', url, headers: { authorization: t.adminBasic } });
        assert.equal(response.statusCode, 405, `${url}: ${response.body}`);
        assert.equal(problem(response).code, 'method_not_allowed');
        assert.ok(!String(response.headers.allow).includes('TRACE'), `${url}: Allow ${response.headers.allow}`);
        assert.ok(!response.body.includes('Basic '), 'the request is not echoed');
      }
    });

    test('ASVS 3.1.1: tokens and credentials in the query string are never accepted', async () => {
      const user = await t.createUser();
      const token = (await t.signIn(user.username, user.password)).access_token;
      assert.equal((await t.app.inject({ url: '/v1/users/me', headers: { authorization: bearer(token) } })).statusCode, 200);
      const basic = encodeURIComponent(t.basic(user.username, user.password));
      const credentials = encodeURIComponent(user.password);
      for (const url of [
        `/v1/users/me?access_token=${token}`,
        `/v1/users/me?token=${token}`,
        `/v1/users/me?authorization=${encodeURIComponent(bearer(token))}`,
        `/v1/users/me?authorization=${basic}`,
        `/v1/users/me?username=${user.username}&password=${credentials}`,
        `/api/login?username=${user.username}&password=${credentials}`,
        `/api/users?access_token=${token}`,
      ]) {
        const response = await t.app.inject({ url });
        assert.equal(response.statusCode, 401, `${url}: ${response.body}`);
        assert.equal(problem(response).code, 'unauthorized');
      }
      const signIn = await t.app.inject({ method: 'POST', url: `/v1/sessions?username=${user.username}&password=${credentials}` });
      assert.equal(signIn.statusCode, 400, signIn.body);
    });
  });
}
