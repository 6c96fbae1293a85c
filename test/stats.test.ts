// GET /v1/stats, the admin dashboard's numbers, on SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { uuidv7 } from '../src/lib/ids.js';
import { bearer, buildTestApp, problem, type TestApp } from './helpers/app.js';
import { targets } from './helpers/databases.js';

const DAY_MS = 86_400_000;

interface StatsBody {
  users: Record<'total' | 'active' | 'disabled' | 'signed_in_24h' | 'signed_in_7d' | 'never_signed_in', number>;
  sign_ins_per_day: { date: string; succeeded: number; failed: number }[];
}

function daysAgo(days: number): string {
  return new Date(Date.now() - days * DAY_MS).toISOString();
}

for (const { target, skip } of await targets()) {
  describe(`GET /v1/stats on ${target}`, { skip }, () => {
    let t: TestApp;
    before(async () => {
      t = await buildTestApp(target);
    });
    after(async () => t?.close());

    async function stats(authorization = t.adminBasic) {
      return t.app.inject({ method: 'GET', url: '/v1/stats', headers: { authorization } });
    }

    test('an anonymous caller gets 401 and a non-admin 403, as problem+json', async () => {
      const anonymous = problem(await t.app.inject({ method: 'GET', url: '/v1/stats' }));
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.code, 'unauthorized');
      const user = await t.createUser();
      const { access_token } = await t.signIn(user.username, user.password);
      const forbidden = problem(await stats(bearer(access_token)));
      assert.equal(forbidden.status, 403);
      assert.equal(forbidden.code, 'forbidden');
      assert.match(forbidden.contentType, /^application\/problem\+json/);
    });

    test('counts users by status and last sign-in, and sign-ins per UTC day over 30 days, zero-filled', async () => {
      const before = (await stats()).json() as StatsBody;
      const [recent, lastWeek, lastMonth, never] = [await t.createUser(), await t.createUser(), await t.createUser(), await t.createUser()];
      await t.signIn(recent.username, recent.password);
      const failed = await t.app.inject({
        method: 'POST',
        url: '/v1/sessions',
        payload: { username: never.username, password: 'not the password!' },
      });
      assert.equal(failed.statusCode, 401);
      const unknown = await t.app.inject({
        method: 'POST',
        url: '/v1/sessions',
        payload: { username: 'nobody-here', password: 'not the password!' },
      });
      assert.equal(unknown.statusCode, 401);
      const today = new Date().toISOString().slice(0, 10);
      await t.services.usersRepository.update(lastWeek.id, { last_login_at: daysAgo(3) });
      await t.services.usersRepository.update(lastMonth.id, { last_login_at: daysAgo(10) });
      const disable = await t.app.inject({
        method: 'PATCH',
        url: `/v1/users/${lastMonth.id}`,
        headers: { authorization: t.adminBasic },
        payload: { status: 'disabled' },
      });
      assert.equal(disable.statusCode, 200);
      // History written straight to the table: three days ago counts, forty days ago is outside the window.
      const threeDaysAgo = daysAgo(3);
      for (const at of [threeDaysAgo, threeDaysAgo, daysAgo(40)]) {
        await t.services.loginsRepository.insert({
          id: uuidv7(),
          user_id: lastWeek.id,
          at,
          success: 1,
          method: 'password',
          ip: null,
          user_agent: null,
        });
      }

      const response = await stats();
      assert.equal(response.statusCode, 200);
      assert.match(String(response.headers['content-type']), /^application\/json/);
      const body = response.json() as StatsBody;
      assert.deepEqual(body.users, {
        total: before.users.total + 4,
        active: before.users.active + 3,
        disabled: before.users.disabled + 1,
        signed_in_24h: before.users.signed_in_24h + 1,
        signed_in_7d: before.users.signed_in_7d + 2,
        never_signed_in: before.users.never_signed_in + 1,
      });

      const days = body.sign_ins_per_day;
      assert.equal(days.length, 30);
      assert.equal(days.at(-1)?.date, today);
      assert.equal(days[0]?.date, new Date(Date.parse(`${today}T00:00:00Z`) - 29 * DAY_MS).toISOString().slice(0, 10));
      for (let i = 1; i < days.length; i++) {
        assert.equal(Date.parse(`${days[i]?.date}T00:00:00Z`) - Date.parse(`${days[i - 1]?.date}T00:00:00Z`), DAY_MS);
      }
      const byDate = new Map(days.map((day) => [day.date, day]));
      const beforeByDate = new Map(before.sign_ins_per_day.map((day) => [day.date, day]));
      const todayBefore = beforeByDate.get(today) ?? { succeeded: 0, failed: 0 };
      assert.deepEqual(byDate.get(today), { date: today, succeeded: todayBefore.succeeded + 1, failed: todayBefore.failed + 2 });
      const threeDaysAgoDate = threeDaysAgo.slice(0, 10);
      assert.deepEqual(byDate.get(threeDaysAgoDate), { date: threeDaysAgoDate, succeeded: 2, failed: 0 });
      const total = days.reduce((sum, day) => sum + day.succeeded + day.failed, 0);
      const totalBefore = before.sign_ins_per_day.reduce((sum, day) => sum + day.succeeded + day.failed, 0);
      assert.equal(total, totalBefore + 5, 'the event forty days ago is not counted');
    });

    test('the OpenAPI document describes /v1/stats with an example and its error responses', async () => {
      const document = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
      const operation = document.paths['/v1/stats']?.get;
      assert.ok(operation, 'GET /v1/stats is documented');
      assert.ok(operation.summary);
      assert.deepEqual(operation.tags, ['stats']);
      // @fastify/swagger moves the schema's `examples` onto the media type.
      const ok = operation.responses['200'].content['application/json'];
      assert.ok(ok.example ?? ok.examples, 'the 200 response has an example');
      for (const status of ['401', '403']) {
        assert.ok(operation.responses[status]?.content['application/problem+json'], `${status} is documented as problem+json`);
      }
      assert.equal(document.paths['/admin'], undefined, 'the console page is not an API operation');
    });
  });
}
