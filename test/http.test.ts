// Operations endpoints, request ids, the error catalogue through real requests, what the logs may
// never contain, configuration, the first admin, and the gatehouse command as a real process.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { buildApp } from '../src/app.js';
import { ensureFirstAdmin } from '../src/bootstrap.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { createLogger } from '../src/http/logger.js';
import { createServices } from '../src/services.js';
import { ADMIN, bearer, buildTestApp, problem, type TestApp, uniqueName } from './helpers/app.js';
import { createTestDatabase, targets } from './helpers/databases.js';

const REPO = new URL('..', import.meta.url).pathname;
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

  describe(`the first admin on ${target}`, { skip }, () => {
    const logger = createLogger({ logLevel: 'silent' });

    test('is created with a generated password that signs in as admin, exactly once', async () => {
      const database = await createTestDatabase(target);
      const config = loadConfig({}, { databaseUrl: database.url, databasePoolMax: 2, passwordHashProfile: 'test' });
      const services = await createServices(config, logger);
      const app = await buildApp(services, logger);
      try {
        const first = await ensureFirstAdmin(services);
        assert.ok(first, 'an admin was created');
        assert.equal(first.username, 'admin');
        assert.equal(typeof first.generatedPassword, 'string');
        const password = first.generatedPassword as string;
        assert.ok([...password].length >= 12, 'the generated password meets the policy');

        const signIn = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { username: 'admin', password } });
        assert.equal(signIn.statusCode, 201, signIn.body);
        assert.ok(signIn.json().user.roles.includes('admin'));

        assert.equal(await ensureFirstAdmin(services), null, 'a second call finds the admin');
        const other = await createServices(config, logger);
        try {
          assert.equal(await ensureFirstAdmin(other), null, 'another instance on the same database finds it too');
        } finally {
          await other.close();
        }
        const listed = await app.inject({
          url: '/v1/users?role=admin',
          headers: { authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}` },
        });
        assert.equal(listed.json().items.length, 1, 'exactly one admin exists');
      } finally {
        await app.close();
        await services.close();
        await database.drop();
      }
    });

    test('takes GATEHOUSE_ADMIN_USERNAME and GATEHOUSE_ADMIN_PASSWORD when they are set, and prints nothing', async () => {
      const database = await createTestDatabase(target);
      const password = 'configured-admin-password-1';
      const config = loadConfig(
        { GATEHOUSE_ADMIN_USERNAME: 'Boss', GATEHOUSE_ADMIN_PASSWORD: password },
        { databaseUrl: database.url, databasePoolMax: 2, passwordHashProfile: 'test' },
      );
      const services = await createServices(config, logger);
      const app = await buildApp(services, logger);
      try {
        assert.deepEqual(await ensureFirstAdmin(services), { username: 'boss', generatedPassword: null });
        const signIn = await app.inject({ method: 'POST', url: '/v1/sessions', payload: { username: 'boss', password } });
        assert.equal(signIn.statusCode, 201, signIn.body);
        assert.ok(signIn.json().user.roles.includes('admin'));
      } finally {
        await app.close();
        await services.close();
        await database.drop();
      }
    });
  });

  describe(`the gatehouse command on ${target}`, { skip }, () => {
    after(() => killStragglers());

    test('serve prints a generated admin password once, answers /healthz, and prints none on a restart', async () => {
      const database = await createTestDatabase(target);
      try {
        const env = { DATABASE_URL: database.url, GATEHOUSE_PASSWORD_HASH_PROFILE: 'test' };
        const first = await startServer(env);
        const passwordLines = first
          .output()
          .stdout.split('\n')
          .filter((line) => line.includes('password:'));
        assert.equal(passwordLines.length, 1, first.output().stdout);
        const password = (passwordLines[0] as string).split('password:')[1]?.trim() ?? '';
        assert.ok(password.length >= 12, `a password was printed: ${passwordLines[0]}`);
        assert.equal(first.output().stdout.split(password).length - 1, 1, 'the password is printed exactly once');
        assert.equal((await first.post('/v1/sessions', { username: 'admin', password })).status, 201);
        assert.equal(await first.stop(), 0);

        const second = await startServer(env);
        assert.ok(!second.output().stdout.includes('password:'), second.output().stdout);
        assert.ok(!second.output().stdout.includes(password));
        assert.equal((await second.post('/v1/sessions', { username: 'admin', password })).status, 201, 'the same admin still signs in');
        assert.equal(await second.stop(), 0);
      } finally {
        await database.drop();
      }
    });

    test('SIGTERM lets an in-flight request finish with a normal response, then exits 0', async () => {
      const database = await createTestDatabase(target);
      try {
        const password = 'process-admin-password-1';
        const server = await startServer({
          DATABASE_URL: database.url,
          GATEHOUSE_PASSWORD_HASH_PROFILE: 'test',
          GATEHOUSE_ADMIN_PASSWORD: password,
        });
        const body = JSON.stringify({ username: 'admin', password });
        const half = Math.floor(body.length / 2);
        const inFlight = new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = httpRequest(
            {
              host: '127.0.0.1',
              port: server.port,
              method: 'POST',
              path: '/v1/sessions',
              agent: false,
              headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-request-id': 'in-flight-1' },
            },
            (res) => {
              let text = '';
              res.setEncoding('utf8');
              res.on('data', (chunk) => {
                text += chunk;
              });
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
            },
          );
          req.on('error', reject);
          req.write(body.slice(0, half));
          server
            .waitFor((out) => out.includes('"reqId":"in-flight-1"'), 'the server received the request')
            .then(() => {
              server.child.kill('SIGTERM');
              return server.waitFor((out) => out.includes('shutting down'), 'the server began shutting down');
            })
            .then(() => req.end(body.slice(half)), reject);
        });
        const response = await inFlight;
        assert.equal(response.status, 201, response.body);
        assert.ok(JSON.parse(response.body).access_token, 'a normal sign-in response');
        assert.equal(await within(server.exited, 10_000, 'exit after SIGTERM'), 0);
      } finally {
        await database.drop();
      }
    });

    test('users create, list, set-password and disable manage accounts; migrate reports the state', async () => {
      const database = await createTestDatabase(target);
      const env = { DATABASE_URL: database.url, GATEHOUSE_PASSWORD_HASH_PROFILE: 'test' };
      try {
        const fresh = await runCli(['migrate'], env);
        assert.equal(fresh.code, 0, fresh.stderr);
        assert.match(fresh.stdout, /applied: .*create_core_tables/);
        const again = await runCli(['migrate'], env);
        assert.equal(again.code, 0, again.stderr);
        assert.match(again.stdout, /up to date/);

        const username = `cli.${process.pid}`;
        const email = `${username}@example.com`;
        const created = await runCli(
          ['users', 'create', '--username', username, '--email', email, '--password', 'cli-first-password-1'],
          env,
        );
        assert.equal(created.code, 0, created.stderr);
        assert.match(created.stdout, new RegExp(`created ${username.replace('.', '\\.')}`));

        const duplicate = await runCli(
          ['users', 'create', '--username', username, '--email', `x${email}`, '--password', 'cli-first-password-1'],
          env,
        );
        assert.equal(duplicate.code, 1);
        assert.match(duplicate.stderr, /username/i);
        assert.ok(!/\n\s+at /.test(duplicate.stderr), `no stack trace: ${duplicate.stderr}`);

        const listed = await runCli(['users', 'list'], env);
        assert.equal(listed.code, 0, listed.stderr);
        const row = tableRow(listed.stdout, username);
        assert.equal(row.USERNAME, username);
        assert.equal(row.EMAIL, email);
        assert.equal(row.STATUS, 'active');

        const reset = await runCli(['users', 'set-password', username, '--password', 'cli-second-password-2'], env);
        assert.equal(reset.code, 0, reset.stderr);
        const t = await buildTestApp(target, {}, { database, keepDatabase: true });
        try {
          const signIn = (password: string) => t.app.inject({ method: 'POST', url: '/v1/sessions', payload: { username, password } });
          assert.equal((await signIn('cli-second-password-2')).statusCode, 201, 'the new password signs in');
          assert.equal((await signIn('cli-first-password-1')).statusCode, 401, 'the old one does not');
        } finally {
          await t.close();
        }

        const disabled = await runCli(['users', 'disable', username], env);
        assert.equal(disabled.code, 0, disabled.stderr);
        assert.equal(tableRow((await runCli(['users', 'list'], env)).stdout, username).STATUS, 'disabled');
        const after = await buildTestApp(target, {}, { database, keepDatabase: true });
        try {
          const signIn = await after.app.inject({
            method: 'POST',
            url: '/v1/sessions',
            payload: { username, password: 'cli-second-password-2' },
          });
          assert.equal(signIn.statusCode, 401, 'a disabled user cannot sign in');
        } finally {
          await after.close();
        }
      } finally {
        await database.drop();
      }
    });
  });
}

describe('the gatehouse command, whatever the database', () => {
  test('an unknown command exits 2 with usage', async () => {
    const result = await runCli(['frobnicate'], {});
    assert.equal(result.code, 2);
    assert.match(result.stderr, /unknown command: frobnicate/);
    assert.match(result.stderr, /Usage:/);
  });

  test('a bad PORT exits 1 and names PORT', async () => {
    const result = await runCli(['serve'], { PORT: 'abc', DATABASE_URL: 'sqlite::memory:' });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /PORT/);
    assert.ok(!/\n\s+at /.test(result.stderr), `no stack trace: ${result.stderr}`);
  });
});

describe('configuration', () => {
  const configProblem = (env: Record<string, string>): ConfigError => {
    try {
      loadConfig(env);
    } catch (error) {
      assert.ok(error instanceof ConfigError, String(error));
      return error;
    }
    assert.fail(`loadConfig(${JSON.stringify(env)}) did not throw`);
  };

  test('defaults serve on 127.0.0.1:8080 from ./data/gatehouse.db with open sign-up off', () => {
    const config = loadConfig({});
    assert.equal(config.port, 8080);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.databaseUrl, 'sqlite:./data/gatehouse.db');
    assert.equal(config.openSignup, false);
    assert.equal(config.rateLimitPerMinute, 1200);
    assert.equal(config.passwordHashProfile, 'owasp');
    assert.equal(config.adminPassword, null);
    assert.ok(Object.isFrozen(config));
  });

  test('reads each setting from its environment variable', () => {
    const config = loadConfig({
      PORT: '9090',
      HOST: '0.0.0.0',
      DATABASE_URL: 'postgres://gatehouse@db:5432/gatehouse',
      GATEHOUSE_OPEN_SIGNUP: 'true',
      GATEHOUSE_RATE_LIMIT_PER_MINUTE: '0',
    });
    assert.equal(config.port, 9090);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.databaseUrl, 'postgres://gatehouse@db:5432/gatehouse');
    assert.equal(config.openSignup, true);
    assert.equal(config.rateLimitPerMinute, 0);
  });

  test('a PORT that is not a port is refused, naming PORT', () => {
    for (const PORT of ['abc', '70000', '-1', '80.5']) assert.match(configProblem({ PORT }).message, /PORT/);
  });

  test('a DATABASE_URL that is neither sqlite: nor postgres:// is refused, naming DATABASE_URL', () => {
    assert.match(configProblem({ DATABASE_URL: 'mysql://x' }).message, /DATABASE_URL/);
  });

  test('every bad variable is named at once', () => {
    const { message } = configProblem({ PORT: 'abc', DATABASE_URL: 'mysql://x', GATEHOUSE_OPEN_SIGNUP: 'maybe' });
    for (const name of ['PORT', 'DATABASE_URL', 'GATEHOUSE_OPEN_SIGNUP']) assert.match(message, new RegExp(name));
  });

  test('the cheap test hash profile refuses to serve on a non-loopback HOST', () => {
    const { message } = configProblem({ GATEHOUSE_PASSWORD_HASH_PROFILE: 'test', HOST: '0.0.0.0' });
    assert.match(message, /GATEHOUSE_PASSWORD_HASH_PROFILE/);
    assert.match(message, /HOST/);
    assert.equal(loadConfig({ GATEHOUSE_PASSWORD_HASH_PROFILE: 'test' }).passwordHashProfile, 'test', 'loopback is fine');
  });
});

// ---- real processes -------------------------------------------------------------------------

const PROCESS_TIMEOUT_MS = 30_000;
const running = new Set<ChildProcess>();

function killStragglers(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

/** The parent's environment without any gatehouse setting, plus the given ones. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (/^(GATEHOUSE_|DATABASE_|PORT$|HOST$|NODE_TEST_CONTEXT$)/.test(name)) continue;
    env[name] = value;
  }
  return { ...env, ...extra };
}

function spawnGatehouse(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, ['bin/gatehouse.js', ...args], { cwd: REPO, env: childEnv(env), stdio: ['pipe', 'pipe', 'pipe'] });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gatehouse ${args.join(' ')} did not exit within ${PROCESS_TIMEOUT_MS} ms\n${stdout}\n${stderr}`));
    }, PROCESS_TIMEOUT_MS);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      resolve(code ?? (signal ? -1 : null));
    });
  });
  return { child, exited, output: () => ({ stdout, stderr }) };
}

