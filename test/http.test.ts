// Operations endpoints, request ids, the error catalogue through real requests, and what the
// logs may never contain.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { createLogger, DeferredChildLogger } from '../src/http/logger.js';
import { ADMIN, bearer, buildTestApp, problem, type TestApp, uniqueName } from './helpers/app.js';
import { targets } from './helpers/databases.js';

const SANE_ID = /^[A-Za-z0-9._:@-]{1,128}$/;

/** Asserts a complete RFC 9457 problem with the status and code; returns the body. */
function expectProblem(response: LightMyRequestResponse, status: number, code: string) {
  assert.equal(response.statusCode, status, response.body);
  assert.match(String(response.headers['content-type']), /^application\/problem\+json/);
  const body = problem(response);
  const raw = response.json();
  for (const field of ['type', 'title', 'detail', 'request_id']) {
    assert.equal(typeof raw[field], 'string', `${field} is a string in ${response.body}`);
    assert.ok(raw[field].length > 0, `${field} is not empty`);
  }
  assert.equal(raw.status, status);
  assert.equal(body.code, code);
  assert.equal(body.request_id, response.headers['x-request-id']);
  if (status === 401) assert.ok(response.headers['www-authenticate'], '401 carries WWW-Authenticate');
  return body;
}

for (const { target, skip } of await targets()) {
  describe(`operations endpoints on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target);
    });
    after(async () => t?.close());

    test('GET /healthz and GET /readyz answer 200 while the database answers', async () => {
      const health = await t.app.inject({ url: '/healthz' });
      assert.equal(health.statusCode, 200, health.body);
      const ready = await t.app.inject({ url: '/readyz' });
      assert.equal(ready.statusCode, 200, ready.body);
    });

    test('GET /readyz answers 503 while the instance drains (after SIGTERM), and /healthz stays 200', async () => {
      t.services.lifecycle.draining = true;
      try {
        const ready = await t.app.inject({ url: '/readyz' });
        assert.equal(ready.statusCode, 503, ready.body);
        assert.equal(ready.json().code, 'unavailable');
        assert.equal((await t.app.inject({ url: '/healthz' })).statusCode, 200);
      } finally {
        t.services.lifecycle.draining = false;
      }
      assert.equal((await t.app.inject({ url: '/readyz' })).statusCode, 200);
    });

    test('GET /metrics counts requests by route pattern and status, and times password hashing', async () => {
      const user = await t.createUser();
      await t.signIn(user.username, user.password);
      const found = await t.app.inject({ url: `/v1/users/${user.id}`, headers: { authorization: t.adminBasic } });
      assert.equal(found.statusCode, 200);
      const missingId = `missing-${uniqueName('id')}`;
      const missing = await t.app.inject({ url: `/v1/users/${missingId}`, headers: { authorization: t.adminBasic } });
      assert.equal(missing.statusCode, 404);
      const unknownPath = `/no-such-path-${uniqueName('p')}`;
      assert.equal((await t.app.inject({ url: unknownPath })).statusCode, 404);

      const metrics = await t.app.inject({ url: '/metrics' });
      assert.equal(metrics.statusCode, 200);
      assert.match(String(metrics.headers['content-type']), /^text\/plain/);
      const lines = metrics.body.split('\n');
      const count = (metric: string, ...labels: string[]) => {
        const line = lines.find((one) => one.startsWith(`${metric}{`) && labels.every((label) => one.includes(label)));
        return line ? Number(line.split(' ').pop()) : 0;
      };
      const requests = 'gatehouse_http_request_duration_seconds_count';
      assert.ok(count(requests, 'method="GET"', 'route="/v1/users/:id"', 'status="200"') >= 1, metrics.body);
      assert.ok(count(requests, 'method="GET"', 'route="/v1/users/:id"', 'status="404"') >= 1, metrics.body);
      assert.ok(count(requests, 'method="POST"', 'route="/v1/sessions"', 'status="201"') >= 1, metrics.body);
      assert.ok(!metrics.body.includes(user.id), 'concrete ids never become label values');
      assert.ok(!metrics.body.includes(missingId));
      assert.ok(!metrics.body.includes(unknownPath), 'unknown paths never become label values');
      assert.ok(count('gatehouse_password_hash_duration_seconds_count', 'operation="hash"') >= 1, metrics.body);
      assert.ok(count('gatehouse_password_hash_duration_seconds_count', 'operation="verify"') >= 1, metrics.body);
    });

    test('GET /openapi.json is OpenAPI 3.1 and lists every path and method of the contract', async () => {
      const response = await t.app.inject({ url: '/openapi.json' });
      assert.equal(response.statusCode, 200, response.body);
      const doc = response.json();
      assert.equal(doc.openapi, '3.1.0');
      const expected: Record<string, string[]> = {
        '/v1/users': ['get', 'post'],
        '/v1/users/{id}': ['delete', 'get', 'patch'],
        '/v1/users/me': ['get'],
        '/v1/users/me/password': ['put'],
        '/v1/users/{id}/logins': ['get'],
        '/v1/sessions': ['post'],
        '/v1/sessions/refresh': ['post'],
        '/v1/sessions/current': ['delete'],
        '/.well-known/jwks.json': ['get'],
        '/api/users': ['get', 'post'],
        '/api/users/{id}': ['delete', 'put'],
        '/api/login': ['get'],
        '/healthz': ['get'],
        '/readyz': ['get'],
        '/metrics': ['get'],
      };
      for (const [path, methods] of Object.entries(expected)) {
        assert.ok(doc.paths[path], `${path} is documented`);
        for (const method of methods) assert.ok(doc.paths[path][method], `${method.toUpperCase()} ${path} is documented`);
      }
    });

    test('the OpenAPI document declares every error response as application/problem+json', async () => {
      const doc = (await t.app.inject({ url: '/openapi.json' })).json();
      assert.ok(doc.components.schemas.Problem, 'the Problem schema is a component');
      let errorResponses = 0;
      for (const [path, operations] of Object.entries<Record<string, { responses?: Record<string, { content?: object }> }>>(doc.paths)) {
        for (const [method, operation] of Object.entries(operations)) {
          for (const [status, response] of Object.entries(operation.responses ?? {})) {
            if (Number(status) < 400) continue;
            errorResponses += 1;
            assert.deepEqual(Object.keys(response.content ?? {}), ['application/problem+json'], `${method} ${path} ${status}`);
          }
        }
      }
      assert.ok(errorResponses > 20, `error responses are documented at all (${errorResponses})`);
      assert.ok(doc.paths['/v1/users'].post.responses['409'], 'POST /v1/users documents its 409');
      assert.ok(doc.paths['/readyz'].get.responses['503'], 'GET /readyz documents its 503');
    });

    test('GET /docs serves an HTML page that renders the document', async () => {
      let response = await t.app.inject({ url: '/docs' });
      for (let hops = 0; hops < 3 && response.statusCode >= 300 && response.statusCode < 400; hops += 1) {
        response = await t.app.inject({ url: new URL(String(response.headers.location), 'http://localhost/docs').pathname });
      }
      assert.equal(response.statusCode, 200, response.body);
      assert.match(String(response.headers['content-type']), /^text\/html/);
      assert.match(response.body, /<html/i);
      assert.match(response.body, /swagger|redoc|openapi|scalar/i);
    });
  });

  describe(`readiness when the database is not usable on ${target}`, { skip }, () => {
    test('GET /readyz answers 503 unavailable once the database connection is gone, while /healthz stays 200', async () => {
      const t = await buildTestApp(target);
      try {
        await t.services.database.db.destroy();
        const ready = await t.app.inject({ url: '/readyz' });
        expectProblem(ready, 503, 'unavailable');
        const health = await t.app.inject({ url: '/healthz' });
        assert.equal(health.statusCode, 200);
      } finally {
        await t.close();
      }
    });

    test('GET /readyz answers 503 unavailable when the migrations are not applied', async () => {
      const t = await buildTestApp(target);
      try {
        // The database forgets its migrations, as an un-migrated database would look.
        await sql`delete from kysely_migration`.execute(t.services.database.db);
        const ready = await t.app.inject({ url: '/readyz' });
        const body = expectProblem(ready, 503, 'unavailable');
        assert.match(body.detail, /migration/i);
      } finally {
        await t.close();
      }
    });
  });

  describe(`request ids on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target);
    });
    after(async () => t?.close());

    test('every response carries an X-Request-Id, a different one per request', async () => {
      const user = await t.createUser();
      const responses = [
        await t.app.inject({ url: '/healthz' }),
        await t.app.inject({ url: '/metrics' }),
        await t.app.inject({ url: '/openapi.json' }),
        await t.app.inject({ url: '/v1/users/me' }),
        await t.app.inject({ url: '/nowhere' }),
        await t.app.inject({ method: 'PUT', url: '/v1/sessions' }),
        await t.app.inject({ method: 'POST', url: '/v1/sessions', payload: { username: user.username, password: user.password } }),
        await t.app.inject({ method: 'DELETE', url: `/v1/users/${user.id}`, headers: { authorization: t.adminBasic } }),
      ];
      const ids = responses.map((response) => String(response.headers['x-request-id'] ?? ''));
      for (const id of ids) assert.match(id, SANE_ID);
      assert.equal(new Set(ids).size, ids.length);
    });

    test('echoes a sane X-Request-Id, in the header and in a problem body', async () => {
      const ok = await t.app.inject({ url: '/healthz', headers: { 'x-request-id': 'abc-123' } });
      assert.equal(ok.headers['x-request-id'], 'abc-123');
      const failed = await t.app.inject({ url: '/v1/users/me', headers: { 'x-request-id': 'abc-124' } });
      assert.equal(failed.headers['x-request-id'], 'abc-124');
      assert.equal(expectProblem(failed, 401, 'unauthorized').request_id, 'abc-124');
    });

    test('a route that asks for a caller asks on its HEAD route too; a public route asks no one', async () => {
      const user = await t.createUser();
      const { access_token } = await t.signIn(user.username, user.password);
      const bearer = { authorization: `Bearer ${access_token}` };
      assert.equal((await t.app.inject({ method: 'HEAD', url: '/v1/users/me' })).statusCode, 401);
      assert.equal((await t.app.inject({ method: 'HEAD', url: '/v1/users/me', headers: bearer })).statusCode, 200);
      assert.equal((await t.app.inject({ method: 'HEAD', url: '/v1/users', headers: bearer })).statusCode, 403);
      assert.equal((await t.app.inject({ method: 'HEAD', url: '/v1/users', headers: { authorization: t.adminBasic } })).statusCode, 200);
      // Public routes ignore credentials, even wrong ones.
      const wrong = { authorization: t.basic(user.username, 'not-the-password') };
      assert.equal((await t.app.inject({ url: '/healthz', headers: wrong })).statusCode, 200);
      assert.equal((await t.app.inject({ method: 'HEAD', url: '/healthz', headers: wrong })).statusCode, 200);
    });

    test('replaces an X-Request-Id that is too long or carries odd characters', async () => {
      for (const sent of ['a'.repeat(300), '<script>alert(1)</script>', 'two words', '']) {
        const response = await t.app.inject({ url: '/v1/users/me', headers: { 'x-request-id': sent } });
        const id = String(response.headers['x-request-id']);
        assert.notEqual(id, sent);
        assert.match(id, SANE_ID);
        assert.equal(response.json().request_id, id);
      }
    });
  });

  describe(`the error catalogue on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target);
    });
    after(async () => t?.close());

    test('an unknown path is 404 not_found', async () => {
      expectProblem(await t.app.inject({ url: '/v2/users' }), 404, 'not_found');
      expectProblem(await t.app.inject({ method: 'POST', url: '/nothing/here', payload: {} }), 404, 'not_found');
    });

    test('a known path with a wrong method is 405 method_not_allowed with an Allow header', async () => {
      const cases: { method: 'PUT' | 'TRACE' | 'DELETE' | 'POST' | 'GET'; url: string; allow: string[] }[] = [
        { method: 'PUT', url: '/v1/sessions', allow: ['POST'] },
        { method: 'TRACE', url: '/v1/sessions', allow: ['POST'] },
        { method: 'DELETE', url: '/v1/users', allow: ['GET', 'POST'] },
        { method: 'POST', url: '/v1/users/some-id', allow: ['DELETE', 'GET', 'PATCH'] },
        { method: 'GET', url: '/v1/sessions/current', allow: ['DELETE'] },
        { method: 'POST', url: '/api/login', allow: ['GET'] },
      ];
      for (const { method, url, allow } of cases) {
        const response = await t.app.inject({ method, url, headers: { authorization: t.adminBasic } });
        expectProblem(response, 405, 'method_not_allowed');
        const allowed = String(response.headers.allow ?? '')
          .split(',')
          .map((one) => one.trim());
        for (const one of allow) assert.ok(allowed.includes(one), `${method} ${url}: Allow ${response.headers.allow} has ${one}`);
        assert.ok(!allowed.includes(method), `${method} ${url}: Allow does not list ${method}`);
      }
    });

    test('a body over the limit is 413 payload_too_large, and a small one still works', async () => {
      const small = await buildTestApp(target, { bodyLimitBytes: 1024 });
      try {
        const big = { username: 'someone', password: 'x'.repeat(2048) };
        expectProblem(await small.app.inject({ method: 'POST', url: '/v1/sessions', payload: big }), 413, 'payload_too_large');
        expectProblem(
          await small.app.inject({
            method: 'POST',
            url: '/v1/users',
            headers: { authorization: small.adminBasic },
            payload: { ...big, email: 'a@b.co' },
          }),
          413,
          'payload_too_large',
        );
        const user = await small.createUser();
        const signIn = await small.app.inject({
          method: 'POST',
          url: '/v1/sessions',
          payload: { username: user.username, password: user.password },
        });
        assert.equal(signIn.statusCode, 201, signIn.body);
      } finally {
        await small.close();
      }
    });

    test('a text/plain or XML body is 415 unsupported_media_type', async () => {
      for (const contentType of ['text/plain', 'application/xml', 'text/xml']) {
        const response = await t.app.inject({
          method: 'POST',
          url: '/v1/sessions',
          headers: { 'content-type': contentType },
          payload: contentType === 'text/plain' ? 'username=root' : '<session><username>root</username></session>',
        });
        expectProblem(response, 415, 'unsupported_media_type');
      }
    });

    test('a form body on a /v1 endpoint is 415: only the origin POST /api/users takes forms', async () => {
      const user = await t.createUser();
      const form = { 'content-type': 'application/x-www-form-urlencoded' };
      const signIn = await t.app.inject({
        method: 'POST',
        url: '/v1/sessions',
        headers: form,
        payload: new URLSearchParams({ username: user.username, password: user.password }).toString(),
      });
      expectProblem(signIn, 415, 'unsupported_media_type');
      const username = uniqueName('form');
      const create = await t.app.inject({
        method: 'POST',
        url: '/v1/users',
        headers: { ...form, authorization: t.adminBasic },
        payload: new URLSearchParams({ username, email: `${username}@example.com`, password: `pw-${username}-long-enough` }).toString(),
      });
      expectProblem(create, 415, 'unsupported_media_type');
      const listed = await t.app.inject({ url: `/v1/users?q=${username}`, headers: { authorization: t.adminBasic } });
      assert.deepEqual(listed.json().items, [], 'no user was created');
    });

    test('malformed or empty JSON is 400 invalid_request with field errors', async () => {
      for (const payload of ['{"username": "root", "password": ', '{"username": "root"}}', 'not json', '']) {
        const response = await t.app.inject({
          method: 'POST',
          url: '/v1/sessions',
          headers: { 'content-type': 'application/json' },
          payload,
        });
        const body = expectProblem(response, 400, 'invalid_request');
        assert.ok(Array.isArray(body.errors) && body.errors.length > 0, response.body);
      }
    });

    test('more requests than the per-minute limit from one address are 429 too_many_requests with Retry-After', async () => {
      const limited = await buildTestApp(target, { rateLimitPerMinute: 3 });
      try {
        for (let i = 0; i < 3; i += 1) {
          const response = await limited.app.inject({ url: '/.well-known/jwks.json' });
          assert.equal(response.statusCode, 200, `request ${i + 1}: ${response.body}`);
        }
        const fourth = await limited.app.inject({ url: '/.well-known/jwks.json' });
        expectProblem(fourth, 429, 'too_many_requests');
        const retryAfter = Number(fourth.headers['retry-after']);
        assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, `Retry-After ${fourth.headers['retry-after']}`);
        const otherClient = await limited.app.inject({ url: '/.well-known/jwks.json', remoteAddress: '10.1.2.3' });
        assert.equal(otherClient.statusCode, 200, 'another address has its own budget');
      } finally {
        await limited.close();
      }
    });
  });

  describe(`logs on ${target}`, { skip }, () => {
    test('never carry a password, a token, Basic credentials or an Authorization value, and tie each line to a request id', async () => {
      const t = await buildTestApp(target);
      try {
        const canary = 'canary-PASSWORD-0123456789';
        const changed = 'canary-CHANGED-0123456789';
        const wrong = 'canary-WRONG-0123456789';
        const queryPassword = `canary-query-${uniqueName('q')}`;
        const user = await t.createUser({ password: canary });
        const userBasic = t.basic(user.username, canary);
        const secrets = new Set<string>([canary, changed, wrong, queryPassword, ADMIN.password]);
        const keepToken = (token: string) => {
          secrets.add(token);
          // A JWT logged in part is still a leak: its payload and signature are checked alone too.
          for (const part of token.split('.').slice(1)) if (part.length >= 16) secrets.add(part);
        };
        for (const header of [userBasic, t.adminBasic]) secrets.add(header.slice('Basic '.length));

        let step = 0;
        const requestIds: string[] = [];
        const send = async (options: InjectOptions & { headers?: Record<string, string> }, status: number) => {
          step += 1;
          const id = `canary-step-${step}`;
          requestIds.push(id);
          const response = await t.app.inject({ ...options, headers: { ...options.headers, 'x-request-id': id } });
          assert.equal(response.statusCode, status, `step ${step}: ${response.body}`);
          return response;
        };

        const jsonPair = (
          await send({ method: 'POST', url: '/v1/sessions', payload: { username: user.username, password: canary } }, 201)
        ).json();
        const basicPair = (await send({ method: 'POST', url: '/v1/sessions', headers: { authorization: userBasic } }, 201)).json();
        for (const pair of [jsonPair, basicPair]) {
          keepToken(pair.access_token);
          keepToken(pair.refresh_token);
        }
        await send({ method: 'POST', url: '/v1/sessions', payload: { username: user.username, password: wrong } }, 401);
        await send({ url: '/v1/users/me', headers: { authorization: bearer(jsonPair.access_token) } }, 200);
        await send({ url: '/v1/users/me', headers: { authorization: userBasic } }, 200);
        const refreshed = (
          await send({ method: 'POST', url: '/v1/sessions/refresh', payload: { refresh_token: jsonPair.refresh_token } }, 200)
        ).json();
        keepToken(refreshed.access_token);
        keepToken(refreshed.refresh_token);
        await send({ method: 'POST', url: '/v1/sessions/refresh', payload: { refresh_token: jsonPair.refresh_token } }, 401);
        await send({ url: '/api/login', headers: { authorization: userBasic } }, 200);
        await send(
          {
            method: 'POST',
            url: '/v1/sessions',
            headers: { 'content-type': 'application/json' },
            payload: `{"username": "${user.username}", "password": "${canary}"`,
          },
          400,
        );
        await send(
          {
            method: 'PUT',
            url: '/v1/users/me/password',
            headers: { authorization: bearer(basicPair.access_token) },
            payload: { current_password: canary, new_password: changed },
          },
          204,
        );
        await send({ method: 'DELETE', url: '/v1/sessions/current', headers: { authorization: bearer(basicPair.access_token) } }, 204);
        const origin = uniqueName('canary');
        const query = new URLSearchParams({ username: origin, email: `${origin}@example.com`, password: queryPassword });
        await send({ method: 'POST', url: `/api/users?${query}`, headers: { authorization: t.adminBasic } }, 201);
        await send({ method: 'POST', url: `/api/users?${query}`, headers: { authorization: t.adminBasic } }, 409);

        const lines = t.logs.join('').split('\n').filter(Boolean);
        const parsed: Record<string, unknown>[] = [];
        for (const line of lines) {
          try {
            parsed.push(JSON.parse(line));
          } catch {
            assert.fail(`a log line is not JSON: ${line}`);
          }
        }
        for (const line of lines) {
          for (const secret of secrets) assert.ok(!line.includes(secret), `a log line carries a secret (${secret.slice(0, 12)}…): ${line}`);
          assert.ok(!/authorization"?\s*[:=]\s*"?(basic|bearer)/i.test(line), `a log line carries an Authorization value: ${line}`);
          assert.ok(!/(basic|bearer) [A-Za-z0-9+/=._-]{8,}/i.test(line), `a log line carries credentials: ${line}`);
        }
        for (const entry of parsed) {
          if ('req' in entry || 'res' in entry)
            assert.equal(typeof entry.reqId, 'string', `a request log line has a reqId: ${JSON.stringify(entry)}`);
        }
        for (const id of requestIds) {
          const ofRequest = parsed.filter((entry) => entry.reqId === id);
          assert.ok(
            ofRequest.some((entry) => 'req' in entry),
            `${id} was logged when it came in`,
          );
          assert.ok(
            ofRequest.some((entry) => 'res' in entry),
            `${id} was logged when it completed`,
          );
        }
      } finally {
        await t.close();
      }
    });
  });
}

describe("a request's logger", () => {
  function logged(level: string) {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger({ logLevel: level }, { write: (line: string) => lines.push(JSON.parse(line)) });
    return { logger, lines };
  }

  test('writes nothing and makes no child for a level that is off, and binds the request id when it writes', () => {
    const { logger, lines } = logged('warn');
    let children = 0;
    const child = logger.child.bind(logger);
    logger.child = ((...args: Parameters<typeof child>) => {
      children += 1;
      return child(...args);
    }) as typeof logger.child;
    const requestLog = new DeferredChildLogger(logger, { reqId: 'r-1' }, {});
    requestLog.info({ req: { method: 'GET' } }, 'incoming request');
    requestLog.debug('detail');
    assert.equal(children, 0);
    assert.equal(lines.length, 0);
    requestLog.warn({ detail: 1 }, 'something odd');
    requestLog.error('and worse');
    assert.equal(children, 1, 'one child, made on the first line written');
    assert.deepEqual(
      lines.map((line) => [line.reqId, line.msg, line.level]),
      [
        ['r-1', 'something odd', 40],
        ['r-1', 'and worse', 50],
      ],
    );
  });

  test("a route's own log level decides, and children of it keep the request id", () => {
    const { logger, lines } = logged('warn');
    const requestLog = new DeferredChildLogger(logger, { reqId: 'r-2' }, { level: 'debug' });
    assert.equal(requestLog.level, 'debug');
    requestLog.debug('shown at the route level');
    requestLog.child({ part: 'x' }).info('from a grandchild');
    assert.deepEqual(
      lines.map((line) => [line.reqId, line.msg]),
      [
        ['r-2', 'shown at the route level'],
        ['r-2', 'from a grandchild'],
      ],
    );
  });
});