async function runCli(args: string[], env: Record<string, string>) {
  const cli = spawnGatehouse(args, env);
  cli.child.stdin?.end();
  const code = await cli.exited;
  return { code, ...cli.output() };
}

/** The promise's value, or a failure naming what did not happen within the bound. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

async function startServer(env: Record<string, string>) {
  const port = await freePort();
  const started = spawnGatehouse(['serve'], { ...env, PORT: String(port), HOST: '127.0.0.1' });
  let exitCode: number | null | undefined;
  started.exited.then(
    (code) => {
      exitCode = code;
    },
    () => {},
  );
  const base = `http://127.0.0.1:${port}`;

  /** Polls the server's output until the predicate holds; bounded. */
  async function waitFor(predicate: (stdout: string) => boolean, what: string): Promise<void> {
    const deadline = Date.now() + PROCESS_TIMEOUT_MS;
    while (!predicate(started.output().stdout)) {
      if (exitCode !== undefined || Date.now() > deadline) {
        const { stdout, stderr } = started.output();
        throw new Error(`waiting for ${what}: exited=${exitCode}\n${stdout}\n${stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  const deadline = Date.now() + PROCESS_TIMEOUT_MS;
  for (;;) {
    const health = await fetch(`${base}/healthz`).catch(() => null);
    if (health?.status === 200) break;
    if (exitCode !== undefined || Date.now() > deadline) {
      const { stdout, stderr } = started.output();
      throw new Error(`gatehouse serve did not become healthy (exit ${exitCode})\n${stdout}\n${stderr}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  return {
    ...started,
    port,
    waitFor,
    post: (path: string, body: unknown) =>
      fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    /** SIGTERM, then the exit code (bounded at 10 s). */
    async stop(): Promise<number | null> {
      started.child.kill('SIGTERM');
      return within(started.exited, 10_000, 'exit after SIGTERM');
    },
  };
}

/** The row of a `users list` table whose USERNAME cell is the username, as header -> cell. */
function tableRow(stdout: string, username: string): Record<string, string> {
  const [header, ...rows] = stdout.split('\n').filter(Boolean);
  assert.ok(header, stdout);
  const columns = [...header.matchAll(/\S+(?: \S+)*/g)].map((match) => ({ name: match[0], start: match.index ?? 0 }));
  assert.deepEqual(
    columns.map((column) => column.name),
    ['ID', 'USERNAME', 'EMAIL', 'ROLES', 'STATUS', 'LAST LOGIN'],
  );
  const cells = (row: string) =>
    Object.fromEntries(columns.map((column, i) => [column.name, row.slice(column.start, columns[i + 1]?.start ?? row.length).trim()]));
  const row = rows.map(cells).find((one) => one.USERNAME === username);
  assert.ok(row, `${username} is a row of\n${stdout}`);
  return row;
}
